"""CUDA versions of the kernels (``numba.cuda``), for arrays already on the GPU.

Inputs are anything exposing ``__cuda_array_interface__`` (CuPy arrays, Numba device
arrays); they are used in place, never copied to the host. Outputs are Numba device
arrays, or caller-provided device arrays; ``cupy.asarray`` wraps either without a copy.
Kernels launch on ``stream`` (default: the legacy default stream, which CuPy also uses
unless told otherwise); pass ``numba.cuda.external_stream(cupy_stream.ptr)`` to follow
a CuPy stream.

The per-row and per-sample math is the CPU modules' source compiled as device
functions, so CPU and CUDA results agree to float64 rounding. Importing this module
needs no GPU; kernels compile on first launch (set ``NUMBA_ENABLE_CUDASIM=1`` before
importing Numba to run them on the CPU simulator).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import cuda

from .cross_entropy import build_row_functions
from .numerical_gradient import Z1, build_device_functions

THREADS = 128  # threads per block for the 1-D launches

_rows = build_row_functions(cuda.jit(device=True))
_row_loss = _rows.row_loss
_row_grad = _rows.row_grad
_samples = build_device_functions(cuda.jit(device=True))
_unit_activation = _samples.unit_activation
_sample_outputs = _samples.sample_outputs
_unit_moments = _samples.unit_moments
_hidden_pair = _samples.hidden_pair
_output_pair = _samples.output_pair


def _device(a: Any) -> Any:
    """A Numba view of a device array, without copying."""
    if cuda.devicearray.is_cuda_ndarray(a):
        return a
    # No stream sync on import: callers launch on the producer's stream (``stream``),
    # which orders the work; syncing here would stall the GPU on every call.
    return cuda.as_cuda_array(a, sync=False)


def _blocks(n: int) -> int:
    return max(1, (n + THREADS - 1) // THREADS)


BLOCK_2D = (32, 4)  # x (fastest, warp-contiguous) runs along the last, contiguous axis


def _grid_2d(rows: int, cols: int) -> tuple[int, int]:
    return (max(1, (cols + 31) // 32), max(1, (rows + 3) // 4))


# ---------------------------------------------------------------- cross-entropy


@cuda.jit
def _ce_kernel(logits, labels, row_losses, dlogits, want_grad):
    b = cuda.grid(1)
    if b >= logits.shape[0]:
        return
    t = labels[b]
    loss, m, s = _row_loss(logits, b, t)
    row_losses[b] = loss
    if want_grad:
        _row_grad(logits, b, t, m, s, logits.shape[0], dlogits)


def softmax_cross_entropy(
    logits: Any,
    labels: Any,
    row_losses_out: Any,
    dlogits_out: Any | None = None,
    *,
    stream: Any = 0,
) -> None:
    """The CPU ``softmax_cross_entropy`` on device arrays, one thread per row; no sync.

    Trusted arguments (not checked, which would need a copy to the host): logits (B, C)
    float32/float64; labels (B,) integers in [0, C) (an out-of-range label reads outside
    the row); row_losses_out (B,) float64 receives -log(softmax(logits)[b, t_b] + DELTA),
    so the book's loss is ``row_losses_out.sum() / B`` (summed on the device by the
    caller; no atomics here, so it is deterministic); dlogits_out None or (B, C) in
    logits' dtype receives (softmax(logits) - onehot(labels)) / B.
    """
    logits = _device(logits)
    want_grad = dlogits_out is not None
    # without a gradient the kernel never touches its dlogits argument: pass logits
    dlogits = _device(dlogits_out) if want_grad else logits
    _ce_kernel[_blocks(logits.shape[0]), THREADS, stream](
        logits, _device(labels), _device(row_losses_out), dlogits, want_grad
    )


# ---------------------------------------------------------- numerical gradient


@cuda.jit
def _to_float64_2d(src, dst):
    j, i = cuda.grid(2)
    if i < src.shape[0] and j < src.shape[1]:
        dst[i, j] = np.float64(src[i, j])


@cuda.jit
def _to_float64_1d(src, dst):
    i = cuda.grid(1)
    if i < src.shape[0]:
        dst[i] = np.float64(src[i])


def _as_float64(a: Any, stream: Any, out: Any = None) -> Any:
    """``a`` itself if float64, else a float64 copy made on the device (into ``out``)."""
    if a.dtype == np.float64:
        return a
    out = cuda.device_array(a.shape, np.float64, stream=stream) if out is None else _device(out)
    if a.ndim == 2:
        _to_float64_2d[_grid_2d(*a.shape), BLOCK_2D, stream](a, out)
    else:
        _to_float64_1d[_blocks(a.shape[0]), THREADS, stream](a, out)
    return out


class NumericalWorkspace:
    """The scratch of ``two_layer_numerical_gradient`` for one problem size, made once.

    ``empty(shape)`` makes a float64 device array (Numba's allocator by default; xpnet
    passes CuPy's pool). Reused across calls, so a step allocates nothing, as a captured
    CUDA graph needs. ``dtype`` is the inputs' dtype: float32 inputs get float64 copies.
    """

    def __init__(self, batch: int, d_in: int, n_hidden: int, n_out: int, dtype: Any,
                 empty: Any = None) -> None:
        if empty is None:
            def empty(shape: Any) -> Any:
                return cuda.device_array(shape, np.float64)
        self.shape = (batch, d_in, n_hidden, n_out)
        self.units = empty((8, batch, n_hidden))
        self.a2 = empty((batch, n_out))
        self.exps = empty((batch, n_out))
        self.samples = empty((3, batch))
        self.w2_absmax = empty((n_hidden,))
        wide = np.dtype(dtype) != np.float64
        self.inputs = tuple(empty(s) if wide else None for s in (
            (d_in, n_hidden), (n_hidden,), (n_hidden, n_out), (n_out,), (batch, d_in)))


@cuda.jit
def _hidden_stats(x, w1, b1, units):
    """One thread per (sample b, hidden unit j): a1 = x @ W1 + b1, z1, 1 - z1."""
    j, b = cuda.grid(2)
    if b < x.shape[0] and j < w1.shape[1]:
        a = b1[j]
        for i in range(x.shape[1]):
            a += x[b, i] * w1[i, j]
        _unit_activation(b, j, a, units)


@cuda.jit
def _output_stats(units, w2, b2, labels, a2, exps, samples):
    """One thread per sample: logits, their max-shifted exps and the samples table."""
    b = cuda.grid(1)
    if b < a2.shape[0]:
        _sample_outputs(b, labels[b], units, w2, b2, a2, exps, samples)


@cuda.jit
def _moments(exps, w2, labels, units, w2_absmax):
    """One thread per (sample b, hidden unit j): the moments of exps[b] over W2[j]."""
    j, b = cuda.grid(2)
    if b < exps.shape[0] and j < w2.shape[0]:
        wmax = _unit_moments(b, j, labels[b], exps, w2, units)
        if b == 0:
            w2_absmax[j] = wmax


@cuda.jit
def _hidden_grad(x, labels, units, samples, w2_absmax, a2, w2, h, gw1, gb1):
    """One thread per W1[i, j] (and per b1[j] as i = D, x = 1): loop over the batch."""
    p = cuda.grid(1)
    batch, d_in = x.shape
    n_hidden = gw1.shape[1]
    if p >= (d_in + 1) * n_hidden:
        return
    i = p // n_hidden
    j = p % n_hidden
    acc = 0.0
    for b in range(batch):
        xv = x[b, i] if i < d_in else 1.0
        if xv != 0.0:
            e = h * xv
            acc += _hidden_pair(e, math.expm1(-e), math.expm1(e), b, j, labels[b],
                                units, samples, w2_absmax, a2, w2)
    g = acc / batch / (2.0 * h)
    if i < d_in:
        gw1[i, j] = g
    else:
        gb1[j] = g


@cuda.jit
def _output_grad(units, labels, samples, exps, a2, h, gw2, gb2):
    """One thread per W2[j, k] (and per b2[k] as j = H, z = 1): loop over the batch."""
    p = cuda.grid(1)
    n_hidden, n_out = gw2.shape
    if p >= (n_hidden + 1) * n_out:
        return
    j = p // n_out
    k = p % n_out
    acc = 0.0
    for b in range(a2.shape[0]):
        zv = units[Z1, b, j] if j < n_hidden else 1.0
        if zv != 0.0:
            acc += _output_pair(h * zv, b, k, labels[b], samples, exps, a2)
    g = acc / a2.shape[0] / (2.0 * h)
    if j < n_hidden:
        gw2[j, k] = g
    else:
        gb2[k] = g


def two_layer_numerical_gradient(
    W1: Any,
    b1: Any,
    W2: Any,
    b2: Any,
    x: Any,
    labels: Any,
    *,
    h: float = 1e-4,
    stream: Any = 0,
    out: tuple[Any, Any, Any, Any] | None = None,
    workspace: NumericalWorkspace | None = None,
) -> tuple[Any, Any, Any, Any]:
    """The CPU ``two_layer_numerical_gradient`` on device arrays, same numbers; no sync.

    Trusted arguments (not checked): W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), x (B, D),
    float32/float64 device arrays (float32 is copied to float64 on the device); labels
    (B,) integer device array in [0, C); h a finite step > 0. NaN or inf give NaN or inf
    gradients. Returns (gW1, gb1, gW2, gb2): ``out`` (float64 device arrays shaped like
    the parameters) if given, else new float64 Numba device arrays. ``workspace`` (for
    these shapes and dtype) holds the scratch; without it, it is allocated by Numba.
    With both, nothing is allocated: the call can be captured in a CUDA graph.
    """
    batch, d_in = x.shape
    n_hidden, n_out = W2.shape
    if workspace is None:
        workspace = NumericalWorkspace(batch, d_in, n_hidden, n_out, x.dtype)
    W1, b1, W2, b2, x = (_as_float64(_device(a), stream, wide)
                         for a, wide in zip((W1, b1, W2, b2, x), workspace.inputs, strict=True))
    labels = _device(labels)
    units, a2, exps, samples, w2_absmax = (
        _device(a) for a in (workspace.units, workspace.a2, workspace.exps, workspace.samples,
                             workspace.w2_absmax))
    grid_bj = _grid_2d(batch, n_hidden)
    _hidden_stats[grid_bj, BLOCK_2D, stream](x, W1, b1, units)
    _output_stats[_blocks(batch), THREADS, stream](units, W2, b2, labels, a2, exps, samples)
    _moments[grid_bj, BLOCK_2D, stream](exps, W2, labels, units, w2_absmax)

    if out is None:
        out = tuple(cuda.device_array(s, np.float64, stream=stream) for s in (
            (d_in, n_hidden), (n_hidden,), (n_hidden, n_out), (n_out,)))
    gw1, gb1, gw2, gb2 = (_device(g) for g in out)
    h = float(h)
    n1 = (d_in + 1) * n_hidden
    _hidden_grad[_blocks(n1), THREADS, stream](
        x, labels, units, samples, w2_absmax, a2, W2, h, gw1, gb1
    )
    n2 = (n_hidden + 1) * n_out
    _output_grad[_blocks(n2), THREADS, stream](units, labels, samples, exps, a2, h, gw2, gb2)
    return out
