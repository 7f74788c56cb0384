"""The book's ``common/gradient.py``: central differences, generic over array shape and module.

These are the reference methods: slow (two calls of ``f`` per element) and obviously
right. ``TwoLayerNet.numerical_gradient(method="fused")`` gives the same numbers for the
book's network thousands of times faster. ``numerical_gradient_2d`` and
``_numerical_gradient_1d`` are the book's helpers for a gradient per row (ch04's
``gradient_2d.py`` plots them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backend import get_array_module
from .inputs import InputError

__all__ = ["numerical_diff", "numerical_gradient", "numerical_gradient_2d", "gradient_descent"]

H = 1e-4  # the book's step: small enough for accuracy, large enough to escape rounding


def numerical_diff(f: Callable[[Any], Any], x: Any) -> Any:
    """Central difference ``(f(x+h) - f(x-h)) / 2h`` with h = 1e-4."""
    return (f(x + H) - f(x - H)) / (2 * H)


def _check_float(x: Any, caller: str) -> Any:
    """The array module of ``x`` if ``x`` can hold ``x ± 1e-4``; else InputError."""
    xp = get_array_module(x)
    if not hasattr(x, "dtype") or x.dtype.kind != "f":
        raise InputError(f"{caller} needs a float array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}; convert it with "
                         "x.astype(np.float64)")
    if x.dtype.itemsize < 4:
        # float16 has 11 bits: x + 1e-4 rounds back to x for |x| > 0.06, so the book's
        # difference would be exactly zero almost everywhere.
        raise InputError(f"{caller} needs float32 or float64, got {x.dtype}: x + 1e-4 rounds "
                         "back to x in it; convert it with x.astype(np.float64)")
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        raise InputError(f"{caller} perturbs x in place, but x is read-only; pass a "
                         "writable copy, x.copy()")
    return xp


def _scalar(value: Any, caller: str) -> Any:
    if getattr(value, "ndim", 0) != 0:
        raise InputError(
            f"f returned an array of shape {tuple(value.shape)}, not a scalar: {caller} "
            "differentiates a scalar function; for one gradient per row use "
            "numerical_gradient_2d (the book's ch04/gradient_2d.py)"
        )
    return value


def numerical_gradient(f: Callable[[Any], Any], x: Any) -> Any:
    """Gradient of the scalar function ``f`` at ``x`` by central differences, h = 1e-4.

    ``x`` is a float32 or float64 array of any shape (NumPy or CuPy). Each element is
    perturbed in place, ``f(x)`` evaluated, and the element restored, as in the book, so
    ``f`` may ignore its argument and read ``x`` through a closure. Returns an array like
    ``x``. In float64 the numbers are the book's. In float32, where ``x ± 1e-4`` is
    rounded, the difference is divided by the step actually stored, not by 2e-4, so the
    rounding of x does not become an error of up to 0.1% in the gradient.

    On a GPU (CuPy ``x``) this is still the book's loop: about ten small kernel launches
    per element, never a wait for the device (nothing is read back), but slow: ``f`` is
    any Python function, so the elements cannot be perturbed at once. For the book's
    network use ``TwoLayerNet.numerical_gradient``, one fused kernel for all parameters.
    """
    xp = _check_float(x, "numerical_gradient")
    exact = x.dtype == np.float64
    grad = xp.zeros_like(x)
    # np.ndindex rather than np.nditer: CuPy has no nditer, and a tuple index works
    # in place on any shape and memory layout of either module.
    for idx in np.ndindex(*x.shape):
        tmp_val = x[idx].copy()
        x[idx] = tmp_val + H
        fxh1 = _scalar(f(x), "numerical_gradient")
        step = x[idx].astype(np.float64)
        x[idx] = tmp_val - H
        fxh2 = f(x)
        step = 2 * H if exact else step - x[idx].astype(np.float64)
        grad[idx] = (fxh1 - fxh2) / step
        x[idx] = tmp_val
    return grad


def _numerical_gradient_1d(f: Callable[[Any], Any], x: Any) -> Any:
    """The book's helper: the gradient of ``f`` at a 1-D ``x`` (h = 1e-4)."""
    return numerical_gradient(f, x)


def numerical_gradient_2d(f: Callable[[Any], Any], X: Any) -> Any:
    """The book's per-row gradient: for a 2-D ``X``, the gradient of ``f`` at each row.

    A 1-D ``X`` is one point. ch04's ``gradient_2d.py`` calls it on a grid of points
    ``np.array([X, Y]).T`` with ``f(x) = sum(x**2)``.
    """
    xp = _check_float(X, "numerical_gradient_2d")
    if X.ndim == 1:
        return _numerical_gradient_1d(f, X)
    grad = xp.zeros_like(X)
    for idx, x in enumerate(X):
        grad[idx] = _numerical_gradient_1d(f, x)
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
