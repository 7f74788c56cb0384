"""A reader's chapter-4 training script on xpnet, on Fashion-MNIST (this machine's offline data).

The chapter's recipe: a 784-50-10 two-layer net, batches of 100 drawn with replacement
through NumPy's global generator, learning rate 0.1, backprop gradients, and both
accuracies printed each time an epoch's worth of steps has passed. The number of steps
is the first argument (default 10000); the seed is fixed so a test gets one answer.
"""

import sys

import numpy as np
from xpnet.dataset.fashion_mnist import load_fashion_mnist

from xpnet.two_layer_net import TwoLayerNet

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
batch, rate = 100, 0.1

np.random.seed(0)
(images, labels), (test_images, test_labels) = load_fashion_mnist(
    normalize=True, one_hot_label=True
)
net = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)

per_epoch = max(images.shape[0] / batch, 1)
history = {"loss": [], "train acc": [], "test acc": []}

for step in range(steps):
    chosen = np.random.choice(images.shape[0], batch)
    xb, tb = images[chosen], labels[chosen]
    grads = net.gradient(xb, tb)
    for name in net.params:
        net.params[name] -= rate * grads[name]
    history["loss"].append(net.loss(xb, tb))

    if step % per_epoch == 0:
        history["train acc"].append(net.accuracy(images, labels))
        history["test acc"].append(net.accuracy(test_images, test_labels))
        print(f"train acc, test acc | {history['train acc'][-1]}, {history['test acc'][-1]}")

print(f"final test acc | {net.accuracy(test_images, test_labels)}")
