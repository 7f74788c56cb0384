"""The one input boundary: every public entry point checks and normalises its input here.

One rule each, for NumPy and CuPy alike:

- **labels**: integer class indices ``(B,)`` in ``0..C-1`` (whole-number floats such as
  labels read from a CSV are accepted), or one-hot ``(B, C)`` (each row one 1, the rest 0).
  Anything else (2.99, -1, 10, soft labels, a one-hot of the wrong width) is refused.
- **sizes**: positive Python or NumPy integers, never bools or floats.

What leaves this module is the trusted internal form that ``xpnet.fused`` and the kernels
compute on without checking again: labels as a 1-D ``intp`` array on the data's device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import get_array_module

# The choices of a run's settings, named once for the API, the CLI and sweeps.
FLOAT_DTYPES = ("float64", "float32")  # float64 first: the book's
GRAD_METHODS = ("backprop", "numerical")


class InputError(ValueError):
    """A public xpnet function got input it cannot use; the message says how to fix it."""


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer (not a bool or a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def float_dtype(dtype: Any) -> np.dtype:
    """float32 or float64 as a NumPy dtype; anything else is refused."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def labels(t: Any, batch: int, classes: int, *, name: str = "t") -> Any:
    """Class indices ``(batch,)`` as ``intp`` from labels or one-hot, on ``t``'s device.

    Raises InputError naming the shape expected, or the first value that is not a class.
    """
    xp = get_array_module(t)
    t = xp.asarray(t)
    if t.ndim == 2 and t.shape == (batch, classes):
        return _from_one_hot(xp, t, name)
    if t.ndim != 1 or t.shape[0] != batch:
        raise InputError(
            f"{name} has shape {tuple(t.shape)} but there are {batch} samples of {classes} "
            f"classes: pass labels of shape ({batch},) or one-hot of shape ({batch}, {classes})"
        )
    if t.dtype.kind == "f":
        whole = xp.all(t == xp.floor(t))  # False for NaN and inf too
        if not bool(whole):
            bad = t[~(t == xp.floor(t))][0]
            raise InputError(f"{name} holds {float(bad)!r}, not a class index: labels must be "
                             f"whole numbers in 0..{classes - 1}")
    elif t.dtype.kind not in "iu":
        raise InputError(f"{name} has dtype {t.dtype}: labels must be integers in "
                         f"0..{classes - 1} (or one-hot of shape ({batch}, {classes}))")
    if batch:
        low, high = (float(v) for v in (t.min(), t.max()))
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise InputError(f"{name} holds label {bad:g}, outside 0..{classes - 1}")
    return t.astype(np.intp, copy=False)


def _from_one_hot(xp: Any, t: Any, name: str) -> Any:
    if t.dtype.kind not in "biuf":
        raise InputError(f"{name} has dtype {t.dtype}: one-hot labels must be numbers")
    ones = (t == 1).sum(axis=1)
    zeros = (t == 0).sum(axis=1)
    if t.shape[0] and not bool(xp.all((ones == 1) & (ones + zeros == t.shape[1]))):
        row = int(xp.flatnonzero(~((ones == 1) & (ones + zeros == t.shape[1])))[0])
        raise InputError(f"{name} row {row} is not one-hot (one 1, the rest 0): pass class "
                         "indices, or one-hot rows")
    return t.argmax(axis=1).astype(np.intp, copy=False)
