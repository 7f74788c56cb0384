"""The book's ``common/util.py``: curve smoothing, shuffling, and the im2col transform.

``im2col``/``col2im`` work on the device the array is on and return float64, as the
book's do (its buffers are ``np.zeros``), so a float32 batch gives the book's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xpnet.backend import asnumpy, get_array_module

__all__ = ["np", "smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im"]

_WINDOW = 11  # the book's Kaiser window: 11 points, beta 2


def onto_device_of(host: np.ndarray, like: Any) -> Any:
    """The host array ``host`` on the device of the array ``like`` (itself on the CPU)."""
    xp = get_array_module(like)
    if xp is np:
        return host
    with like.device:
        return xp.asarray(host)


def _host_values(x: Any) -> np.ndarray:
    """A float64 NumPy copy of a curve: an array, or a list of scalars (0-d CuPy too)."""
    if isinstance(x, (list, tuple)):
        return np.array([float(v) for v in x])
    return asnumpy(x)


def smooth_curve(x: Sequence[Any] | Any) -> np.ndarray:
    """A loss curve smoothed by an 11-point Kaiser window (beta 2), as a NumPy array.

    The ends are mirrored so the result has the length of ``x``. ``x`` may be a list of
    losses as a training loop collects them, GPU scalars included.
    """
    values = _host_values(x)
    half = _WINDOW // 2
    head = values[_WINDOW - 1:0:-1]
    tail = values[-1:-_WINDOW:-1]
    mirrored = np.concatenate([head, values, tail])
    window = np.kaiser(_WINDOW, 2)
    smoothed = np.convolve(window / window.sum(), mirrored, mode="valid")
    return smoothed[half:len(smoothed) - half]


def shuffle_dataset(x: Any, t: Any) -> tuple[Any, Any]:
    """``x`` and ``t`` in one random order along the first axis.

    The order comes from NumPy's global generator (``np.random.seed`` applies) on the
    host and is moved to the arrays' device.
    """
    order = np.random.permutation(x.shape[0])  # noqa: NPY002  (the book's generator)
    return x[onto_device_of(order, x)], t[onto_device_of(order, t)]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1,
                     pad: int = 0) -> float:
    """Output length of a convolution: ``(input + 2 pad - filter) / stride + 1`` (a float)."""
    return (input_size + 2 * pad - filter_size) / stride + 1


def _out_size(size: int, filter_size: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - filter_size) // stride + 1


def im2col(input_data: Any, filter_h: int, filter_w: int, stride: int = 1,
           pad: int = 0) -> Any:
    """Image patches as rows: (N, C, H, W) -> (N * out_h * out_w, C * filter_h * filter_w).

    Row ``(n, i, j)`` holds the patch under the filter at output position ``(i, j)`` of
    image ``n``, channel-major then filter row, filter column. Float64, zero padding.
    """
    xp = get_array_module(input_data)
    n, c, h, w = input_data.shape
    out_h = _out_size(h, filter_h, stride, pad)
    out_w = _out_size(w, filter_w, stride, pad)
    padded = input_data
    if pad:
        padded = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=input_data.dtype)
        padded[:, :, pad:pad + h, pad:pad + w] = input_data
    # Filled in the order the rows are read, so the final reshape copies nothing.
    patches = xp.empty((n, out_h, out_w, c, filter_h, filter_w), dtype=np.float64)
    for dy in range(filter_h):
        rows = slice(dy, dy + stride * out_h, stride)
        for dx in range(filter_w):
            cols = slice(dx, dx + stride * out_w, stride)
            patches[..., dy, dx] = padded[:, :, rows, cols].transpose(0, 2, 3, 1)
    return patches.reshape(n * out_h * out_w, -1)


def col2im(col: Any, input_shape: Sequence[int], filter_h: int, filter_w: int,
           stride: int = 1, pad: int = 0) -> Any:
    """The adjoint of ``im2col``: rows of patches summed back into images (N, C, H, W).

    Where patches overlap their values add up, in filter-row then filter-column order
    (the book's order, so sums round the same). Float64.
    """
    xp = get_array_module(col)
    n, c, h, w = input_shape
    out_h = _out_size(h, filter_h, stride, pad)
    out_w = _out_size(w, filter_w, stride, pad)
    patches = col.reshape(n, out_h, out_w, c, filter_h, filter_w)
    # stride - 1 spare rows and columns: the last window's slice may reach past the edge.
    image = xp.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1))
    for dy in range(filter_h):
        rows = slice(dy, dy + stride * out_h, stride)
        for dx in range(filter_w):
            cols = slice(dx, dx + stride * out_w, stride)
            image[:, :, rows, cols] += patches[..., dy, dx].transpose(0, 3, 1, 2)
    return image[:, :, pad:h + pad, pad:w + pad]
