"""The book's numerical gradient of a fully connected net of any depth, computed incrementally.

The net is the book's ``MultiLayerNet`` (chapter 6): L affine layers, an activation
(sigmoid or ReLU) after each but the last, softmax with the book's cross-entropy
(``-log(p_t + DELTA)``, batch mean) on the logits, plus ``lambda / 2 * sum(W**2)`` over
every weight matrix. The book's gradient check perturbs each parameter by +-h and runs
two full forward passes. Here one float64 forward pass is stored, and each step only
recomputes what it can reach:

* W_l[i, j] +- h (b_l[j]: input 1) moves unit j's pre-activation in layer l by
  +-e = +-h * input[b, i], and nothing at all in samples whose input is 0.
* For the output layer that is one logit. For a hidden layer, unit j's output moves by
  dz = act(a + e) - act(a) (0 for a ReLU unit that stays off: the step ends there); the
  next layer's pre-activations move by dz * W_{l+1}[j, :], and each later layer by
  (act(a + d) - act(a)) @ W, skipping units whose output did not change.
* Each entry is sum_b (L_b(+) - L_b(-)) / B / (2h): per-sample loss differences instead of
  the book's difference of two batch totals.
* The weight-decay term contributes lambda * W[i, j] exactly (its central difference is
  exact in real arithmetic); it is added analytically.

kernels/MLP_DERIVATION.md derives each step and the accuracy claim (within ~1e-12 of the
book's loop on float64 inputs; the book's own loop carries ~ulp(L) / 2h of noise).

Entry points (trusted arguments, see their docstrings):
``mlp_numerical_gradient`` (CPU, Numba parallel over units) and
``mlp_numerical_gradient_cuda`` (numba.cuda, device arrays; numba.cuda is imported and the
kernels compiled on the first call only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from .cross_entropy import DELTA

ACTIVATIONS = {"sigmoid": 0, "relu": 1}  # activation name -> the kernels' integer code


class DeviceFunctions(NamedTuple):
    """The per-sample math, compiled for one target (CPU or CUDA)."""

    activate: Any  # (kind, a) -> act(a)
    logits_loss: Any  # (pre, b, base, n_out, t, shift, k, bump) -> L_b
    shifted_loss: Any  # L_b when unit j of layer l moves by e (see below)
    sample_forward: Any  # sample b's unperturbed pre/post-activations and its loss


def build_device_functions(jit: Callable[[Any], Any]) -> DeviceFunctions:
    """Compile the per-sample math with ``jit``: ``njit`` for the CPU, device functions for CUDA.

    One source for both targets keeps their numbers equal.
    """

    @jit
    def activate(kind, a):
        if kind == 0:
            return 1.0 / (1.0 + math.exp(-a))
        return a if a > 0.0 else 0.0

    @jit
    def logits_loss(pre, b, base, n_out, t, shift, k, bump):
        """-log(softmax(v)[t] + DELTA) for v = pre[b, base:base+n_out] + shift (+ bump at k).

        ``shift`` is None-like when its length is 0: then no shift vector is added.
        """
        m = -math.inf
        for c in range(n_out):
            v = pre[b, base + c] + (shift[c] if shift.shape[0] > 0 else 0.0)
            if c == k:
                v += bump
            if v > m:  # not max(): the CUDA target cannot compile it
                m = v
        total = 0.0
        target = 0.0
        for c in range(n_out):
            v = pre[b, base + c] + (shift[c] if shift.shape[0] > 0 else 0.0)
            if c == k:
                v += bump
            p = math.exp(v - m)
            total += p
            if c == t:
                target = p
        return -math.log(target / total + DELTA)

    @jit
    def shifted_loss(layer, j, b, e, t, kind, widths, woff, wflat, uoff, pre, post, base_loss,
                     cur, nxt, empty):
        """Loss of sample b when the pre-activation of unit j in ``layer`` moves by e.

        Layers count from 0; layer m maps widths[m] inputs to widths[m + 1] units, whose
        pre-activations are pre[b, uoff[m]:...] and outputs post[b, uoff[m]:...].
        ``cur``/``nxt`` are scratch rows of length >= max(widths); ``empty`` a length-0
        row (no shift).
        """
        last = widths.shape[0] - 2
        n_out = widths[last + 1]
        if layer == last:
            return logits_loss(pre, b, uoff[last], n_out, t, empty, j, e)
        u = uoff[layer] + j
        dz = activate(kind, pre[b, u] + e) - post[b, u]
        if dz == 0.0:
            return base_loss[b]
        width = widths[layer + 2]
        w0 = woff[layer + 1] + j * width
        for q in range(width):  # the next layer's pre-activations move by dz * W[j, :]
            cur[q] = dz * wflat[w0 + q]
        for m in range(layer + 1, last):
            n_in = widths[m + 1]
            n_next = widths[m + 2]
            for q in range(n_next):
                nxt[q] = 0.0
            for k in range(n_in):
                v = uoff[m] + k
                d = activate(kind, pre[b, v] + cur[k]) - post[b, v]
                if d != 0.0:  # ReLU units that stay off change nothing further
                    row = woff[m + 1] + k * n_next
                    for q in range(n_next):
                        nxt[q] += d * wflat[row + q]
            for q in range(n_next):
                cur[q] = nxt[q]
        return logits_loss(pre, b, uoff[last], n_out, t, cur, -1, 0.0)

    @jit
    def sample_forward(b, x, labels, kind, widths, woff, wflat, bflat, uoff, pre, post,
                       base_loss, empty):
        """Sample b's unperturbed float64 forward pass into pre[b]/post[b]; its loss.

        b_l has one entry per unit of layer l, so bflat shares the units' offsets uoff.
        """
        last = widths.shape[0] - 2
        for m in range(last + 1):
            n_in = widths[m]
            n_out = widths[m + 1]
            for q in range(n_out):
                pre[b, uoff[m] + q] = bflat[uoff[m] + q]
            for k in range(n_in):
                v = x[b, k] if m == 0 else post[b, uoff[m - 1] + k]
                if v != 0.0:  # images and ReLU outputs are mostly zeros
                    row = woff[m] + k * n_out
                    for q in range(n_out):
                        pre[b, uoff[m] + q] += v * wflat[row + q]
            if m < last:
                for q in range(n_out):
                    post[b, uoff[m] + q] = activate(kind, pre[b, uoff[m] + q])
        base_loss[b] = logits_loss(pre, b, uoff[last], widths[last + 1], labels[b], empty,
                                   -1, 0.0)

    return DeviceFunctions(activate, logits_loss, shifted_loss, sample_forward)


_cpu = build_device_functions(njit(cache=True))
_shifted_loss = _cpu.shifted_loss
_sample_forward = _cpu.sample_forward


@njit(parallel=True, cache=True)
def _forward(x, labels, kind, widths, woff, wflat, bflat, uoff, pre, post, base_loss):
    """The unperturbed float64 forward pass of every sample, and each sample's loss."""
    empty = np.empty(0)
    for b in prange(x.shape[0]):
        _sample_forward(b, x, labels, kind, widths, woff, wflat, bflat, uoff, pre, post,
                        base_loss, empty)


@njit(parallel=True, cache=True)
def _layer_grad(layer, x, labels, kind, widths, woff, wflat, uoff, pre, post, base_loss, h, out):
    """out[i, j]: central difference for W_layer[i, j]; the extra last row is the bias."""
    batch = x.shape[0]
    n_in = widths[layer]
    n_units = widths[layer + 1]
    scratch = 0
    for m in range(widths.shape[0]):
        scratch = max(scratch, widths[m])
    empty = np.empty(0)
    for j in prange(n_units):
        cur = np.empty(scratch)
        nxt = np.empty(scratch)
        acc = np.zeros(n_in + 1)
        for b in range(batch):
            t = labels[b]
            for i in range(n_in + 1):
                if i == n_in:
                    v = 1.0
                elif layer == 0:
                    v = x[b, i]
                else:
                    v = post[b, uoff[layer - 1] + i]
                if v == 0.0:
                    continue  # this weight does not reach sample b
                e = h * v
                up = _shifted_loss(layer, j, b, e, t, kind, widths, woff, wflat, uoff, pre, post,
                                   base_loss, cur, nxt, empty)
                down = _shifted_loss(layer, j, b, -e, t, kind, widths, woff, wflat, uoff, pre,
                                     post, base_loss, cur, nxt, empty)
                acc[i] += up - down
        for i in range(n_in + 1):
            out[i, j] = acc[i] / batch / (2.0 * h)


class Packed(NamedTuple):
    """The net's parameters as flat float64 buffers with offsets (what both targets read)."""

    widths: np.ndarray  # (L + 1,) int64: inputs, each layer's units
    woff: np.ndarray  # (L,) int64: where W_l (row-major) starts in wflat
    wflat: np.ndarray
    bflat: np.ndarray  # b_l starts at uoff[l]: one entry per unit
    uoff: np.ndarray  # (L,) int64: where layer l's units start in a sample's unit row


def pack(weights: Sequence[Any], biases: Sequence[Any]) -> Packed:
    """Flatten host arrays W_1..W_L and b_1..b_L into float64 buffers with offsets."""
    widths = np.array([weights[0].shape[0]] + [w.shape[1] for w in weights], np.int64)
    sizes = np.array([w.size for w in weights], np.int64)
    woff = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    uoff = np.concatenate([[0], np.cumsum(widths[1:])[:-1]]).astype(np.int64)
    wflat = np.concatenate([np.asarray(w, np.float64).ravel() for w in weights])
    bflat = np.concatenate([np.asarray(v, np.float64).ravel() for v in biases])
    return Packed(widths, woff, wflat, bflat, uoff)


def _unpack(grads: Sequence[np.ndarray], weights: Sequence[Any],
            weight_decay_lambda: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split each layer's (n_in + 1, n_out) table into gW and gb; add the decay term."""
    g_w = [np.ascontiguousarray(g[:-1]) for g in grads]
    if weight_decay_lambda != 0.0:
        g_w = [g + weight_decay_lambda * np.asarray(w, np.float64)
               for g, w in zip(g_w, weights, strict=True)]
    return g_w, [np.ascontiguousarray(g[-1]) for g in grads]


def mlp_numerical_gradient(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    x: np.ndarray,
    labels: np.ndarray,
    *,
    activation: str = "relu",
    weight_decay_lambda: float = 0.0,
    h: float = 1e-4,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The book's MultiLayerNet.numerical_gradient, every parameter at once (CPU, Numba).

    Trusted arguments (not checked): ``weights`` W_1..W_L, W_l of shape
    (n_{l-1}, n_l) with n_0 = D (L >= 1: L = 1 is softmax regression); ``biases``
    b_1..b_L, b_l (n_l,); x (B, D); all float32 or float64 (computed in float64);
    labels (B,) integers in [0, n_L); ``activation`` "sigmoid" or "relu" (after every
    layer but the last); ``weight_decay_lambda`` >= 0 (the loss gains
    lambda / 2 * sum over l of sum(W_l ** 2), as in the book); h a finite step > 0.

    Returns ``(grad_weights, grad_biases)``: lists of float64 arrays shaped like
    ``weights`` and ``biases``, the central differences (L(p + h) - L(p - h)) / 2h of the
    book's loss (batch-mean cross-entropy with DELTA inside the log, plus weight decay).
    """
    packed = pack(weights, biases)
    kind = ACTIVATIONS[activation]
    x = np.ascontiguousarray(x, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    batch, units = x.shape[0], int(packed.widths[1:].sum())
    pre = np.empty((batch, units))
    post = np.zeros((batch, units))
    base_loss = np.empty(batch)
    _forward(x, labels, kind, packed.widths, packed.woff, packed.wflat, packed.bflat,
             packed.uoff, pre, post, base_loss)
    grads = []
    for layer in range(len(weights)):
        out = np.empty((packed.widths[layer] + 1, packed.widths[layer + 1]))
        _layer_grad(layer, x, labels, kind, packed.widths, packed.woff, packed.wflat,
                    packed.uoff, pre, post, base_loss, float(h), out)
        grads.append(out)
    return _unpack(grads, weights, float(weight_decay_lambda))


# ------------------------------------------------------------------------- CUDA

THREADS = 128  # threads per block
# numba.cuda, bound on the first CUDA call (importing this module never touches CUDA). A
# module global, not a local: the CUDA simulator swaps the kernels' global ``cuda``.
cuda: Any = None
SCRATCH_BYTES = 64 << 20  # the per-thread scratch rows of one launch stay under this


@cache
def _cuda_kernels() -> tuple[Any, Any, Any]:
    """Compile (once) the CUDA kernels from the same per-sample source as the CPU's."""
    global cuda
    from numba import cuda

    dev = build_device_functions(cuda.jit(device=True))
    shifted_loss, sample_forward = dev.shifted_loss, dev.sample_forward

    @cuda.jit
    def cast_into(src, dst, offset):
        """dst[offset + i] = float64(src[i]): packs float32 or float64 arrays."""
        i = cuda.grid(1)
        if i < src.shape[0]:
            dst[offset + i] = np.float64(src[i])

    @cuda.jit
    def forward(x, labels, kind, widths, woff, wflat, bflat, uoff, pre, post, base_loss,
                empty):
        """One thread per sample: the CPU's _forward."""
        b = cuda.grid(1)
        if b < x.shape[0]:
            sample_forward(b, x, labels, kind, widths, woff, wflat, bflat, uoff, pre, post,
                           base_loss, empty)

    @cuda.jit
    def layer_grad(layer, start, count, x, labels, kind, widths, woff, wflat, uoff, pre, post,
                   base_loss, h, lam, scratch, empty, gw, gb):
        """One thread per parameter start + p of ``layer`` (bias as the last input row)."""
        p = cuda.grid(1)
        if p >= count:
            return
        n_in = widths[layer]
        n_units = widths[layer + 1]
        i = (start + p) // n_units
        j = (start + p) % n_units
        cur = scratch[p, 0]
        nxt = scratch[p, 1]
        acc = 0.0
        for b in range(x.shape[0]):  # ascending, as the CPU sums
            if i == n_in:
                v = 1.0
            elif layer == 0:
                v = x[b, i]
            else:
                v = post[b, uoff[layer - 1] + i]
            if v != 0.0:
                e = h * v
                t = labels[b]
                up = shifted_loss(layer, j, b, e, t, kind, widths, woff, wflat, uoff, pre, post,
                                  base_loss, cur, nxt, empty)
                down = shifted_loss(layer, j, b, -e, t, kind, widths, woff, wflat, uoff, pre,
                                    post, base_loss, cur, nxt, empty)
                acc += up - down
        g = acc / x.shape[0] / (2.0 * h)
        if i < n_in:
            gw[i, j] = g + lam * wflat[woff[layer] + i * n_units + j]
        else:
            gb[j] = g

    return cast_into, forward, layer_grad


def mlp_numerical_gradient_cuda(
    weights: Sequence[Any],
    biases: Sequence[Any],
    x: Any,
    labels: Any,
    *,
    activation: str = "relu",
    weight_decay_lambda: float = 0.0,
    h: float = 1e-4,
    stream: Any = 0,
) -> tuple[list[Any], list[Any]]:
    """``mlp_numerical_gradient`` on CUDA device arrays, the same numbers; no sync.

    Trusted arguments as for the CPU function, but C-contiguous device arrays (anything
    with ``__cuda_array_interface__``: CuPy, Numba); float32 ones are widened to float64
    on the device, nothing goes through the host. Kernels launch on ``stream``. Returns
    ``(grad_weights, grad_biases)`` as lists of new float64 Numba device arrays
    (``cupy.asarray`` wraps them without a copy).
    """
    cast_into, forward, layer_grad = _cuda_kernels()

    def device(a: Any) -> Any:  # a Numba view of a device array, never a copy
        return a if cuda.devicearray.is_cuda_ndarray(a) else cuda.as_cuda_array(a, sync=False)

    def blocks(n: int) -> int:
        return max(1, (n + THREADS - 1) // THREADS)

    weights = [device(w) for w in weights]
    biases = [device(b) for b in biases]
    x, labels = device(x), device(labels)
    # shapes are host metadata: the packing offsets are computed here, the data stays there
    meta = pack([np.empty(w.shape, np.float64) for w in weights],
                [np.empty(b.shape, np.float64) for b in biases])
    wflat = cuda.device_array(int(sum(w.size for w in weights)), np.float64, stream=stream)
    bflat = cuda.device_array(int(meta.widths[1:].sum()), np.float64, stream=stream)
    for parts, offsets, flat in ((weights, meta.woff, wflat), (biases, meta.uoff, bflat)):
        for a, off in zip(parts, offsets, strict=True):
            src = a.reshape(a.size)
            cast_into[blocks(a.size), THREADS, stream](src, flat, int(off))
    batch, d_in = x.shape
    xf = cuda.device_array(batch * d_in, np.float64, stream=stream)
    cast_into[blocks(batch * d_in), THREADS, stream](x.reshape(batch * d_in), xf, 0)
    xf = xf.reshape(batch, d_in)

    kind = ACTIVATIONS[activation]
    widths, woff, uoff = (cuda.to_device(a, stream=stream)
                          for a in (meta.widths, meta.woff, meta.uoff))
    units = int(meta.widths[1:].sum())
    pre = cuda.device_array((batch, units), np.float64, stream=stream)
    post = cuda.device_array((batch, units), np.float64, stream=stream)
    base_loss = cuda.device_array(batch, np.float64, stream=stream)
    empty = cuda.device_array(0, np.float64, stream=stream)
    forward[blocks(batch), THREADS, stream](xf, labels, kind, widths, woff, wflat, bflat, uoff,
                                            pre, post, base_loss, empty)

    row = max(1, int(meta.widths[2:].max())) if len(meta.widths) > 2 else 1
    largest = max((int(meta.widths[k]) + 1) * int(meta.widths[k + 1]) for k in range(len(weights)))
    per_launch = min(largest, max(THREADS, SCRATCH_BYTES // (16 * row)))
    scratch = cuda.device_array((per_launch, 2, row), np.float64, stream=stream)
    grad_w, grad_b = [], []
    for layer in range(len(weights)):
        n_in, n_units = int(meta.widths[layer]), int(meta.widths[layer + 1])
        gw = cuda.device_array((n_in, n_units), np.float64, stream=stream)
        gb = cuda.device_array(n_units, np.float64, stream=stream)
        total = (n_in + 1) * n_units
        for start in range(0, total, per_launch):
            count = min(per_launch, total - start)
            layer_grad[blocks(count), THREADS, stream](
                layer, start, count, xf, labels, kind, widths, woff, wflat, uoff, pre, post,
                base_loss, float(h), float(weight_decay_lambda), scratch, empty, gw, gb)
        grad_w.append(gw)
        grad_b.append(gb)
    return grad_w, grad_b
