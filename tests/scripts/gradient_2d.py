"""A reader's chapter-4 exercise on xpnet: the slope field of f(x0, x1) = x0^2 + x1^2.

Takes the numerical gradient of the bowl at every point of a 0.25-spaced grid over
[-2, 2.25] x [-2, 2.25] and writes one "d/dx0 d/dx1" line per point (x0 varying fastest)
to stdout, where a reader would draw arrows; tests read the lines.
"""

import sys

import numpy as np

from xpnet.gradient import numerical_gradient_2d


def bowl(point):
    """x0^2 + x1^2 of one point (the gradient function hands it one row at a time)."""
    return np.sum(point**2)


ticks = np.arange(-2, 2.5, 0.25)
across, down = np.meshgrid(ticks, ticks)
grid = np.column_stack([across.ravel(), down.ravel()])

slopes = numerical_gradient_2d(bowl, grid)
np.savetxt(sys.stdout, slopes)
