"""The book's ``common/gradient.py``: xpnet's central differences under the book's name.

``numerical_gradient`` takes arrays of any shape, like the book's ``np.nditer`` loop, on
NumPy or CuPy. The star import also hands on ``np``, as the book's does.
"""

import numpy as np

from xpnet.gradient import (
    _numerical_gradient_1d,  # noqa: F401  (the book's helper, for a `from ... import` of it)
    gradient_descent,
    numerical_diff,
    numerical_gradient,
    numerical_gradient_2d,
)

__all__ = ["np", "numerical_gradient", "numerical_gradient_2d", "numerical_diff",
           "gradient_descent"]
