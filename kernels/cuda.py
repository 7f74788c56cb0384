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

from ._checks import check_batch, check_float, check_int_labels, check_two_layer_args
from .cross_entropy import build_row_functions
from .numerical_gradient import Z1, build_device_functions

THREADS = 128  # threads per block for the 1-D launches

_row_loss, _row_grad = build_row_functions(cuda.jit(device=True))
(
    _unit_activation,
    _sample_outputs,
    _unit_moments,
    _hidden_pair,
    _,  # the CPU's branch-free twin of _hidden_pair
    _output_pair,
) = build_device_functions(cuda.jit(device=True))


def _device(name: str, a: Any) -> Any:
    """A Numba view of a device array, without copying; host arrays are refused."""
    if cuda.devicearray.is_cuda_ndarray(a):
        return a
    if hasattr(a, "__cuda_array_interface__"):
        # No stream sync on import: callers launch on the producer's stream (``stream``),
        # which orders the work; syncing here would stall the GPU on every call.
        return cuda.as_cuda_array(a, sync=False)
    raise TypeError(
        f"{name}: expected a device array (with __cuda_array_interface__), got {type(a).__name__}"
    )


def _blocks(n: int) -> int:
    return max(1, (n + THREADS - 1) // THREADS)


BLOCK_2D = (32, 4)  # x (fastest, warp-contiguous) runs along the last, contiguous axis


def _grid_2d(rows: int, cols: int) -> tuple[int, int]:
    return (max(1, (cols + 31) // 32), max(1, (rows + 3) // 4))


# ---------------------------------------------------------------- cross-entropy


@cuda.jit
def _ce_kernel(logits, labels, losses, dlogits, want_grad):
    b = cuda.grid(1)
    if b >= logits.shape[0]:
        return
    t = labels[b]
    if t < 0 or t >= logits.shape[1]:  # no host check on this path: poison the row instead
        losses[b] = math.nan
        if want_grad:
            for k in range(logits.shape[1]):
                dlogits[b, k] = math.nan
        return
    loss, m, s = _row_loss(logits, b, t)
    losses[b] = loss
    if want_grad:
        _row_grad(logits, b, t, m, s, logits.shape[0], dlogits)


def softmax_cross_entropy(
    logits: Any,
    labels: Any,
    row_losses_out: Any,
    dlogits_out: Any | None = None,
    stream: Any = 0,
) -> None:
    """Per-row book losses, and optionally their gradient, one thread per row; no sync.

    logits: (B, C) float32/float64. labels: (B,) any integer dtype. row_losses_out:
    (B,) float64, receives -log(softmax(logits)[b, t_b] + 1e-7); the book's loss is
    ``row_losses_out.sum() / B`` (sum it on the device; no atomics here, so it is
    deterministic). dlogits_out: None or (B, C) in logits' dtype, receives
    (softmax(logits) - onehot(labels)) / B. Shapes and dtypes are checked on the host;
    label values are not (that would need a copy): a label outside [0, C) makes its
    row NaN.
    """
    logits = _device("logits", logits)
    check_float("logits", logits, ("B", "C"))
    check_batch("logits", logits)
    batch, classes = logits.shape
    labels = _device("labels", labels)
    check_int_labels("labels", labels, batch)
    row_losses_out = _device("row_losses_out", row_losses_out)
    if row_losses_out.dtype != np.float64 or tuple(row_losses_out.shape) != (batch,):
        raise ValueError(
            f"row_losses_out: expected a float64 array of shape ({batch},), "
            f"got shape {tuple(row_losses_out.shape)} dtype {row_losses_out.dtype}"
        )
    want_grad = dlogits_out is not None
    if want_grad:
        dlogits_out = _device("dlogits_out", dlogits_out)
        if dlogits_out.dtype != logits.dtype or tuple(dlogits_out.shape) != (batch, classes):
            raise ValueError(
                f"dlogits_out: expected a {logits.dtype} array of shape ({batch}, {classes}), "
                f"got shape {tuple(dlogits_out.shape)} dtype {dlogits_out.dtype}"
            )
    # without a gradient the kernel never touches its dlogits argument: pass logits
    dl = dlogits_out if want_grad else logits
    _ce_kernel[_blocks(batch), THREADS, stream](logits, labels, row_losses_out, dl, want_grad)


# ---------------------------------------------------------- numerical gradient


@cuda.jit
def _to_float64_2d(src, dst, flags, slot):
    j, i = cuda.grid(2)
    if i < src.shape[0] and j < src.shape[1]:
        v = np.float64(src[i, j])
        dst[i, j] = v
        if not math.isfinite(v):
            flags[slot] = 1  # every writer stores 1: the race is harmless


@cuda.jit
def _to_float64_1d(src, dst, flags, slot):
    i = cuda.grid(1)
    if i < src.shape[0]:
        v = np.float64(src[i])
        dst[i] = v
        if not math.isfinite(v):
            flags[slot] = 1


@cuda.jit
def _to_labels(src, dst, classes, flags, slot):
    i = cuda.grid(1)
    if i < src.shape[0]:
        t = src[i]
        dst[i] = t
        if t < 0 or t >= classes:
            flags[slot] = 1


@cuda.jit
def _hidden_stats(x, w1, b1, hs):
    """One thread per (sample b, hidden unit j): a1 = x @ W1 + b1, z1, 1 - z1."""
    j, b = cuda.grid(2)
    if b < x.shape[0] and j < w1.shape[1]:
        a = b1[j]
        for i in range(x.shape[1]):
            a += x[b, i] * w1[i, j]
        _unit_activation(b, j, a, hs)


@cuda.jit
def _output_stats(hs, w2, b2, labels, a2, ex, bs):
    """One thread per sample: logits, their max-shifted exps and the bs table."""
    b = cuda.grid(1)
    if b < a2.shape[0]:
        _sample_outputs(b, labels[b], hs, w2, b2, a2, ex, bs)


@cuda.jit
def _moments(ex, w2, labels, hs, w2max):
    """One thread per (sample b, hidden unit j): the moments of ex[b] over W2[j]."""
    j, b = cuda.grid(2)
    if b < ex.shape[0] and j < w2.shape[0]:
        wmax = _unit_moments(b, j, labels[b], ex, w2, hs)
        if b == 0:
            w2max[j] = wmax


@cuda.jit
def _hidden_grad(x, labels, hs, bs, w2max, a2, w2, h, gw1, gb1):
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
            emp = math.expm1(-e)
            emm = math.expm1(e)
            acc += _hidden_pair(e, emp, emm, b, j, labels[b], hs, bs, w2max, a2, w2)
    g = acc / batch / (2.0 * h)
    if i < d_in:
        gw1[i, j] = g
    else:
        gb1[j] = g


@cuda.jit
def _output_grad(hs, labels, bs, ex, a2, h, gw2, gb2):
    """One thread per W2[j, k] (and per b2[k] as j = H, z = 1): loop over the batch."""
    p = cuda.grid(1)
    n_hidden, n_out = gw2.shape
    if p >= (n_hidden + 1) * n_out:
        return
    j = p // n_out
    k = p % n_out
    acc = 0.0
    for b in range(a2.shape[0]):
        zv = hs[Z1, b, j] if j < n_hidden else 1.0
        if zv != 0.0:
            acc += _output_pair(h * zv, b, k, labels[b], bs, ex, a2)
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
    h: float = 1e-4,
    stream: Any = 0,
) -> tuple[Any, Any, Any, Any]:
    """The book's numerical gradient of TwoLayerNet on the GPU, same numbers as the CPU one.

    W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), x (B, D): float32/float64 device arrays
    (copied to float64 on the device). labels: (B,) integer device array in [0, C).
    Returns (gW1, gb1, gW2, gb2) as new float64 Numba device arrays. Shapes and dtypes
    are checked on the host; finiteness and label range by a kernel whose 6 flags are
    the only device-to-host copy (so this call synchronizes once).
    """
    arrays = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "x": x}
    dev = {name: _device(name, a) for name, a in arrays.items()}
    check_two_layer_args(dev["W1"], dev["b1"], dev["W2"], dev["b2"], dev["x"], h)
    batch, d_in = dev["x"].shape
    n_hidden, n_out = dev["W2"].shape
    t_in = _device("labels", labels)
    check_int_labels("labels", t_in, batch)

    flags = cuda.to_device(np.zeros(len(dev) + 1, np.int32), stream=stream)
    p = {}
    for slot, (name, a) in enumerate(dev.items()):
        p[name] = cuda.device_array(a.shape, np.float64, stream=stream)
        if a.ndim == 2:
            grid = _grid_2d(*a.shape)
            _to_float64_2d[grid, BLOCK_2D, stream](a, p[name], flags, slot)
        else:
            _to_float64_1d[_blocks(a.shape[0]), THREADS, stream](a, p[name], flags, slot)
    t = cuda.device_array(batch, np.int64, stream=stream)
    _to_labels[_blocks(batch), THREADS, stream](t_in, t, n_out, flags, len(dev))
    bad = flags.copy_to_host(stream=stream)
    stream_sync = getattr(stream, "synchronize", None)
    if stream_sync is not None:
        stream_sync()
    for slot, name in enumerate(dev):
        if bad[slot]:
            raise ValueError(f"{name}: expected finite values, got some NaN or inf")
    if bad[len(dev)]:
        raise ValueError(f"labels: expected integers in [0, {n_out - 1}], got some outside")

    hs = cuda.device_array((8, batch, n_hidden), np.float64, stream=stream)
    a2 = cuda.device_array((batch, n_out), np.float64, stream=stream)
    ex = cuda.device_array((batch, n_out), np.float64, stream=stream)
    bs = cuda.device_array((3, batch), np.float64, stream=stream)
    w2max = cuda.device_array(n_hidden, np.float64, stream=stream)
    grid_bj = _grid_2d(batch, n_hidden)
    _hidden_stats[grid_bj, BLOCK_2D, stream](p["x"], p["W1"], p["b1"], hs)
    _output_stats[_blocks(batch), THREADS, stream](hs, p["W2"], p["b2"], t, a2, ex, bs)
    _moments[grid_bj, BLOCK_2D, stream](ex, p["W2"], t, hs, w2max)

    gw1 = cuda.device_array((d_in, n_hidden), np.float64, stream=stream)
    gb1 = cuda.device_array(n_hidden, np.float64, stream=stream)
    gw2 = cuda.device_array((n_hidden, n_out), np.float64, stream=stream)
    gb2 = cuda.device_array(n_out, np.float64, stream=stream)
    h = float(h)
    n1 = (d_in + 1) * n_hidden
    _hidden_grad[_blocks(n1), THREADS, stream](p["x"], t, hs, bs, w2max, a2, p["W2"], h, gw1, gb1)
    n2 = (n_hidden + 1) * n_out
    _output_grad[_blocks(n2), THREADS, stream](hs, t, bs, ex, a2, h, gw2, gb2)
    return gw1, gb1, gw2, gb2


# the names with the device in them, for callers that import both flavours side by side
softmax_cross_entropy_cuda = softmax_cross_entropy
two_layer_numerical_gradient_cuda = two_layer_numerical_gradient
