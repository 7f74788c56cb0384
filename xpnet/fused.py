"""The fused Numba kernels, picked by the array's device.

``kernels`` knows nothing of xpnet or CuPy: it takes NumPy arrays (CPU) or anything with
``__cuda_array_interface__`` (CUDA). This module checks the arguments share a device and
hands them to the right kernel, so NumPy in gives NumPy out and CuPy in gives CuPy out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import kernels
from .backend import device_of, get_array_module, is_cupy_array


def _same_device(**arrays: Any) -> None:
    devices = {name: device_of(a) for name, a in arrays.items()}
    if len(set(devices.values())) > 1:
        where = ", ".join(f"{name} on {d}" for name, d in devices.items())
        raise ValueError(
            f"arrays are on different devices ({where}): move them to one device "
            "with xpnet.backend.to_device"
        )


def _stream(cupy: Any) -> Any:
    """CuPy's current stream for Numba launches, so kernels queue behind CuPy's work."""
    ptr = cupy.cuda.get_current_stream().ptr
    if ptr == 0:
        return 0  # the legacy default stream, which both libraries use by default
    from numba import cuda

    return cuda.external_stream(ptr)


def cross_entropy(logits: Any, labels: Any) -> Any:
    """The book's loss ``-mean(log(softmax(logits)[b, t_b] + 1e-7))`` from logits (B, C).

    Returns a NumPy float64 scalar, or a 0-d CuPy array (no wait for the GPU).
    """
    _same_device(logits=logits, labels=labels)
    if is_cupy_array(logits):
        return _cuda_cross_entropy(logits, labels, want_grad=False)[0]
    return np.float64(kernels.softmax_cross_entropy(logits, labels))


def cross_entropy_with_grad(logits: Any, labels: Any) -> tuple[Any, Any]:
    """``(loss, (softmax(logits) - onehot(labels)) / B)``; the gradient in logits' dtype."""
    _same_device(logits=logits, labels=labels)
    if is_cupy_array(logits):
        return _cuda_cross_entropy(logits, labels, want_grad=True)
    loss, dlogits = kernels.softmax_cross_entropy_with_grad(logits, labels)
    return np.float64(loss), dlogits


def _cuda_cross_entropy(logits: Any, labels: Any, want_grad: bool) -> tuple[Any, Any]:
    from .kernels import cuda as kcuda

    cupy = get_array_module(logits)
    rows = cupy.empty(logits.shape[0], dtype=np.float64)  # summed here: deterministic
    dlogits = cupy.empty_like(logits) if want_grad else None
    kcuda.softmax_cross_entropy(logits, labels, rows, dlogits, stream=_stream(cupy))
    return rows.sum() / logits.shape[0], dlogits


def two_layer_numerical_gradient(
    W1: Any, b1: Any, W2: Any, b2: Any, x: Any, labels: Any
) -> tuple[Any, Any, Any, Any]:
    """The book's central differences (h = 1e-4) of the TwoLayerNet loss, in float64."""
    _same_device(W1=W1, b1=b1, W2=W2, b2=b2, x=x, labels=labels)
    if is_cupy_array(x):
        from .kernels import cuda as kcuda

        cupy = get_array_module(x)
        grads = kcuda.two_layer_numerical_gradient(W1, b1, W2, b2, x, labels,
                                                   stream=_stream(cupy))
        return tuple(cupy.asarray(g) for g in grads)
    return kernels.two_layer_numerical_gradient(W1, b1, W2, b2, x, labels)
