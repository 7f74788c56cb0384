"""The book's ``MultiLayerNet`` (chapter 6): fully connected layers, ReLU or sigmoid,
optional weight decay, on NumPy or CuPy.

The star import hands on what the book's module does: the net, the layers and
functions, ``numerical_gradient``, ``OrderedDict``, ``np``, ``os`` and ``sys``.
"""

from __future__ import annotations

import os  # noqa: F401  (handed on by the star import, as the book's module does)
import sys  # noqa: F401
from collections import OrderedDict
from typing import Any

import numpy as np

from xpnet.backend import Device, get_array_module

from . import _gradient_check, _net
from .gradient import numerical_gradient
from .layers import *  # noqa: F403
from .layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from .layers import __all__ as _layer_names

__all__ = [*_layer_names, "numerical_gradient", "OrderedDict", "os", "sys", "MultiLayerNet"]

ACTIVATIONS = {"sigmoid": Sigmoid, "relu": Relu}


def init_weights(sizes: list[int], weight_init_std: float | str,
                 rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Host weights ``W1, b1, ...`` for layer widths ``sizes``, drawn in the book's order
    (from ``rng``, or NumPy's global generator if None)."""
    params = {}
    for idx in range(1, len(sizes)):
        scale = _net.init_scale(weight_init_std, sizes[idx - 1])
        params[f"W{idx}"] = scale * _net.randn(sizes[idx - 1], sizes[idx], rng=rng)
        params[f"b{idx}"] = np.zeros(sizes[idx])
    return params


def weight_decay(params: dict[str, Any], count: int, decay_lambda: float) -> Any:
    """``sum over W1..W{count} of 0.5 * lambda * sum(W**2)``, added up in the book's order."""
    total = 0
    for idx in range(1, count + 1):
        W = params[f"W{idx}"]
        total += 0.5 * decay_lambda * get_array_module(W).sum(W**2)
    return total


class MultiLayerNet(_net.OnDevice):
    """Affine layers with ``activation`` between them, then softmax with the book's loss.

    ``hidden_size_list``: widths of the hidden layers, e.g. ``[100, 100, 100]``.
    ``weight_init_std``: a number, or ``'relu'``/``'he'`` (He) or ``'sigmoid'``/``'xavier'``
    (Xavier). ``weight_decay_lambda``: the L2 penalty's strength. Weights are drawn from
    NumPy's global generator (or ``rng``) on the host, cast to ``dtype`` and moved to
    ``device`` (default: the configured one, ``XPNET_DEVICE``).
    """

    def __init__(self, input_size: int, hidden_size_list: list[int], output_size: int,
                 activation: str = "relu", weight_init_std: float | str = "relu",
                 weight_decay_lambda: float = 0, *, device: str | Device | None = None,
                 dtype: Any = np.float64, rng: np.random.Generator | None = None) -> None:
        self._place(device)
        self.input_size = input_size
        self.output_size = output_size
        self.hidden_size_list = hidden_size_list
        self.hidden_layer_num = len(hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        self.activation = activation
        sizes = [input_size, *hidden_size_list, output_size]
        self.params = self._to_device(init_weights(sizes, weight_init_std, rng), dtype)

        self.layers = OrderedDict()
        last = self.hidden_layer_num + 1
        for idx in range(1, last + 1):
            self.layers[f"Affine{idx}"] = Affine(self.params[f"W{idx}"], self.params[f"b{idx}"])
            if idx < last:
                self.layers[f"Activation_function{idx}"] = ACTIVATIONS[activation]()
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x: Any) -> Any:
        """Scores (N, output_size) before the softmax."""
        x = self._here(x)
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: Any, t: Any) -> Any:
        """The book's cross-entropy plus the weight-decay penalty."""
        y = self.predict(x)
        decay = weight_decay(self.params, self.hidden_layer_num + 1, self.weight_decay_lambda)
        return self.last_layer.forward(y, self._here(t)) + decay

    def accuracy(self, x: Any, t: Any) -> Any:
        """Fraction of samples whose top score is their label (labels or one-hot ``t``)."""
        labels = _net.labels_of(self._here(t))
        return _net.fraction(_net.hits(self.predict(x), labels), x.shape[0])

    def numerical_gradient(self, x: Any, t: Any, *, method: str = "fused") -> dict[str, Any]:
        """Central-difference gradients (h = 1e-4) of ``loss`` for every parameter.

        Computed by the fused kernel: the book's loop's numbers within 1e-9, many times
        faster (bench/test_bench_common.py). ``method="generic"`` runs the book's loop itself.
        Labels or one-hot ``t`` (a one-hot row must be one 1, the rest 0).
        """
        x, t = self._here(x), self._here(t)
        layers = self.hidden_layer_num + 1
        if _gradient_check.fuses(method):
            return _gradient_check.fully_connected(
                self.params, layers, x, t, activation=self.activation,
                weight_decay_lambda=self.weight_decay_lambda)
        keys = [key for idx in range(1, layers + 1) for key in (f"W{idx}", f"b{idx}")]
        return _gradient_check.loop(lambda: self.loss(x, t), self.params, keys)

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients ``W1, b1, ...``, the weight decay's ``lambda * W`` included."""
        self.loss(x, t)
        _net.backward(self.layers.values(), self.last_layer)
        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers[f"Affine{idx}"]
            grads[f"W{idx}"] = affine.dW + self.weight_decay_lambda * affine.W
            grads[f"b{idx}"] = affine.db
        return grads
