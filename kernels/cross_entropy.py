"""Softmax fused with the book's cross-entropy error, on the CPU (Numba, parallel over rows).

The loss is exactly the book's ``cross_entropy_error(softmax(logits), t)``::

    -sum_b log(softmax(logits)[b, t_b] + 1e-7) / B

computed in float64 from the max-shifted logits, so huge logits (e.g. +-1000) are fine.
Rows run in parallel for big batches (one thread below PARALLEL_MIN_SIZE logits); the
per-row losses are summed serially in row order, so the result does not depend on the
thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, prange

from ._checks import check_batch, check_float, labels_as_intp

EPS = 1e-7  # the book's cross_entropy_error adds this inside the log; keep it exact


def build_row_functions(jit: Callable[[Any], Any]) -> tuple[Any, Any]:
    """Compile the per-row math with ``jit``: ``njit`` here, ``cuda.jit(device=True)`` for CUDA.

    Returns ``(row_loss, row_grad)``; one source for both targets keeps their numbers equal.
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
        return -math.log(p + EPS), m, s

    @jit
    def row_grad(logits, b, t, m, s, batch, dlogits):
        """dlogits[b] = (softmax(logits[b]) - onehot(t)) / batch, given row max and sum."""
        for k in range(logits.shape[1]):
            p = math.exp(np.float64(logits[b, k]) - m) / s
            if k == t:
                p -= 1.0
            dlogits[b, k] = p / batch

    return row_loss, row_grad


_row_loss, _row_grad = build_row_functions(njit(cache=True, inline="always"))

# Below this many logits one thread is faster: the rows are cheap, and waking Numba's
# threads right after a NumPy matmul, while OpenBLAS's threads still spin, cost ~8 ms
# instead of ~40 us on 2 cores (batch 100 x 10 classes).
PARALLEL_MIN_SIZE = 1 << 15


@njit(cache=True, inline="always")
def _ce_row(logits, labels, losses, dlogits, want_grad, b):
    loss, m, s = _row_loss(logits, b, labels[b])
    losses[b] = loss
    if want_grad:
        _row_grad(logits, b, labels[b], m, s, logits.shape[0], dlogits)


@njit(cache=True)
def _mean(losses):
    total = 0.0
    for v in losses:  # serial, in row order: deterministic whatever the threads did
        total += v
    return total / losses.size


@njit(parallel=True, cache=True)
def _ce_parallel(logits, labels, dlogits, want_grad):
    losses = np.empty(logits.shape[0])
    for b in prange(logits.shape[0]):
        _ce_row(logits, labels, losses, dlogits, want_grad, b)
    return _mean(losses)


@njit(cache=True)
def _ce_serial(logits, labels, dlogits, want_grad):
    losses = np.empty(logits.shape[0])
    for b in range(logits.shape[0]):
        _ce_row(logits, labels, losses, dlogits, want_grad, b)
    return _mean(losses)


def _ce(logits: np.ndarray, labels: np.ndarray, dlogits: np.ndarray, want_grad: bool) -> float:
    kernel = _ce_parallel if logits.size >= PARALLEL_MIN_SIZE else _ce_serial
    return kernel(logits, labels, dlogits, want_grad)


def _prepare(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    check_float("logits", logits, ("B", "C"))
    check_batch("logits", logits)
    batch, classes = logits.shape
    t = labels_as_intp("labels", labels, batch, classes)
    return np.ascontiguousarray(logits), t


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """The book's mean cross-entropy of ``softmax(logits)``, as a Python float.

    logits: (B, C) float32 or float64. labels: (B,) integers in [0, C) of any int dtype,
    or a (B, C) one-hot array (reduced by argmax, as the book does). Raises TypeError or
    ValueError for a wrong dtype, shape or label value.
    """
    x, t = _prepare(logits, labels)
    return _ce(x, t, np.empty((0, 0), x.dtype), False)


def softmax_cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d loss / d logits = (softmax(logits) - onehot(labels)) / B, (B, C) in logits' dtype."""
    _, dlogits = softmax_cross_entropy_with_grad(logits, labels)
    return dlogits


def softmax_cross_entropy_with_grad(
    logits: np.ndarray, labels: np.ndarray
) -> tuple[float, np.ndarray]:
    """Loss and its gradient w.r.t. the logits in one pass: ``(float, (B, C) logits' dtype)``."""
    x, t = _prepare(logits, labels)
    dlogits = np.empty_like(x)
    loss = _ce(x, t, dlogits, True)
    return loss, dlogits
