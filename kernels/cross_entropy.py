"""Softmax fused with the book's cross-entropy error, on the CPU (Numba, parallel over rows).

Row b's loss is exactly the book's ``cross_entropy_error(softmax(logits), t)`` term::

    -log(softmax(logits)[b, t_b] + DELTA)

computed in float64 from the max-shifted logits, so huge logits (e.g. +-1000) are fine.
The book's mean loss is ``row_losses.sum() / B``. Rows run in parallel for big batches
(one thread below PARALLEL_MIN_SIZE logits); each row is computed the same way on
either path, so the result does not depend on the thread count.

An inner layer: arguments are trusted (see ``softmax_cross_entropy``), not checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

DELTA = 1e-7  # the book's cross_entropy_error adds this inside the log; keep it exact


class RowFunctions(NamedTuple):
    """The per-row math, compiled for one target (CPU or CUDA)."""

    row_loss: Any  # (logits, b, t) -> (loss, row max, softmax denominator)
    row_grad: Any  # (logits, b, t, max, denominator, batch, dlogits) -> None


def build_row_functions(jit: Callable[[Any], Any]) -> RowFunctions:
    """Compile the per-row math with ``jit``: ``njit`` here, ``cuda.jit(device=True)`` for CUDA.

    One source for both targets keeps their numbers equal.
    """

    @jit
    def row_loss(logits, b, t):
        """Return (loss, max, denominator) of row ``b`` with label ``t``, all float64."""
        m = np.float64(logits[b, 0])
        for k in range(1, logits.shape[1]):
            v = np.float64(logits[b, k])
            if v > m:  # not max(): the CUDA target cannot compile it
                m = v
        s = 0.0
        for k in range(logits.shape[1]):
            s += math.exp(np.float64(logits[b, k]) - m)
        p = math.exp(np.float64(logits[b, t]) - m) / s
        return -math.log(p + DELTA), m, s

    @jit
    def row_grad(logits, b, t, m, s, batch, dlogits):
        """dlogits[b] = (softmax(logits[b]) - onehot(t)) / batch, given row max and sum."""
        for k in range(logits.shape[1]):
            p = math.exp(np.float64(logits[b, k]) - m) / s
            if k == t:
                p -= 1.0
            dlogits[b, k] = p / batch

    return RowFunctions(row_loss, row_grad)


_cpu = build_row_functions(njit(cache=True, inline="always"))
_row_loss = _cpu.row_loss
_row_grad = _cpu.row_grad

# Below this many logits one thread is faster: the rows are cheap, and waking Numba's
# threads right after a NumPy matmul, while OpenBLAS's threads still spin, costs far more
# than a small batch's whole loss (bench/test_bench_cross_entropy.py measures both).
PARALLEL_MIN_SIZE = 1 << 15


@njit(cache=True, inline="always")
def _ce_row(logits, labels, row_losses, dlogits, want_grad, b):
    loss, m, s = _row_loss(logits, b, labels[b])
    row_losses[b] = loss
    if want_grad:
        _row_grad(logits, b, labels[b], m, s, logits.shape[0], dlogits)


@njit(parallel=True, cache=True)
def _ce_parallel(logits, labels, row_losses, dlogits, want_grad):
    for b in prange(logits.shape[0]):
        _ce_row(logits, labels, row_losses, dlogits, want_grad, b)


@njit(cache=True)
def _ce_serial(logits, labels, row_losses, dlogits, want_grad):
    for b in range(logits.shape[0]):
        _ce_row(logits, labels, row_losses, dlogits, want_grad, b)


def softmax_cross_entropy(
    logits: np.ndarray,
    labels: np.ndarray,
    row_losses_out: np.ndarray,
    dlogits_out: np.ndarray | None = None,
) -> None:
    """Per-row book losses, and optionally their gradient, into the ``_out`` arrays.

    Trusted arguments (not checked): logits (B, C) float32/float64, B, C >= 1; labels
    (B,) integers in [0, C) (an out-of-range label reads outside the row); row_losses_out
    (B,) float64 receives -log(softmax(logits)[b, t_b] + DELTA), so the book's loss is
    ``row_losses_out.sum() / B``; dlogits_out None or (B, C) in logits' dtype receives
    (softmax(logits) - onehot(labels)) / B. The same call as ``kernels.cuda``'s, less
    the stream.
    """
    want_grad = dlogits_out is not None
    # without a gradient the kernel never touches its dlogits argument
    dlogits = dlogits_out if want_grad else np.empty((0, 0), logits.dtype)
    kernel = _ce_parallel if logits.size >= PARALLEL_MIN_SIZE else _ce_serial
    kernel(logits, labels, row_losses_out, dlogits, want_grad)
