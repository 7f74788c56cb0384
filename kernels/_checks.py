"""Argument checks shared by the CPU and CUDA entry points.

They read only ``shape`` and ``dtype``, so they work unchanged on NumPy arrays and
on device arrays; value checks (label range, finiteness) are done by the callers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(a: Any) -> str:
    shape = getattr(a, "shape", None)
    dtype = getattr(a, "dtype", None)
    if shape is None or dtype is None:
        return f"a {type(a).__name__}"
    return f"shape {tuple(shape)} dtype {np.dtype(dtype)}"


def check_float(name: str, a: Any, shape: tuple[int | str, ...]) -> None:
    """Require a float32/float64 array of ``shape``; ints are fixed sizes, strings are names."""
    # The message is built only on failure: this check runs on every training step.
    def expected() -> str:
        dims = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
        return f"{name}: expected a float32/float64 array of shape {dims}, got {_describe(a)}"

    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(expected())
    if np.dtype(a.dtype) not in FLOAT_DTYPES:
        raise TypeError(expected())
    if len(a.shape) != len(shape) or any(
        isinstance(d, int) and d != n for d, n in zip(shape, a.shape, strict=True)
    ):
        raise ValueError(expected())


def check_int_labels(name: str, labels: Any, batch: int) -> None:
    """Require a 1-D integer array of length ``batch`` (values are not looked at)."""
    def expected() -> str:
        return f"{name}: expected an integer array of shape ({batch},), got {_describe(labels)}"

    if not hasattr(labels, "shape") or not hasattr(labels, "dtype"):
        raise TypeError(expected())
    kind = np.dtype(labels.dtype).kind
    if kind not in "iu":
        raise TypeError(expected())
    if tuple(labels.shape) != (batch,):
        raise ValueError(expected())


def labels_as_intp(name: str, labels: Any, batch: int, classes: int) -> np.ndarray:
    """Host labels as a C-contiguous intp array, range-checked against ``classes``.

    A (B, C) array is taken as one-hot (or scores) and reduced by argmax, like the book's
    ``cross_entropy_error``.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape == (batch, classes) and labels.dtype.kind in "iufb":
        return np.ascontiguousarray(labels.argmax(axis=1), dtype=np.intp)
    check_int_labels(name, labels, batch)
    if batch and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(
            f"{name}: expected integers in [0, {classes - 1}], "
            f"got min {labels.min()} max {labels.max()}"
        )
    return np.ascontiguousarray(labels, dtype=np.intp)


def check_batch(name: str, a: Any) -> None:
    """Require at least one row and one column (an empty batch has no mean loss)."""
    if 0 in tuple(a.shape):
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(a.shape)}")


def check_two_layer_args(W1: Any, b1: Any, W2: Any, b2: Any, x: Any, h: Any) -> None:
    """TwoLayerNet shapes/dtypes: x (B, D), W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); h > 0."""
    check_float("x", x, ("B", "D"))
    check_batch("x", x)
    d_in = x.shape[1]
    check_float("W1", W1, (d_in, "H"))
    check_batch("W1", W1)
    n_hidden = W1.shape[1]
    check_float("b1", b1, (n_hidden,))
    check_float("W2", W2, (n_hidden, "C"))
    check_batch("W2", W2)
    check_float("b2", b2, (W2.shape[1],))
    if isinstance(h, bool) or not isinstance(h, (int, float, np.integer, np.floating)):
        raise TypeError(f"h: expected a float step > 0, got {type(h).__name__}")
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"h: expected a finite step > 0, got {h!r}")
