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

from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from . import kernels
from .backend import cuda_stream_pointer, get_array_module, is_cupy_array

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


def _stream(a: Any) -> Any:
    """The current stream of ``a``'s GPU for Numba launches: kernels queue behind its work."""
    ptr = cuda_stream_pointer(a)
    if ptr == 0:
        return 0  # the legacy default stream, which both libraries use by default
    from numba import cuda

    return cuda.external_stream(ptr)


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
    if xp is np:
        kernels.softmax_cross_entropy(logits, labels, rows, dlogits)
    else:
        from .kernels import cuda as kcuda

        kcuda.softmax_cross_entropy(logits, labels, rows, dlogits, stream=_stream(logits))
    return rows.sum() / logits.shape[0], dlogits


def two_layer_numerical_gradient(
    W1: Any, b1: Any, W2: Any, b2: Any, x: Any, labels: Any
) -> tuple[Any, Any, Any, Any]:
    """The book's central differences (h = 1e-4) of the TwoLayerNet loss, in float64."""
    if is_cupy_array(x):
        from .kernels import cuda as kcuda

        xp = get_array_module(x)
        grads = kcuda.two_layer_numerical_gradient(W1, b1, W2, b2, x, labels, stream=_stream(x))
        return tuple(xp.asarray(g) for g in grads)
    quiet_blas()
    return kernels.two_layer_numerical_gradient(W1, b1, W2, b2, x, labels)
