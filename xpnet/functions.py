"""The book's ``common/functions.py``, written once for NumPy and CuPy.

Every function dispatches on its input's array module: NumPy in, NumPy out; CuPy in,
CuPy out. Dtypes are kept (float32 in, float32 out). Values are the book's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import get_array_module, is_cupy_array
from .inputs import InputError, labels
from .kernels import DELTA  # the book's 1e-7 inside log(y + 1e-7), named once

__all__ = [
    "np",  # the book's chapter scripts use np through `from common.functions import *`
    "identity_function",
    "step_function",
    "sigmoid",
    "sigmoid_grad",
    "relu",
    "relu_grad",
    "softmax",
    "sum_squared_error",
    "sum_square_error",
    "mean_squared_error",
    "cross_entropy_error",
    "softmax_loss",
]



def _one_device(y: Any, t: Any) -> None:
    """Refuse a CuPy array with host data (NumPy, lists): one device for both, said once."""
    gpu = {name for name, a in (("y", y), ("t", t)) if is_cupy_array(a)}
    host = {name for name, a in (("y", y), ("t", t))
            if isinstance(a, (np.ndarray, list, tuple))}
    if gpu and host:
        (on_gpu,), (on_host,) = gpu, host
        raise InputError(f"{on_gpu} is a CuPy array (on the GPU) but {on_host} is on the host "
                         f"(NumPy): put both on one device, e.g. {on_host} = cupy.asarray("
                         f"{on_host}) or {on_gpu} = cupy.asnumpy({on_gpu})")


def _asarray(x: Any) -> Any:
    xp = get_array_module(x)
    return xp, xp.asarray(x)


def _float_array(x: Any) -> Any:
    """``x`` as an array of a float type: integers and bools become float64.

    The book's formulas on a uint8 or int8 array would wrap around (``-x`` of uint8 200 is
    56) and give silently wrong answers; float inputs keep their dtype.
    """
    xp, x = _asarray(x)
    return xp, x if x.dtype.kind in "fc" else x.astype(np.float64)


def identity_function(x: Any) -> Any:
    """Return ``x`` unchanged (the book's output layer for regression)."""
    return x


def step_function(x: Any) -> Any:
    """1 where ``x > 0`` else 0, as an int array of x's shape."""
    xp, x = _asarray(x)
    return xp.array(x > 0, dtype=int)


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` elementwise; float dtype kept, integers computed in float64."""
    xp, x = _float_array(x)
    with np.errstate(over="ignore"):  # exp(-x) -> inf gives the right limit, 0
        return 1 / (1 + xp.exp(-x))


def sigmoid_grad(x: Any) -> Any:
    """Derivative of sigmoid at ``x``: ``(1 - s) * s`` with ``s = sigmoid(x)``."""
    s = sigmoid(x)
    return (1.0 - s) * s


def relu(x: Any) -> Any:
    """``max(0, x)`` elementwise."""
    xp, x = _asarray(x)
    return xp.maximum(0, x)


def relu_grad(x: Any) -> Any:
    """1 where ``x >= 0`` else 0, in x's dtype (the book's convention at 0)."""
    xp, x = _asarray(x)
    grad = xp.zeros_like(x)
    grad[x >= 0] = 1
    return grad


def softmax(x: Any) -> Any:
    """Softmax over the last axis (1-D or batched), shifted by the max so it never overflows.

    Float dtype kept; integers are computed in float64.
    """
    xp, x = _float_array(x)
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def sum_squared_error(y: Any, t: Any) -> Any:
    """``0.5 * sum((y - t)**2)`` over all elements (a scalar; 0-d array on the GPU).

    Integer inputs are computed in float64 (uint8 differences would wrap around).
    """
    _one_device(y, t)
    xp, y = _float_array(y)
    _, t = _float_array(t)
    if y.shape != t.shape:
        raise InputError(f"y has shape {tuple(y.shape)} but t has {tuple(t.shape)}: "
                         "pass arrays of one shape")
    return 0.5 * xp.sum((y - t) ** 2)


# Two more names for it, so scripts written against either run unchanged:
# sum_square_error, and mean_squared_error (older printings of the book).
sum_square_error = sum_squared_error
mean_squared_error = sum_squared_error


def cross_entropy_error(y: Any, t: Any) -> Any:
    """The book's CEE: ``-sum(log(y[b, t_b] + 1e-7)) / B``.

    ``y``: probabilities, (C,) or (B, C); a 1-D ``y`` is a batch of one. ``t``: class
    indices (B,) in 0..C-1, or one-hot of y's shape. Raises InputError for anything else
    (a label of -1 would silently read the last class), and for a CuPy array with a NumPy
    one (put both on one device).
    """
    _one_device(y, t)
    xp, y = _float_array(y)
    t = xp.asarray(t)
    if y.ndim == 1:
        y = y.reshape(1, y.size)
        t = t.reshape(1, t.size) if t.size == y.size else t.reshape(-1)
    elif t.size == y.size and t.ndim != 2:
        t = t.reshape(y.shape)
    if y.ndim != 2:
        raise InputError(f"y has shape {tuple(y.shape)}: pass probabilities of shape (C,) "
                         "or (B, C)")
    batch_size = y.shape[0]
    t = labels(t, batch_size, y.shape[1])
    return -xp.sum(xp.log(y[xp.arange(batch_size), t] + DELTA)) / batch_size


def softmax_loss(x: Any, t: Any) -> Any:
    """``cross_entropy_error(softmax(x), t)`` for scores ``x``."""
    return cross_entropy_error(softmax(x), t)
