"""The book's ``common/gradient.py``: central differences, generic over array shape and module.

These are the reference methods: slow (one or two calls of ``f`` per element) and
obviously right. ``TwoLayerNet.numerical_gradient(method="fused")`` gives the same
numbers for the book's network thousands of times faster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backend import get_array_module

H = 1e-4  # the book's step: small enough for accuracy, large enough to escape rounding


def numerical_diff(f: Callable[[Any], Any], x: Any) -> Any:
    """Central difference ``(f(x+h) - f(x-h)) / 2h`` with h = 1e-4."""
    return (f(x + H) - f(x - H)) / (2 * H)


def numerical_gradient(f: Callable[[Any], Any], x: Any) -> Any:
    """Gradient of the scalar function ``f`` at ``x`` by central differences, h = 1e-4.

    ``x`` is a float array of any shape (NumPy or CuPy). Each element is perturbed in
    place, ``f(x)`` evaluated, and the element restored, as in the book, so ``f`` may
    ignore its argument and read ``x`` through a closure. Returns an array like ``x``.
    """
    xp = get_array_module(x)
    if not xp.issubdtype(x.dtype, xp.floating):
        raise TypeError(
            f"numerical_gradient needs a float array, got dtype {x.dtype}; "
            "convert it with x.astype(float)"
        )
    grad = xp.zeros_like(x)
    # np.ndindex rather than np.nditer: CuPy has no nditer, and a tuple index works
    # in place on any shape and memory layout of either module.
    for idx in np.ndindex(*x.shape):
        tmp_val = x[idx].copy()
        x[idx] = tmp_val + H
        fxh1 = f(x)
        x[idx] = tmp_val - H
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * H)
        x[idx] = tmp_val
    return grad


def gradient_descent(
    f: Callable[[Any], Any], init_x: Any, lr: float = 0.01, step_num: int = 100
) -> Any:
    """Minimise ``f`` from ``init_x`` with ``step_num`` steps ``x -= lr * grad``; returns x.

    Like the book, ``init_x`` itself is updated in place.
    """
    x = init_x
    for _ in range(step_num):
        x -= lr * numerical_gradient(f, x)
    return x
