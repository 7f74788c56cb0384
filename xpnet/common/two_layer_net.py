"""Chapter 5's ``TwoLayerNet``: affine -> ReLU -> affine -> softmax, built from layers.

The book keeps this net beside its chapter-5 scripts (``ch05/two_layer_net.py``, which
a reader keeps too: with the import rule it runs on these layers). This is xpnet's own,
on the configured device. Not to be confused with ``xpnet.TwoLayerNet``, chapter 4's
sigmoid net without layer objects.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from xpnet.backend import Device

from . import _gradient_check, _net
from .layers import Affine, Relu, SoftmaxWithLoss

__all__ = ["TwoLayerNet"]

PARAM_NAMES = ("W1", "b1", "W2", "b2")


class TwoLayerNet(_net.OnDevice):
    """``layers``: Affine1, Relu1, Affine2 (an OrderedDict); ``lastLayer``: SoftmaxWithLoss.

    Weights ``weight_init_std * randn`` from NumPy's global generator, biases zero,
    moved to ``device`` (default: the configured one).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 weight_init_std: float = 0.01, *, device: str | Device | None = None) -> None:
        self._place(device)
        host = {}
        host["W1"] = weight_init_std * _net.randn(input_size, hidden_size)
        host["b1"] = np.zeros(hidden_size)
        host["W2"] = weight_init_std * _net.randn(hidden_size, output_size)
        host["b2"] = np.zeros(output_size)
        self.params = self._to_device(host)
        p = self.params
        self.layers = OrderedDict(
            Affine1=Affine(p["W1"], p["b1"]), Relu1=Relu(), Affine2=Affine(p["W2"], p["b2"]))
        self.lastLayer = SoftmaxWithLoss()

    def predict(self, x: Any) -> Any:
        """Scores (N, output_size) before the softmax."""
        x = self._here(x)
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: Any, t: Any) -> Any:
        """The book's cross-entropy of the softmax of ``predict(x)``."""
        return self.lastLayer.forward(self.predict(x), self._here(t))

    def accuracy(self, x: Any, t: Any) -> Any:
        """Fraction of samples whose top score is their label (labels or one-hot ``t``)."""
        labels = _net.labels_of(self._here(t))
        return _net.fraction(_net.hits(self.predict(x), labels), x.shape[0])

    def numerical_gradient(self, x: Any, t: Any, *, method: str = "fused") -> dict[str, Any]:
        """Central-difference gradients (h = 1e-4) for W1, b1, W2, b2.

        Computed by the fused MultiLayerNet kernel (ReLU, one hidden layer): the book's
        loop's numbers within 1e-9, many times faster. ``method="generic"`` runs the loop.
        """
        x, t = self._here(x), self._here(t)
        if _gradient_check.fuses(method):
            return _gradient_check.fully_connected(self.params, 2, x, t, activation="relu",
                                                   weight_decay_lambda=0.0)
        return _gradient_check.loop(lambda: self.loss(x, t), self.params, PARAM_NAMES)

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients for W1, b1, W2, b2."""
        self.loss(x, t)
        _net.backward(self.layers.values(), self.lastLayer)
        first, second = self.layers["Affine1"], self.layers["Affine2"]
        return {"W1": first.dW, "b1": first.db, "W2": second.dW, "b2": second.db}
