"""A reader's chapter-4 script (the book's train_neuralnet.py with xpnet's imports), on a GPU.

As the README shows: the data is moved to the device once, the net is made there, and the
book's loop is otherwise unchanged (batch_mask from NumPy's global generator, the update,
the loss appended every step, both accuracies at every epoch). Arguments: data folder,
device ("cpu" runs the same lines on NumPy), iterations; prints the book's lines and
writes the final parameters to params.npz in the working folder.
"""

import sys

import numpy as np
from xpnet.dataset.fashion_mnist import load_fashion_mnist

from xpnet.two_layer_net import TwoLayerNet

data_dir, device, iters_num = sys.argv[1], sys.argv[2], int(sys.argv[3])
np.random.seed(0)  # noqa: NPY002 - the book's global generator
(x_train, t_train), (x_test, t_test) = load_fashion_mnist(
    normalize=True, one_hot_label=True, data_dir=data_dir, download=False)
if device != "cpu":
    import cupy as cp

    # the reader's own indexing runs on the current GPU: make the net's GPU current
    cp.cuda.Device(int(device.partition(":")[2] or 0)).use()
    x_train, t_train, x_test, t_test = (cp.asarray(a) for a in
                                        (x_train, t_train, x_test, t_test))

network = TwoLayerNet(input_size=784, hidden_size=5, output_size=10, device=device)
train_size = x_train.shape[0]
batch_size = 10
learning_rate = 0.1
train_loss_list = []
train_acc_list = []
test_acc_list = []
iter_per_epoch = max(train_size / batch_size, 1)

for i in range(iters_num):
    batch_mask = np.random.choice(train_size, batch_size)  # noqa: NPY002 - the book's
    x_batch = x_train[batch_mask]
    t_batch = t_train[batch_mask]
    grad = network.gradient(x_batch, t_batch)
    for key in ("W1", "b1", "W2", "b2"):
        network.params[key] -= learning_rate * grad[key]
    loss = network.loss(x_batch, t_batch)
    train_loss_list.append(loss)
    if i % iter_per_epoch == 0:
        train_acc = network.accuracy(x_train, t_train)
        test_acc = network.accuracy(x_test, t_test)
        train_acc_list.append(train_acc)
        test_acc_list.append(test_acc)
        print("train acc, test acc | " + str(train_acc) + ", " + str(test_acc))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.plot(train_loss_list)  # a list of floats on every device
plt.savefig("loss.png")
print("losses | " + " ".join(repr(v) for v in train_loss_list))
network.save("params.npz")
