"""Chapter 8's ``DeepConvNet``: six 3x3 convolutions with ReLU, a max pool after every
second, then affine -> ReLU -> dropout -> affine -> dropout -> softmax.

The book keeps it beside its chapter-8 scripts (``ch08/deep_convnet.py``); this is
xpnet's own, on the configured device, with parameter files in ``.npz``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from xpnet.backend import Device

from . import _net
from .layers import Affine, Convolution, Dropout, Pooling, Relu, SoftmaxWithLoss

__all__ = ["DeepConvNet"]


def _conv(filters: int, pad: int) -> Mapping[str, int]:
    return MappingProxyType({"filter_num": filters, "filter_size": 3, "pad": pad, "stride": 1})


# The book's six convolutions: 16, 16, 32, 32, 64, 64 filters of 3x3. The fourth pads by
# 2, so a 28x28 image is 14x14, then 8x8, then 4x4 after the three pools.
CONV_1, CONV_2, CONV_3 = _conv(16, 1), _conv(16, 1), _conv(32, 1)
CONV_4, CONV_5, CONV_6 = _conv(32, 2), _conv(64, 1), _conv(64, 1)
# Positions in ``layers`` of the layers holding W1/b1 .. W8/b8.
PARAM_LAYERS = (0, 2, 5, 7, 10, 12, 15, 18)


class DeepConvNet(_net.LayeredParams):
    """The book's deep net for 28x28 images (over 99% on MNIST after 20 epochs of Adam).

    ``layers`` is a list (the book indexes it); dropout is in training mode in ``loss``
    (and so in ``gradient``) and off in ``predict`` and ``accuracy``. He initial weights
    from NumPy's global generator (or ``rng``), scaled by the book's fixed fan-ins (which
    assume one input channel and 28x28 images), cast to ``dtype``, moved to ``device``.
    """

    PARAM_LAYERS = PARAM_LAYERS

    def __init__(self, input_dim: tuple[int, int, int] = (1, 28, 28),
                 conv_param_1: Mapping[str, int] = CONV_1,
                 conv_param_2: Mapping[str, int] = CONV_2,
                 conv_param_3: Mapping[str, int] = CONV_3,
                 conv_param_4: Mapping[str, int] = CONV_4,
                 conv_param_5: Mapping[str, int] = CONV_5,
                 conv_param_6: Mapping[str, int] = CONV_6,
                 hidden_size: int = 50, output_size: int = 10, *,
                 device: str | Device | None = None, dtype: Any = np.float64,
                 rng: np.random.Generator | None = None) -> None:
        self._place(device)
        convs = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5,
                 conv_param_6)
        # Inputs feeding one unit of each layer, as the book fixes them.
        fan_in = np.array([1 * 3 * 3, 16 * 3 * 3, 16 * 3 * 3, 32 * 3 * 3, 32 * 3 * 3,
                           64 * 3 * 3, 64 * 4 * 4, hidden_size])
        scales = np.sqrt(2.0 / fan_in)

        host = {}
        channels = input_dim[0]
        for idx, conv in enumerate(convs, start=1):
            size = conv["filter_size"]
            host[f"W{idx}"] = scales[idx - 1] * _net.randn(conv["filter_num"], channels,
                                                           size, size, rng=rng)
            host[f"b{idx}"] = np.zeros(conv["filter_num"])
            channels = conv["filter_num"]
        host["W7"] = scales[6] * _net.randn(64 * 4 * 4, hidden_size, rng=rng)
        host["b7"] = np.zeros(hidden_size)
        host["W8"] = scales[7] * _net.randn(hidden_size, output_size, rng=rng)
        host["b8"] = np.zeros(output_size)
        self.params = self._to_device(host, dtype)

        p = self.params
        self.layers = []
        for idx, conv in enumerate(convs, start=1):
            self.layers += [Convolution(p[f"W{idx}"], p[f"b{idx}"], conv["stride"],
                                        conv["pad"]), Relu()]
            if idx % 2 == 0:
                self.layers.append(Pooling(pool_h=2, pool_w=2, stride=2))
        self.layers += [Affine(p["W7"], p["b7"]), Relu(), Dropout(0.5),
                        Affine(p["W8"], p["b8"]), Dropout(0.5)]
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x: Any, train_flg: bool = False) -> Any:
        """Scores (N, output_size); ``train_flg`` turns dropout on."""
        x = self._here(x)
        for layer in self.layers:
            x = layer.forward(x, train_flg) if isinstance(layer, Dropout) else layer.forward(x)
        return x

    def loss(self, x: Any, t: Any) -> Any:
        """The book's cross-entropy, with dropout in training mode."""
        return self.last_layer.forward(self.predict(x, train_flg=True), self._here(t))

    def accuracy(self, x: Any, t: Any, batch_size: int = 100) -> Any:
        """Fraction of ``x`` classified right (dropout off), counted in batches.

        Like the book, a last partial batch is not counted but the total is all of ``x``.
        """
        labels = _net.labels_of(self._here(t))
        count = 0
        for start in range(0, int(x.shape[0] / batch_size) * batch_size, batch_size):
            stop = start + batch_size
            count += _net.hits(self.predict(x[start:stop], train_flg=False),
                               labels[start:stop])
        return _net.fraction(count, x.shape[0])

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients for W1 .. b8 (one training-mode forward pass)."""
        self.loss(x, t)
        _net.backward(self.layers, self.last_layer)
        return self._layer_grads()
