"""The book's ``MultiLayerNetExtend`` (chapter 6): ``MultiLayerNet`` with weight decay,
dropout and batch normalization, on NumPy or CuPy.

The star import hands on what the book's module does (see ``multi_layer_net``).
"""

from __future__ import annotations

import os  # noqa: F401  (handed on by the star import, as the book's module does)
import sys  # noqa: F401
from collections import OrderedDict
from typing import Any

import numpy as np

from xpnet.backend import Device

from . import _gradient_check, _net
from .gradient import numerical_gradient
from .layers import *  # noqa: F403
from .layers import Affine, BatchNormalization, Dropout, SoftmaxWithLoss
from .layers import __all__ as _layer_names
from .multi_layer_net import ACTIVATIONS, init_weights, weight_decay

__all__ = [*_layer_names, "numerical_gradient", "OrderedDict", "os", "sys",
           "MultiLayerNetExtend"]


class MultiLayerNetExtend(_net.OnDevice):
    """Affine -> [BatchNorm] -> activation -> [Dropout] per hidden layer, then affine and
    softmax with the book's loss.

    As ``MultiLayerNet``, plus ``use_dropout`` with ``dropout_ration`` (the book's
    spelling) and ``use_batchnorm`` (``gammaN``/``betaN`` join ``params``). ``predict`` and
    ``loss`` take ``train_flg`` (dropout and batch statistics in training mode).
    """

    def __init__(self, input_size: int, hidden_size_list: list[int], output_size: int,
                 activation: str = "relu", weight_init_std: float | str = "relu",
                 weight_decay_lambda: float = 0, use_dropout: bool = False,
                 dropout_ration: float = 0.5, use_batchnorm: bool = False, *,
                 device: str | Device | None = None) -> None:
        self._place(device)
        self.input_size = input_size
        self.output_size = output_size
        self.hidden_size_list = hidden_size_list
        self.hidden_layer_num = len(hidden_size_list)
        self.use_dropout = use_dropout
        self.weight_decay_lambda = weight_decay_lambda
        self.use_batchnorm = use_batchnorm
        self.activation = activation
        sizes = [input_size, *hidden_size_list, output_size]
        self.params = self._to_device(init_weights(sizes, weight_init_std))

        self.layers = OrderedDict()
        for idx, width in enumerate(hidden_size_list, start=1):
            self.layers[f"Affine{idx}"] = Affine(self.params[f"W{idx}"], self.params[f"b{idx}"])
            if use_batchnorm:
                gamma = self.params[f"gamma{idx}"] = self._here(np.ones(width))
                beta = self.params[f"beta{idx}"] = self._here(np.zeros(width))
                self.layers[f"BatchNorm{idx}"] = BatchNormalization(gamma, beta)
            self.layers[f"Activation_function{idx}"] = ACTIVATIONS[activation]()
            if use_dropout:
                self.layers[f"Dropout{idx}"] = Dropout(dropout_ration)
        last = self.hidden_layer_num + 1
        self.layers[f"Affine{last}"] = Affine(self.params[f"W{last}"], self.params[f"b{last}"])
        self.last_layer = SoftmaxWithLoss()

    def _trainable(self, idx: int) -> tuple[str, ...]:
        """The parameter names of hidden layer ``idx``, in the book's gradient order."""
        names = (f"W{idx}", f"b{idx}")
        if self.use_batchnorm and idx != self.hidden_layer_num + 1:
            names += (f"gamma{idx}", f"beta{idx}")
        return names

    def predict(self, x: Any, train_flg: bool = False) -> Any:
        """Scores before the softmax; ``train_flg`` puts dropout and batch norm in training."""
        x = self._here(x)
        for layer in self.layers.values():
            if isinstance(layer, (Dropout, BatchNormalization)):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def loss(self, x: Any, t: Any, train_flg: bool = False) -> Any:
        """The book's cross-entropy plus the weight-decay penalty."""
        y = self.predict(x, train_flg)
        decay = weight_decay(self.params, self.hidden_layer_num + 1, self.weight_decay_lambda)
        return self.last_layer.forward(y, self._here(t)) + decay

    def accuracy(self, x: Any, t: Any) -> Any:
        """Fraction of samples whose top score (inference mode) is their label."""
        labels = _net.labels_of(self._here(t))
        return _net.fraction(_net.hits(self.predict(x, train_flg=False), labels), x.shape[0])

    def numerical_gradient(self, x: Any, t: Any, *, method: str = "fused") -> dict[str, Any]:
        """Central differences (h = 1e-4) of the training-mode loss, every parameter.

        Without dropout and batch normalization the fused kernel computes them (the book's
        loop's numbers within 1e-9, many times faster); with either, and with
        ``method="generic"``, the book's loop runs: the kernel models neither a random mask
        drawn anew at every forward pass nor batch statistics.
        """
        x, t = self._here(x), self._here(t)
        layers = self.hidden_layer_num + 1
        plain = not (self.use_dropout or self.use_batchnorm)
        if _gradient_check.fuses(method, modelled=plain):
            return _gradient_check.fully_connected(
                self.params, layers, x, t, activation=self.activation,
                weight_decay_lambda=self.weight_decay_lambda)
        keys = [key for idx in range(1, layers + 1) for key in self._trainable(idx)]
        return _gradient_check.loop(lambda: self.loss(x, t, train_flg=True), self.params, keys)

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients of the training-mode loss, weight decay included."""
        self.loss(x, t, train_flg=True)
        _net.backward(self.layers.values(), self.last_layer)
        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers[f"Affine{idx}"]
            grads[f"W{idx}"] = affine.dW + self.weight_decay_lambda * self.params[f"W{idx}"]
            grads[f"b{idx}"] = affine.db
            if len(self._trainable(idx)) == 4:
                norm = self.layers[f"BatchNorm{idx}"]
                grads[f"gamma{idx}"], grads[f"beta{idx}"] = norm.dgamma, norm.dbeta
        return grads
