# ruff: noqa: NPY002  (a reader's script: the global generator, seeded like the book's)
"""A reader's chapter-6 session: four optimizers on one MultiLayerNet each, then batch norm.

Prints "<optimizer> <loss>" every 100 iterations, then "batchnorm <acc without> <acc with>".
Argument: iterations.
"""
import sys

import numpy as np
from xpnet.dataset.fashion_mnist import load_fashion_mnist

from xpnet.common.multi_layer_net import MultiLayerNet
from xpnet.common.multi_layer_net_extend import MultiLayerNetExtend
from xpnet.common.optimizer import SGD, AdaGrad, Adam, Momentum

iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
np.random.seed(0)
(x_train, t_train), (x_test, t_test) = load_fashion_mnist(normalize=True)

optimizers = {"SGD": SGD(), "Momentum": Momentum(), "AdaGrad": AdaGrad(), "Adam": Adam()}
nets = {name: MultiLayerNet(784, [100, 100, 100, 100], 10) for name in optimizers}
for i in range(iterations):
    pick = np.random.choice(x_train.shape[0], 128)
    for name, opt in optimizers.items():
        opt.update(nets[name].params, nets[name].gradient(x_train[pick], t_train[pick]))
    if i % 100 == 0 or i == iterations - 1:
        for name in optimizers:
            print(name, nets[name].loss(x_train[pick], t_train[pick]))

plain = MultiLayerNetExtend(784, [100] * 5, 10, weight_init_std=0.05)
normed = MultiLayerNetExtend(784, [100] * 5, 10, weight_init_std=0.05, use_batchnorm=True)
sgd = SGD(lr=0.01)
for _ in range(iterations):
    pick = np.random.choice(1000, 100)
    for net in (plain, normed):
        sgd.update(net.params, net.gradient(x_train[pick], t_train[pick]))
print("batchnorm", plain.accuracy(x_test, t_test), normed.accuracy(x_test, t_test))
