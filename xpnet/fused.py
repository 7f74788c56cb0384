"""The fused Numba kernels, picked by the array's device.

``kernels`` knows nothing of xpnet or CuPy: it takes NumPy arrays (CPU) or anything with
``__cuda_array_interface__`` (CUDA). This module hands the arrays to the right kernel, so
NumPy in gives NumPy out and CuPy in gives CuPy out; what it needs of CuPy (the array
module, the current stream) it asks ``xpnet.backend``.

An inner layer: arguments arrive in the trusted form made by ``xpnet.inputs`` (logits
(B, C) and x (B, D) float32/float64, parameters of x's dtype, labels (B,) intp in [0, C),
all on one device) and are not checked again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from . import kernels
from .backend import cuda_stream_pointer, get_array_module, is_cupy_array
from .kernels import mlp_numerical_gradient as mlp

_blas_quieted = False


def quiet_blas() -> None:
    """From the first CPU numerical gradient on, BLAS runs on one thread in this process.

    Idle OpenBLAS workers spin for a while after every matrix product and take the cores
    the parallel Numba gradient needs, which then runs several times slower. Limiting
    BLAS only while the kernel runs does not help: the spinning comes from the products
    made between calls, such as the loss the book's loop computes after each step. The
    products of the book's small network lose little on one thread. To give BLAS its
    threads back afterwards: ``threadpoolctl.threadpool_limits(os.cpu_count(), "blas")``.
    """
    global _blas_quieted
    if not _blas_quieted:  # scanning the loaded libraries costs ~0.2 ms: once
        ThreadpoolController().limit(limits=1, user_api="blas")
        _blas_quieted = True


_streams: dict[int, Any] = {}  # stream pointer -> Numba's view of it, made once


def _stream(a: Any) -> Any:
    """The current stream of ``a``'s GPU for Numba launches: kernels queue behind its work.

    Numba's ``external_stream`` objects are cached per pointer: one is made per stream,
    not per call (a captured step launches on the same stream every time).
    """
    ptr = cuda_stream_pointer(a)
    if ptr == 0:
        return 0  # the legacy default stream, which both libraries use by default
    stream = _streams.get(ptr)
    if stream is None:
        from numba import cuda

        stream = _streams[ptr] = cuda.external_stream(ptr)
    return stream


def cross_entropy(logits: Any, labels: Any) -> Any:
    """The book's loss ``-mean(log(softmax(logits)[b, t_b] + 1e-7))`` from logits (B, C).

    Returns a NumPy float64 scalar, or a 0-d CuPy array (no wait for the GPU).
    """
    return _cross_entropy(logits, labels, want_grad=False)[0]


def cross_entropy_with_grad(logits: Any, labels: Any) -> tuple[Any, Any]:
    """``(loss, (softmax(logits) - onehot(labels)) / B)``; the gradient in logits' dtype."""
    return _cross_entropy(logits, labels, want_grad=True)


def _cross_entropy(logits: Any, labels: Any, want_grad: bool) -> tuple[Any, Any]:
    xp = get_array_module(logits)
    rows = xp.empty(logits.shape[0], dtype=np.float64)  # summed here: deterministic
    dlogits = xp.empty_like(logits) if want_grad else None
    cross_entropy_rows(logits, labels, rows, dlogits)
    return rows.sum() / logits.shape[0], dlogits


def cross_entropy_rows(logits: Any, labels: Any, rows: Any, dlogits: Any | None = None) -> None:
    """Write each row's loss into ``rows`` (B,) float64 and, if given, the gradient into
    ``dlogits`` (B, C); allocates nothing (a captured step's form).

    On CUDA the kernel launches on the current stream of the arrays' device.
    """
    if is_cupy_array(logits):
        from .kernels import cuda as kcuda

        kcuda.softmax_cross_entropy(logits, labels, rows, dlogits, stream=_stream(logits))
    else:
        kernels.softmax_cross_entropy(logits, labels, rows, dlogits)


def two_layer_numerical_gradient(
    W1: Any, b1: Any, W2: Any, b2: Any, x: Any, labels: Any, *,
    out: tuple[Any, Any, Any, Any] | None = None, workspace: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """The book's central differences (h = 1e-4) of the TwoLayerNet loss, in float64.

    On CUDA the outputs come from CuPy's memory pool (or are ``out``, float64 arrays shaped
    like the parameters), and the scratch from ``workspace`` (``numerical_workspace``) if
    given, so that nothing is allocated at all: the form a captured step needs.
    """
    if is_cupy_array(x):
        from .kernels import cuda as kcuda

        xp = get_array_module(x)
        if out is None:
            out = tuple(xp.empty(p.shape, dtype=np.float64) for p in (W1, b1, W2, b2))
        if workspace is None:
            workspace = numerical_workspace(x, W2.shape[0], W2.shape[1])
        if x.dtype != np.float64:  # widened by one CuPy kernel each, into the workspace
            for a, wide in zip((W1, b1, W2, b2, x), workspace.inputs, strict=True):
                xp.copyto(wide, a)
            W1, b1, W2, b2, x = workspace.inputs
        kcuda.two_layer_numerical_gradient(W1, b1, W2, b2, x, labels, stream=_stream(x),
                                           out=out, workspace=workspace)
        return out
    quiet_blas()
    return kernels.two_layer_numerical_gradient(W1, b1, W2, b2, x, labels)


def numerical_workspace(x: Any, hidden: int, classes: int) -> Any:
    """The CUDA numerical gradient's scratch for batches shaped like ``x``, from CuPy's pool."""
    from .kernels import cuda as kcuda

    xp = get_array_module(x)
    return kcuda.NumericalWorkspace(x.shape[0], x.shape[1], hidden, classes, x.dtype,
                                    lambda shape: xp.empty(shape, dtype=np.float64))


def mlp_numerical_gradient(
    weights: Sequence[Any], biases: Sequence[Any], x: Any, labels: Any, *,
    activation: str, weight_decay_lambda: float,
) -> tuple[list[Any], list[Any]]:
    """The book's MultiLayerNet central differences (h = 1e-4), every parameter at once.

    NumPy in: the CPU kernel (NumPy float64 out). CuPy in: the CUDA kernel on the current
    stream, its float64 outputs wrapped as CuPy arrays without a copy. Arguments trusted
    as ``xpnet.kernels.mlp_numerical_gradient`` states.
    """
    if is_cupy_array(x):
        xp = get_array_module(x)
        gw, gb = kernels.mlp_numerical_gradient_cuda(
            weights, biases, x, labels, activation=activation,
            weight_decay_lambda=weight_decay_lambda, stream=_stream(x))
        return [xp.asarray(g) for g in gw], [xp.asarray(g) for g in gb]
    quiet_blas()
    return mlp.mlp_numerical_gradient(weights, biases, x, labels, activation=activation,
                                      weight_decay_lambda=weight_decay_lambda)
