# The book's ch04/gradient_2d.py with only its imports changed: xpnet's numerical_gradient_2d
# in place of the script's own two functions (the same computation), and the plot replaced
# by printing the gradient, one "d/dx0 d/dx1" line a grid point, so a test can read it.
# cf.http://d.hatena.ne.jp/white_wheels/20100327/p3
import sys

import numpy as np

from xpnet.gradient import numerical_gradient_2d as numerical_gradient  # book: defined here


def function_2(x):
    if x.ndim == 1:
        return np.sum(x**2)
    else:
        return np.sum(x**2, axis=1)


def tangent_line(f, x):
    d = numerical_gradient(f, x)
    print(d)
    y = f(x) - d*x
    return lambda t: d*t + y


if __name__ == '__main__':
    x0 = np.arange(-2, 2.5, 0.25)
    x1 = np.arange(-2, 2.5, 0.25)
    X, Y = np.meshgrid(x0, x1)

    X = X.flatten()
    Y = Y.flatten()

    grad = numerical_gradient(function_2, np.array([X, Y]).T).T

    np.savetxt(sys.stdout, grad.T)  # book: plt.quiver(X, Y, -grad[0], -grad[1], ...)
