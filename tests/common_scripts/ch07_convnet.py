# ruff: noqa: NPY002  (a reader's script: the global generator, seeded like the book's)
"""A reader's chapter-7 session: SimpleConvNet trained by the Trainer, saved and reloaded.

Prints the Trainer's lines, then "reloaded <test acc>". Arguments: train samples, epochs,
folder for params.pkl.
"""
import sys

import numpy as np
from xpnet.dataset.fashion_mnist import load_fashion_mnist

from xpnet.common.simple_convnet import SimpleConvNet
from xpnet.common.trainer import Trainer

samples, epochs, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
np.random.seed(0)
(x_train, t_train), (x_test, t_test) = load_fashion_mnist(flatten=False)
x_train, t_train = x_train[:samples], t_train[:samples]
x_test, t_test = x_test[:1000], t_test[:1000]

net = SimpleConvNet(input_dim=(1, 28, 28),
                    conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                    hidden_size=100, output_size=10, weight_init_std=0.01)
trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=epochs, mini_batch_size=100,
                  optimizer="Adam", optimizer_param={"lr": 0.001},
                  evaluate_sample_num_per_epoch=500)
trainer.train()
net.save_params(f"{folder}/params.pkl")

again = SimpleConvNet()
again.load_params(f"{folder}/params.pkl")
print("reloaded", again.accuracy(x_test, t_test))
