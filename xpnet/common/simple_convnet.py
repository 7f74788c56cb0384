"""Chapter 7's ``SimpleConvNet``: conv -> ReLU -> pool -> affine -> ReLU -> affine -> softmax.

The book keeps it beside its chapter-7 scripts (``ch07/simple_convnet.py``); this is
xpnet's own, on the configured device, with parameter files in ``.npz``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from xpnet.backend import Device

from . import _net
from .gradient import numerical_gradient
from .layers import Affine, Convolution, Pooling, Relu, SoftmaxWithLoss

__all__ = ["SimpleConvNet"]

CONV_PARAM = MappingProxyType({"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1})
PARAM_LAYERS = ("Conv1", "Affine1", "Affine2")  # the layers holding W1/b1, W2/b2, W3/b3


class SimpleConvNet(_net.LayeredParams):
    """One convolution (``conv_param``: filter_num, filter_size, pad, stride), a 2x2 max
    pool, a hidden affine layer of ``hidden_size``, and ``output_size`` scores.

    ``input_dim``: (channels, height, width) of an image. Weights ``weight_init_std *
    randn`` from NumPy's global generator (or ``rng``), biases zero, cast to ``dtype``
    and moved to ``device``.
    """

    PARAM_LAYERS = PARAM_LAYERS

    def __init__(self, input_dim: tuple[int, int, int] = (1, 28, 28),
                 conv_param: Mapping[str, int] = CONV_PARAM, hidden_size: int = 100,
                 output_size: int = 10, weight_init_std: float = 0.01, *,
                 device: str | Device | None = None, dtype: Any = np.float64,
                 rng: np.random.Generator | None = None) -> None:
        self._place(device)
        filters, size = conv_param["filter_num"], conv_param["filter_size"]
        pad, stride = conv_param["pad"], conv_param["stride"]
        conv_side = (input_dim[1] - size + 2 * pad) / stride + 1
        pooled = int(filters * (conv_side / 2) * (conv_side / 2))

        std = weight_init_std
        host = {}
        host["W1"] = std * _net.randn(filters, input_dim[0], size, size, rng=rng)
        host["b1"] = np.zeros(filters)
        host["W2"] = std * _net.randn(pooled, hidden_size, rng=rng)
        host["b2"] = np.zeros(hidden_size)
        host["W3"] = std * _net.randn(hidden_size, output_size, rng=rng)
        host["b3"] = np.zeros(output_size)
        self.params = self._to_device(host, dtype)

        p = self.params
        self.layers = OrderedDict()
        self.layers["Conv1"] = Convolution(p["W1"], p["b1"], stride, pad)
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = Affine(p["W2"], p["b2"])
        self.layers["Relu2"] = Relu()
        self.layers["Affine2"] = Affine(p["W3"], p["b3"])
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x: Any) -> Any:
        """Scores (N, output_size) for images (N, C, H, W)."""
        x = self._here(x)
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: Any, t: Any) -> Any:
        """The book's cross-entropy of the softmax of ``predict(x)``."""
        return self.last_layer.forward(self.predict(x), self._here(t))

    def accuracy(self, x: Any, t: Any, batch_size: int = 100) -> Any:
        """Fraction of ``x`` classified right, counted in batches of ``batch_size``.

        Like the book, a last partial batch is not counted but the total is all of ``x``.
        """
        labels = _net.labels_of(self._here(t))
        count = 0
        for start in range(0, int(x.shape[0] / batch_size) * batch_size, batch_size):
            stop = start + batch_size
            count += _net.hits(self.predict(x[start:stop]), labels[start:stop])
        return _net.fraction(count, x.shape[0])

    def numerical_gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Central-difference gradients (h = 1e-4) for W1 .. b3 (slow: tiny shapes only)."""
        x, t = self._here(x), self._here(t)
        return {key: numerical_gradient(lambda _: self.loss(x, t), self.params[key])
                for key in self.params}

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients for W1, b1, W2, b2, W3, b3."""
        self.loss(x, t)
        _net.backward(self.layers.values(), self.last_layer)
        return self._layer_grads()
