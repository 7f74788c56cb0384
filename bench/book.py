"""The book's own chapter-4 code in plain NumPy: the baseline every figure is compared to.

Condensed from ``common/functions.py``, ``common/gradient.py``, ``ch04/two_layer_net.py``
and ``ch04/train_neuralnet.py`` without changing what they compute: one-hot labels,
``np.random.choice`` batches, the loss recomputed after each update, 17 evaluations.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def numerical_gradient(f, x):
    h = 1e-4
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)
        x[idx] = tmp_val - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val
        it.iternext()
    return grad


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, seed=0,
                 dtype=np.float64):
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": (weight_init_std * rng.standard_normal((input_size, hidden_size))).astype(dtype),
            "b1": np.zeros(hidden_size, dtype),
            "W2": (weight_init_std * rng.standard_normal((hidden_size, output_size))).astype(dtype),
            "b2": np.zeros(output_size, dtype),
        }

    def predict(self, x):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        return softmax(np.dot(sigmoid(np.dot(x, W1) + b1), W2) + b2)

    def loss(self, x, t):
        return cross_entropy_error(self.predict(x), t)

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def numerical_gradient(self, x, t):
        def loss_W(W):
            return self.loss(x, t)

        return {k: numerical_gradient(loss_W, self.params[k]) for k in ("W1", "b1", "W2", "b2")}

    def gradient(self, x, t):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        batch_num = x.shape[0]
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        y = softmax(np.dot(z1, W2) + b2)
        dy = (y - t) / batch_num
        grads = {"W2": np.dot(z1.T, dy), "b2": np.sum(dy, axis=0)}
        da1 = np.dot(dy, W2.T) * (1.0 - sigmoid(a1)) * sigmoid(a1)
        grads["W1"] = np.dot(x.T, da1)
        grads["b1"] = np.sum(da1, axis=0)
        return grads


def train(x_train, t_train, x_test, t_test, iters_num=10000, batch_size=100,
          learning_rate=0.1, hidden_size=50, seed=0, dtype=np.float64):
    """The book's train_neuralnet.py; one-hot labels. Returns the test accuracy list."""
    rng = np.random.default_rng(seed)
    network = TwoLayerNet(x_train.shape[1], hidden_size, t_train.shape[1], seed=seed,
                          dtype=dtype)
    train_size = x_train.shape[0]
    train_loss_list, test_acc_list = [], []
    iter_per_epoch = max(train_size / batch_size, 1)
    for i in range(iters_num):
        batch_mask = rng.choice(train_size, batch_size)
        x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
        grad = network.gradient(x_batch, t_batch)
        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= learning_rate * grad[key]
        train_loss_list.append(network.loss(x_batch, t_batch))
        if i % iter_per_epoch == 0:
            network.accuracy(x_train, t_train)
            test_acc_list.append(network.accuracy(x_test, t_test))
    return test_acc_list
