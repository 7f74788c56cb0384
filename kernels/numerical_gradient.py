"""The book's numerical gradient of TwoLayerNet, computed incrementally (CPU, Numba).

The book perturbs every parameter by +-h (h = 1e-4) and runs two full forward passes
of ``loss = cross_entropy_error(softmax(sigmoid(x @ W1 + b1) @ W2 + b2), t)``. This
module produces the same central differences from one float64 forward pass:

* W1[i, j] +- h moves only hidden unit j, and only in samples with x[b, i] != 0, by
  dz = sigmoid(a1[b, j] +- h x[b, i]) - z1[b, j]; the logits become a2[b] + dz W2[j].
  b1[j] is the same with x = 1. W2[j, k] +- h moves logit k by +-h z1[b, j]; b2[k] by +-h.
* Each entry is sum_b (L_b(+) - L_b(-)) / B / (2h), with per-sample loss differences
  (the book differences two batch totals, which only adds rounding noise).
* Each L_b(+) - L_b(-) is one log1p(u), u written so that no two nearly equal numbers
  are subtracted; short Taylor series replace exp/log where their truncation is far
  below float64 rounding of the loss, and exact evaluations take over past the cut-offs.

The identities, the series and why each cut-off (SERIES_MAX, ROW_MAX, |e| <= 1,
|delta| <= 1) is safe are derived step by step in kernels/DERIVATION.md.

An inner layer: arguments are trusted (see ``two_layer_numerical_gradient``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from .cross_entropy import DELTA

SERIES_MAX = 1e-3  # largest Y = |dz| max|W2[j]| and |u| for which the series are used
# A row (i, b) takes the branch-free path for all j when |e| / 4 * max|W2| <= ROW_MAX:
# then every Y <= ROW_MAX and |u| <= expm1(4 ROW_MAX) < SERIES_MAX (DERIVATION.md), so
# every series condition holds without testing each j.
ROW_MAX = 2.4e-4

# The unperturbed float64 forward pass, as the kernels read it:
# units (8, B, H), per (sample b, hidden unit j): A1 = (x @ W1 + b1), Z1 = sigmoid(a1),
#   S1 = 1 - z1, M1..M4 = sum_k exps[b, k] W2[j, k]^r / r! (r = 1..4), WT = W2[j, t_b];
# samples (3, B), per sample: SUM = sum_k exps[b, k], TGT = exps[b, t_b], REST = SUM less
#   the target; exps (B, C) = exp(a2 - row max); a2 (B, C) the logits;
# w2_absmax (H,) = max_k |W2[j, k]|.
A1, Z1, S1, M1, M2, M3, M4, WT = range(8)
SUM, TGT, REST = range(3)


class DeviceFunctions(NamedTuple):
    """The per-sample math, compiled for one target (CPU or CUDA)."""

    unit_activation: Any
    sample_outputs: Any
    unit_moments: Any
    sigmoid_delta: Any
    log1p_small: Any
    hidden_pair: Any
    hidden_pair_series: Any  # the branch-free twin of hidden_pair (CPU only)
    output_pair: Any


def build_device_functions(
    jit: Callable[[Any], Any], hot_jit: Callable[[Any], Any] | None = None
) -> DeviceFunctions:
    """Compile the per-sample math with ``jit``: njit here, ``cuda.jit(device=True)`` in .cuda.

    ``hot_jit`` (default ``jit``) compiles what the inner loops call; the CPU inlines
    those. One source keeps CPU and CUDA numbers equal.
    """
    hot_jit = hot_jit or jit

    @jit
    def unit_activation(b, j, a, units):
        """Store pre-activation a of hidden unit j, sample b, with its sigmoid z and 1 - z."""
        units[A1, b, j] = a
        units[Z1, b, j] = 1.0 / (1.0 + math.exp(-a))  # exp overflow gives the right 0 or 1
        units[S1, b, j] = 1.0 / (1.0 + math.exp(a))

    @jit
    def sample_outputs(b, t, units, w2, b2, a2, exps, samples):
        """Logits a2[b] = z1[b] @ W2 + b2, exps[b] and samples[:, b] of sample b, label t."""
        m = -math.inf
        for k in range(w2.shape[1]):
            v = b2[k]
            for j in range(w2.shape[0]):
                v += units[Z1, b, j] * w2[j, k]
            a2[b, k] = v
            if v > m:  # not max(): the CUDA target cannot compile it
                m = v
        total = 0.0
        rest = 0.0  # summed apart, not SUM - TGT, which cancels when p ~ 1
        for k in range(w2.shape[1]):
            e = math.exp(a2[b, k] - m)
            exps[b, k] = e
            total += e
            if k != t:
                rest += e
        samples[SUM, b] = total
        samples[TGT, b] = exps[b, t]
        samples[REST, b] = rest

    @jit
    def unit_moments(b, j, t, exps, w2, units):
        """Store the moments and W2[j, t] of (sample b, unit j); return max_k |W2[j, k]|."""
        m1 = 0.0
        m2 = 0.0
        m3 = 0.0
        m4 = 0.0
        wmax = 0.0
        for k in range(w2.shape[1]):
            w = w2[j, k]
            e = exps[b, k]
            m1 += e * w
            m2 += e * w * w
            m3 += e * w * w * w
            m4 += e * w * w * w * w
            if abs(w) > wmax:
                wmax = abs(w)
        units[M1, b, j] = m1
        units[M2, b, j] = m2 / 2.0
        units[M3, b, j] = m3 / 6.0
        units[M4, b, j] = m4 / 24.0
        units[WT, b, j] = w2[j, t]
        return wmax

    @hot_jit
    def log1p_series(u):
        """log(1 + u) to order 5: u - u^2/2 + u^3/3 - u^4/4 + u^5/5."""
        return u * (1.0 - u * (0.5 - u * (1.0 / 3.0 - u * (0.25 - u * 0.2))))

    @hot_jit
    def log1p_small(u):
        """log(1 + u), by the order-5 series when |u| <= SERIES_MAX."""
        if abs(u) > SERIES_MAX:
            return math.log1p(u)
        return log1p_series(u)

    @jit
    def sigmoid_delta(a, z, s, e, expm1_neg_e):
        """sigmoid(a + e) - sigmoid(a), given z = sigmoid(a), s = 1 - z, expm1(-e)."""
        if abs(e) <= 1.0:
            return -z * s * expm1_neg_e / (1.0 + s * expm1_neg_e)
        # past |e| = 1 expm1(-e) may overflow; the plain difference errs by ~1 ulp of 1,
        # no more than the loss's own rounding
        return 1.0 / (1.0 + math.exp(-(a + e))) - z

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
        return -math.log(math.exp(a2[b, t] + dz * w2[j, t] - m) / s + DELTA)

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
        return -math.log(math.exp(a2[b, t] + (delta if t == k else 0.0) - m) / s + DELTA)

    # With T the target's exp and S the denominator, L(+) - L(-) = log1p(u) with
    #   u = (T- S+ - T+ S-) / ((T+ + DELTA S+) S-)      (DERIVATION.md, section 2)

    @hot_jit
    def hidden_u(dz_plus, dz_minus, b, j, units, samples):
        """The log1p argument u of hidden unit j, sample b, for dz = dz_plus, dz_minus."""
        m1 = units[M1, b, j]
        m2 = units[M2, b, j]
        m3 = units[M3, b, j]
        m4 = units[M4, b, j]
        # S+- = S + d+-, d = sum_k E_k expm1(dz W2[j, k]) by the moments
        d_plus = dz_plus * (m1 + dz_plus * (m2 + dz_plus * (m3 + dz_plus * m4)))
        d_minus = dz_minus * (m1 + dz_minus * (m2 + dz_minus * (m3 + dz_minus * m4)))
        # T+- = T (1 + q+-), q = expm1(dz W2[j, t]) by the same series
        y_plus = dz_plus * units[WT, b, j]
        y_minus = dz_minus * units[WT, b, j]
        q_plus = y_plus * (1.0 + y_plus * (0.5 + y_plus * (1.0 / 6.0 + y_plus * (1.0 / 24.0))))
        q_minus = y_minus * (
            1.0 + y_minus * (0.5 + y_minus * (1.0 / 6.0 + y_minus * (1.0 / 24.0)))
        )
        total = samples[SUM, b]
        target = samples[TGT, b]
        # T- S+ - T+ S- = T ((d+ - d-) + S (q- - q+) + (q- d+ - q+ d-))
        numerator = target * (
            (d_plus - d_minus) + total * (q_minus - q_plus) + (q_minus * d_plus - q_plus * d_minus)
        )
        return numerator / (
            (target * (1.0 + q_plus) + DELTA * (total + d_plus)) * (total + d_minus)
        )

    @jit
    def hidden_pair(e, expm1_neg_e, expm1_e, b, j, t, units, samples, w2_absmax, a2, w2):
        """L_b(a1[b, j] + e) - L_b(a1[b, j] - e), given expm1(-e) and expm1(e)."""
        a = units[A1, b, j]
        z = units[Z1, b, j]
        s = units[S1, b, j]
        dz_plus = sigmoid_delta(a, z, s, e, expm1_neg_e)
        dz_minus = sigmoid_delta(a, z, s, -e, expm1_e)
        wmax = w2_absmax[j]
        if abs(dz_plus) * wmax > SERIES_MAX or abs(dz_minus) * wmax > SERIES_MAX:
            return shifted_loss(a2, w2, b, j, t, dz_plus) - shifted_loss(a2, w2, b, j, t, dz_minus)
        return log1p_small(hidden_u(dz_plus, dz_minus, b, j, units, samples))

    @hot_jit
    def hidden_pair_series(expm1_neg_e, expm1_e, b, j, units, samples):
        """hidden_pair when the row test (ROW_MAX) holds: the same numbers, branch-free."""
        z = units[Z1, b, j]
        s = units[S1, b, j]
        dz_plus = -z * s * expm1_neg_e / (1.0 + s * expm1_neg_e)
        dz_minus = -z * s * expm1_e / (1.0 + s * expm1_e)
        return log1p_series(hidden_u(dz_plus, dz_minus, b, j, units, samples))

    @hot_jit
    def output_pair(delta, b, k, t, samples, exps, a2):
        """L_b(a2[b, k] + delta) - L_b(a2[b, k] - delta)."""
        if abs(delta) > 1.0:
            return bumped_loss(a2, b, k, t, delta) - bumped_loss(a2, b, k, t, -delta)
        expm1_d = math.expm1(delta)
        expm1_neg_d = math.expm1(-delta)
        total = samples[SUM, b]
        target = samples[TGT, b]
        if k == t:  # T+- = T e^{+-delta}, S+- = REST + T+-
            numerator = -target * (expm1_d - expm1_neg_d) * samples[REST, b]
            target_plus = target * (1.0 + expm1_d)
        else:  # T+- = T, S+- = S + E_k expm1(+-delta)
            numerator = target * exps[b, k] * (expm1_d - expm1_neg_d)
            target_plus = target
        denominator = (target_plus + DELTA * (total + exps[b, k] * expm1_d)) * (
            total + exps[b, k] * expm1_neg_d
        )
        return log1p_small(numerator / denominator)

    return DeviceFunctions(
        unit_activation,
        sample_outputs,
        unit_moments,
        sigmoid_delta,
        log1p_small,
        hidden_pair,
        hidden_pair_series,
        output_pair,
    )


# The inner loops' functions are inlined at Numba IR level: as calls they are several
# times slower. The rest stay calls, which keeps compile time down.
_cpu = build_device_functions(njit(cache=True), njit(cache=True, inline="always"))
_unit_activation = _cpu.unit_activation
_sample_outputs = _cpu.sample_outputs
_unit_moments = _cpu.unit_moments
_hidden_pair = _cpu.hidden_pair
_hidden_pair_series = _cpu.hidden_pair_series
_output_pair = _cpu.output_pair


@njit(parallel=True, cache=True)
def _forward_tables(x, w1, b1, w2, b2, labels, units, samples, exps, a2, w2_absmax):
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
            _unit_activation(b, j, a[j], units)
        _sample_outputs(b, labels[b], units, w2, b2, a2, exps, samples)
        for j in range(n_hidden):
            wmax = _unit_moments(b, j, labels[b], exps, w2, units)
            if b == 0:
                w2_absmax[j] = wmax


@njit(parallel=True, cache=True)
def _hidden_grad(x, labels, units, samples, w2_absmax, a2, w2, h, out):
    """out[i, j] = central difference for W1[i, j]; the extra last row i = D is b1 (x = 1)."""
    batch, d_in = x.shape
    n_hidden = out.shape[1]
    row_scale = 0.25 * w2_absmax.max()  # |dz| <= |e| / 4: sigmoid' <= 1/4
    for i in prange(d_in + 1):
        for j in range(n_hidden):
            out[i, j] = 0.0
        for b in range(batch):
            xv = x[b, i] if i < d_in else 1.0
            if xv == 0.0:
                continue  # W1[i, :] does not reach sample b
            e = h * xv
            expm1_neg_e = math.expm1(-e)  # shared by all hidden units of this (i, b)
            expm1_e = math.expm1(e)
            if abs(e) <= 1.0 and abs(e) * row_scale <= ROW_MAX:
                for j in range(n_hidden):  # the common case: branch-free, vectorizable
                    out[i, j] += _hidden_pair_series(expm1_neg_e, expm1_e, b, j, units, samples)
            else:
                t = labels[b]
                for j in range(n_hidden):
                    out[i, j] += _hidden_pair(
                        e, expm1_neg_e, expm1_e, b, j, t, units, samples, w2_absmax, a2, w2
                    )
        for j in range(n_hidden):
            out[i, j] = out[i, j] / batch / (2.0 * h)


@njit(parallel=True, cache=True)
def _output_grad(units, labels, samples, exps, a2, h, out):
    """out[j, k] = central difference for W2[j, k]; the extra last row j = H is b2 (z = 1)."""
    batch, n_hidden = units.shape[1], units.shape[2]
    for j in prange(n_hidden + 1):
        for k in range(out.shape[1]):
            acc = 0.0
            for b in range(batch):
                zv = units[Z1, b, j] if j < n_hidden else 1.0
                if zv != 0.0:
                    acc += _output_pair(h * zv, b, k, labels[b], samples, exps, a2)
            out[j, k] = acc / batch / (2.0 * h)


def two_layer_numerical_gradient(
    W1: np.ndarray,
    b1: np.ndarray,
    W2: np.ndarray,
    b2: np.ndarray,
    x: np.ndarray,
    labels: np.ndarray,
    *,
    h: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The book's numerical gradient of TwoLayerNet's loss, all four parameters at once.

    Trusted arguments (not checked): W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), x (B, D),
    all float32 or float64, D, H, C, B >= 1 (cast to float64: a float32 central
    difference with h = 1e-4 is noise); labels (B,) integers in [0, C); h a finite step
    > 0. NaN or inf in the parameters or x give NaN or inf gradients, not an error.
    Returns (gW1, gb1, gW2, gb2), float64, shaped like the parameters: the central
    differences (f(p + h) - f(p - h)) / 2h of the book's loss.
    """
    W1, b1, W2, b2, x = (np.ascontiguousarray(a, dtype=np.float64) for a in (W1, b1, W2, b2, x))
    batch, (d_in, n_hidden), n_out = x.shape[0], W1.shape, W2.shape[1]
    units = np.empty((8, batch, n_hidden))
    samples = np.empty((3, batch))
    exps = np.empty((batch, n_out))
    a2 = np.empty((batch, n_out))
    w2_absmax = np.empty(n_hidden)
    _forward_tables(x, W1, b1, W2, b2, labels, units, samples, exps, a2, w2_absmax)
    g1 = np.empty((d_in + 1, n_hidden))
    _hidden_grad(x, labels, units, samples, w2_absmax, a2, W2, float(h), g1)
    g2 = np.empty((n_hidden + 1, n_out))
    _output_grad(units, labels, samples, exps, a2, float(h), g2)
    return g1[:-1], g1[-1], g2[:-1], g2[-1]
