"""The book's numerical gradient of TwoLayerNet, computed incrementally (CPU, Numba).

The book perturbs every parameter by +-h (h = 1e-4) and runs two full forward passes
of ``loss = cross_entropy_error(softmax(sigmoid(x @ W1 + b1) @ W2 + b2), t)``. This
module produces the same central differences, but evaluates each perturbed loss from
a float64 forward pass done once:

* W1[i, j] +- h moves only hidden unit j, and only in samples with x[b, i] != 0, by
  dz = sigmoid(a1[b, j] +- h x[b, i]) - z1[b, j]; the logits become a2[b] + dz W2[j].
  b1[j] is the same with x = 1. W2[j, k] +- h moves logit k by +-h z1[b, j]; b2[k] by +-h.
* Each entry is sum_b (L_b(+) - L_b(-)) / B / (2h), with per-sample loss differences
  (the book differences two batch totals, which only adds cancellation noise).
* dz is computed without cancellation as -z s em / (1 + s em), s = 1 - z, em = expm1(-+e),
  e = h x[b, i]; em is shared by all hidden units.
* The perturbed softmax denominator is S_b + sum_k E_bk expm1(dz W2[j, k]). When
  Y = |dz| max_k |W2[j, k]| <= 1e-3 the expm1 series stops at order 4 (truncation
  below S Y^5 / 120 e^Y, i.e. < 1e-17 relative) and its sum over k regroups into the
  precomputed moments sum_k E_bk W2[j, k]^r / r!, r = 1..4; otherwise the perturbed
  losses are evaluated exactly, each with its own max shift.
* L(+) - L(-) is one log1p(u) of a ratio near 1, u computed without cancellation, by
  its order-5 series when |u| <= 1e-3 (truncation < 2e-19).

These are algebraic rewrites with series cut below float64 rounding, so the result is
the book's central difference to ~1e-16 relative, i.e. closer to the exact central
difference than the element-by-element loop itself (whose noise is ~1e-12).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, prange

from ._checks import check_two_layer_args, labels_as_intp

EPS = 1e-7  # the book's cross_entropy_error adds this inside the log
SERIES_MAX = 1e-3  # largest Y = |dz| max|W2[j]| and |u| for which the series are exact
# A row (i, b) takes the branch-free path for all j when |e| / 4 * max|W2| <= ROW_MAX:
# then Y <= ROW_MAX (|dz| <= |e| / 4) and |u| <= ((1 + Y') / (1 - Y'))^2 - 1 < 1e-3,
# Y' = expm1(Y), so every series condition holds without testing each j.
ROW_MAX = 2.4e-4

# The unperturbed float64 forward pass, as the kernels read it:
# hs (8, B, H), per (sample, hidden unit): A1 = (x @ W1 + b1), Z1 = sigmoid(a1), S1 = 1 - z1,
#   M1..M4 = sum_k ex[b, k] W2[j, k]^r / r! (r = 1..4), WT = W2[j, t_b];
# bs (3, B), per sample: SUM = sum_k ex[b, k], TGT = ex[b, t_b], REST = SUM less the target;
# ex (B, C) = exp(a2 - row max); a2 (B, C) the logits; w2max (H,) = max_k |W2[j, k]|.
A1, Z1, S1, M1, M2, M3, M4, WT = range(8)
SUM, TGT, REST = range(3)


def build_device_functions(
    jit: Callable[[Any], Any], hot_jit: Callable[[Any], Any] | None = None
) -> tuple[Any, ...]:
    """Compile the per-sample math with ``jit``: njit here, ``cuda.jit(device=True)`` in .cuda.

    ``hot_jit`` (default ``jit``) compiles what the inner loops call; the CPU inlines those.

    Returns ``(unit_activation, sample_outputs, unit_moments, hidden_pair,
    hidden_pair_series, output_pair)``; one source keeps CPU and CUDA numbers equal.
    """
    hot_jit = hot_jit or jit

    @jit
    def unit_activation(b, j, a, hs):
        """Store pre-activation a of hidden unit j, sample b, with its sigmoid z and 1 - z."""
        hs[A1, b, j] = a
        hs[Z1, b, j] = 1.0 / (1.0 + math.exp(-a))  # exp overflow gives the right 0 or 1
        hs[S1, b, j] = 1.0 / (1.0 + math.exp(a))

    @jit
    def sample_outputs(b, t, hs, w2, b2, a2, ex, bs):
        """Logits a2[b] = z1[b] @ W2 + b2, ex[b] and bs[:, b] of sample b with label t."""
        m = -math.inf
        for k in range(w2.shape[1]):
            v = b2[k]
            for j in range(w2.shape[0]):
                v += hs[Z1, b, j] * w2[j, k]
            a2[b, k] = v
            if v > m:  # not max(): the CUDA target cannot compile it
                m = v
        total = 0.0
        rest = 0.0  # summed apart, not SUM - TGT, which cancels when p ~ 1
        for k in range(w2.shape[1]):
            e = math.exp(a2[b, k] - m)
            ex[b, k] = e
            total += e
            if k != t:
                rest += e
        bs[SUM, b] = total
        bs[TGT, b] = ex[b, t]
        bs[REST, b] = rest

    @jit
    def unit_moments(b, j, t, ex, w2, hs):
        """Store the moments and W2[j, t] of (sample b, unit j); return max_k |W2[j, k]|."""
        m1 = 0.0
        m2 = 0.0
        m3 = 0.0
        m4 = 0.0
        wmax = 0.0
        for k in range(w2.shape[1]):
            w = w2[j, k]
            e = ex[b, k]
            m1 += e * w
            m2 += e * w * w
            m3 += e * w * w * w
            m4 += e * w * w * w * w
            if abs(w) > wmax:
                wmax = abs(w)
        hs[M1, b, j] = m1
        hs[M2, b, j] = m2 / 2.0
        hs[M3, b, j] = m3 / 6.0
        hs[M4, b, j] = m4 / 24.0
        hs[WT, b, j] = w2[j, t]
        return wmax

    @hot_jit
    def log1p_series(u):
        return u * (1.0 - u * (0.5 - u * (1.0 / 3.0 - u * (0.25 - u * 0.2))))

    @hot_jit
    def log1p_small(u):
        """log(1 + u), by the order-5 series when |u| <= SERIES_MAX."""
        if abs(u) > SERIES_MAX:
            return math.log1p(u)
        return log1p_series(u)

    @jit
    def sigmoid_delta(a, z, s, e, em):
        """sigmoid(a + e) - sigmoid(a), given z = sigmoid(a), s = 1 - z, em = expm1(-e)."""
        if abs(e) <= 1.0:
            return -z * s * em / (1.0 + s * em)
        return 1.0 / (1.0 + math.exp(-(a + e))) - z  # large steps: no cancellation to fear

    @jit
    def shifted_loss(a2, w2, b, j, t, dz):
        """Exact loss of sample b when its logits become a2[b] + dz * w2[j]."""
        m = -math.inf
        for k in range(a2.shape[1]):
            v = a2[b, k] + dz * w2[j, k]
            if v > m:  # not max(): the CUDA target cannot compile it
                m = v
        s = 0.0
        for k in range(a2.shape[1]):
            s += math.exp(a2[b, k] + dz * w2[j, k] - m)
        return -math.log(math.exp(a2[b, t] + dz * w2[j, t] - m) / s + EPS)

    @jit
    def bumped_loss(a2, b, k, t, delta):
        """Exact loss of sample b when its logit k moves by delta."""
        m = -math.inf
        for c in range(a2.shape[1]):
            v = a2[b, c] + (delta if c == k else 0.0)
            if v > m:
                m = v
        s = 0.0
        for c in range(a2.shape[1]):
            s += math.exp(a2[b, c] + (delta if c == k else 0.0) - m)
        return -math.log(math.exp(a2[b, t] + (delta if t == k else 0.0) - m) / s + EPS)

    # With p = T / S (target term over denominator), L(+) - L(-) is
    #   log((T- + EPS S-) S+ / ((T+ + EPS S+) S-)) = log1p((T- S+ - T+ S-) / ((T+ + EPS S+) S-)),
    # and T- S+ - T+ S- is expanded so that no two nearly equal numbers are subtracted.

    @hot_jit
    def hidden_u(dzp, dzm, b, j, hs, bs):
        """The log1p argument u of hidden unit j, sample b, for dz = dzp and dzm (series)."""
        m1 = hs[M1, b, j]
        m2 = hs[M2, b, j]
        m3 = hs[M3, b, j]
        m4 = hs[M4, b, j]
        # S+- = S + d+-, d = sum_k E_k expm1(dz W2[j, k]) by the moments
        dp = dzp * (m1 + dzp * (m2 + dzp * (m3 + dzp * m4)))
        dm = dzm * (m1 + dzm * (m2 + dzm * (m3 + dzm * m4)))
        # T+- = T (1 + q+-), q = expm1(dz W2[j, t]) by the same series
        yp = dzp * hs[WT, b, j]
        ym = dzm * hs[WT, b, j]
        qp = yp * (1.0 + yp * (0.5 + yp * (1.0 / 6.0 + yp * (1.0 / 24.0))))
        qm = ym * (1.0 + ym * (0.5 + ym * (1.0 / 6.0 + ym * (1.0 / 24.0))))
        s0 = bs[SUM, b]
        t0 = bs[TGT, b]
        num = t0 * ((dp - dm) + s0 * (qm - qp) + (qm * dp - qp * dm))
        return num / ((t0 * (1.0 + qp) + EPS * (s0 + dp)) * (s0 + dm))

    @jit
    def hidden_pair(e, emp, emm, b, j, t, hs, bs, w2max, a2, w2):
        """L_b(a1[b, j] + e) - L_b(a1[b, j] - e); emp = expm1(-e), emm = expm1(e)."""
        a = hs[A1, b, j]
        z = hs[Z1, b, j]
        s = hs[S1, b, j]
        dzp = sigmoid_delta(a, z, s, e, emp)
        dzm = sigmoid_delta(a, z, s, -e, emm)
        if abs(dzp) * w2max[j] > SERIES_MAX or abs(dzm) * w2max[j] > SERIES_MAX:
            return shifted_loss(a2, w2, b, j, t, dzp) - shifted_loss(a2, w2, b, j, t, dzm)
        return log1p_small(hidden_u(dzp, dzm, b, j, hs, bs))

    @hot_jit
    def hidden_pair_series(emp, emm, b, j, hs, bs):
        """hidden_pair when the row test (ROW_MAX) holds: the same numbers, branch-free."""
        z = hs[Z1, b, j]
        s = hs[S1, b, j]
        dzp = -z * s * emp / (1.0 + s * emp)
        dzm = -z * s * emm / (1.0 + s * emm)
        return log1p_series(hidden_u(dzp, dzm, b, j, hs, bs))

    @hot_jit
    def output_pair(delta, b, k, t, bs, ex, a2):
        """L_b(a2[b, k] + delta) - L_b(a2[b, k] - delta)."""
        if abs(delta) > 1.0:
            return bumped_loss(a2, b, k, t, delta) - bumped_loss(a2, b, k, t, -delta)
        ep = math.expm1(delta)
        em = math.expm1(-delta)
        s0 = bs[SUM, b]
        t0 = bs[TGT, b]
        if k == t:
            num = -t0 * (ep - em) * bs[REST, b]
            tp = t0 * (1.0 + ep)
        else:
            num = t0 * ex[b, k] * (ep - em)
            tp = t0
        den = (tp + EPS * (s0 + ex[b, k] * ep)) * (s0 + ex[b, k] * em)
        return log1p_small(num / den)

    return (
        unit_activation,
        sample_outputs,
        unit_moments,
        hidden_pair,
        hidden_pair_series,
        output_pair,
    )


# The inner loops' functions are inlined at Numba IR level: as calls they cost 3x. The
# rest stay calls, which keeps compile time down.
(
    _unit_activation,
    _sample_outputs,
    _unit_moments,
    _hidden_pair,
    _hidden_pair_series,
    _output_pair,
) = build_device_functions(njit(cache=True), njit(cache=True, inline="always"))


@njit(parallel=True, cache=True)
def _forward_tables(x, w1, b1, w2, b2, labels, hs, bs, ex, a2, w2max):
    """Fill the tables of the unperturbed forward pass (float64 in, one sample per task).

    Loops rather than BLAS: spinning OpenBLAS threads would slow the parallel loops next.
    """
    batch, d_in = x.shape
    n_hidden = w1.shape[1]
    for b in prange(batch):
        a = b1.copy()
        for i in range(d_in):
            xv = x[b, i]
            if xv != 0.0:  # images are mostly zeros
                for j in range(n_hidden):
                    a[j] += xv * w1[i, j]
        for j in range(n_hidden):
            _unit_activation(b, j, a[j], hs)
        _sample_outputs(b, labels[b], hs, w2, b2, a2, ex, bs)
        for j in range(n_hidden):
            wmax = _unit_moments(b, j, labels[b], ex, w2, hs)
            if b == 0:
                w2max[j] = wmax


@njit(parallel=True, cache=True)
def _hidden_grad(x, labels, hs, bs, w2max, a2, w2, h, out):
    """out[i, j] = central difference for W1[i, j]; the extra last row i = D is b1 (x = 1)."""
    batch, d_in = x.shape
    n_hidden = out.shape[1]
    row_scale = 0.25 * w2max.max()
    for i in prange(d_in + 1):
        for j in range(n_hidden):
            out[i, j] = 0.0
        for b in range(batch):
            xv = x[b, i] if i < d_in else 1.0
            if xv == 0.0:
                continue  # W1[i, :] does not reach sample b
            e = h * xv
            emp = math.expm1(-e)  # shared by all hidden units of this (i, b)
            emm = math.expm1(e)
            if abs(e) <= 1.0 and abs(e) * row_scale <= ROW_MAX:
                for j in range(n_hidden):  # the common case: branch-free, vectorizable
                    out[i, j] += _hidden_pair_series(emp, emm, b, j, hs, bs)
            else:
                t = labels[b]
                for j in range(n_hidden):
                    out[i, j] += _hidden_pair(e, emp, emm, b, j, t, hs, bs, w2max, a2, w2)
        for j in range(n_hidden):
            out[i, j] = out[i, j] / batch / (2.0 * h)


@njit(parallel=True, cache=True)
def _output_grad(hs, labels, bs, ex, a2, h, out):
    """out[j, k] = central difference for W2[j, k]; the extra last row j = H is b2 (z = 1)."""
    batch, n_hidden = hs.shape[1], hs.shape[2]
    for j in prange(n_hidden + 1):
        for k in range(out.shape[1]):
            acc = 0.0
            for b in range(batch):
                zv = hs[Z1, b, j] if j < n_hidden else 1.0
                if zv != 0.0:
                    acc += _output_pair(h * zv, b, k, labels[b], bs, ex, a2)
            out[j, k] = acc / batch / (2.0 * h)


def two_layer_numerical_gradient(
    W1: np.ndarray,
    b1: np.ndarray,
    W2: np.ndarray,
    b2: np.ndarray,
    x: np.ndarray,
    labels: np.ndarray,
    h: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The book's numerical gradient of TwoLayerNet's loss, all four parameters at once.

    W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), x (B, D): float32 or float64, finite (cast
    to float64: a float32 central difference with h = 1e-4 is noise). labels: (B,) ints
    in [0, C) or (B, C) one-hot. Returns (gW1, gb1, gW2, gb2), float64, shaped like the
    parameters: the central differences (f(p + h) - f(p - h)) / 2h of the book's loss.
    Raises TypeError/ValueError for bad dtypes, shapes, labels, h or non-finite values.
    """
    check_two_layer_args(W1, b1, W2, b2, x, h)
    t = labels_as_intp("labels", labels, x.shape[0], W2.shape[1])
    named = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "x": x}
    p = {name: np.ascontiguousarray(v, dtype=np.float64) for name, v in named.items()}
    for name, v in p.items():
        bad = v.size - np.count_nonzero(np.isfinite(v))
        if bad:
            raise ValueError(f"{name}: expected finite values, got {bad} NaN or inf")
    batch, (d_in, n_hidden), n_out = x.shape[0], W1.shape, W2.shape[1]
    hs = np.empty((8, batch, n_hidden))
    bs = np.empty((3, batch))
    ex = np.empty((batch, n_out))
    a2 = np.empty((batch, n_out))
    w2max = np.empty(n_hidden)
    _forward_tables(p["x"], p["W1"], p["b1"], p["W2"], p["b2"], t, hs, bs, ex, a2, w2max)
    h = float(h)
    g1 = np.empty((d_in + 1, n_hidden))
    _hidden_grad(p["x"], t, hs, bs, w2max, a2, p["W2"], h, g1)
    g2 = np.empty((n_hidden + 1, n_out))
    _output_grad(hs, t, bs, ex, a2, h, g2)
    return g1[:-1], g1[-1], g2[:-1], g2[-1]
