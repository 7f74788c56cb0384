"""The fused gradient check of the book's fully connected nets. Internal to ``xpnet.common``.

The book's ``numerical_gradient(x, t)`` runs two full forward passes per parameter. For a
net of affine layers with one activation (sigmoid or ReLU) between them, softmax with the
book's loss and optional weight decay, the fused kernel gives the same central differences
(h = 1e-4) from one stored forward pass: within 1e-9 of the loop (kernels/MLP_DERIVATION.md).
Nets the kernel cannot model (batch normalization, dropout) keep the book's loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import xpnet.fused as fused
from xpnet.backend import get_array_module
from xpnet.inputs import choice
from xpnet.inputs import labels as class_indices

from .gradient import numerical_gradient


def loop(loss: Callable[[], Any], params: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The book's loop: central differences of ``loss()`` for each of ``params[keys]``."""
    return {key: numerical_gradient(lambda _: loss(), params[key]) for key in keys}


METHODS = ("fused", "generic")  # as xpnet.TwoLayerNet names them: generic is the book's loop


def fuses(method: str, *, modelled: bool = True) -> bool:
    """Whether the kernel computes the gradient check: ``method`` (checked) is ``"fused"``
    and the kernel models the net (``modelled``)."""
    return choice("method", method, METHODS) == "fused" and modelled


def fully_connected(params: dict[str, Any], layers: int, x: Any, t: Any, *, activation: str,
                    weight_decay_lambda: float) -> dict[str, Any]:
    """``W1, b1, ..., W{layers}, b{layers}``: the book's gradient check, fused.

    ``params`` and ``x`` on one device (x (N, ...) is flattened to (N, D) as the first
    affine layer does); ``t`` labels (N,) or one-hot (N, C) on that device, turned into
    indices by the one label rule (``xpnet.inputs.labels``: anything else is refused in
    one line). Through ``xpnet.fused``: the CPU kernel for NumPy, the CUDA kernel on
    the current stream for CuPy. Gradients come back on the device, in each parameter's
    dtype.
    """
    weights = [params[f"W{idx}"] for idx in range(1, layers + 1)]
    biases = [params[f"b{idx}"] for idx in range(1, layers + 1)]
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x.reshape(x.shape[0], -1))  # the CUDA kernel reads rows whole
    labels = xp.ascontiguousarray(class_indices(t, x.shape[0], weights[-1].shape[1]))
    grad_w, grad_b = fused.mlp_numerical_gradient(
        weights, biases, x, labels, activation=activation,
        weight_decay_lambda=float(weight_decay_lambda))
    grads = {}
    for idx, (gw, gb) in enumerate(zip(grad_w, grad_b, strict=True), start=1):
        grads[f"W{idx}"] = gw.astype(weights[idx - 1].dtype, copy=False)
        grads[f"b{idx}"] = gb.astype(biases[idx - 1].dtype, copy=False)
    return grads
