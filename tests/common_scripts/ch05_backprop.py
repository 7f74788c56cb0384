# ruff: noqa: NPY002  (a reader's script: the global generator, seeded like the book's)
"""A reader's chapter-5 session: check backprop against differences, then train with it.

Prints "<key> <mean |backprop - numerical|>" for 3 samples, then one
"<train acc> <test acc>" line per epoch of mini-batch SGD. Argument: iterations.
"""
import sys

import numpy as np
from xpnet.dataset.fashion_mnist import load_fashion_mnist

from xpnet.common.two_layer_net import TwoLayerNet

iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
np.random.seed(0)
(x_train, t_train), (x_test, t_test) = load_fashion_mnist(normalize=True, one_hot_label=True)

net = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)
numerical = net.numerical_gradient(x_train[:3], t_train[:3])
backprop = net.gradient(x_train[:3], t_train[:3])
for key in numerical:
    print(key, np.mean(np.abs(numerical[key] - backprop[key])))

per_epoch = max(x_train.shape[0] / 100, 1)
for i in range(iterations):
    pick = np.random.choice(x_train.shape[0], 100)
    grads = net.gradient(x_train[pick], t_train[pick])
    for key in net.params:
        net.params[key] -= 0.1 * grads[key]
    if i % per_epoch == 0 or i == iterations - 1:
        print(net.accuracy(x_train, t_train), net.accuracy(x_test, t_test))
