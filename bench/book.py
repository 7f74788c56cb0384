"""The book's chapter-4 code in plain NumPy: the one reference for tests and benchmarks.

Condensed from Saitoh, *Deep Learning from Scratch*, repository
oreilly-japan/deep-learning-from-scratch at commit 07b1161 (2024-11-05):
``common/functions.py``, ``common/gradient.py``, ``ch04/gradient_1d.py``,
``ch04/gradient_2d.py``, ``ch04/gradient_method.py``, ``ch04/two_layer_net.py`` and
``ch04/train_neuralnet.py``. The function bodies compute what the book's do, in the same
order of operations; plots, prints and module-level demo code are left out.
``tests/test_book_reference.py`` pins them to the book's printed numbers.

What differs from the book, and why:

- ``TwoLayerNet`` draws its weights from ``np.random.default_rng(seed)`` (the book:
  ``np.random.randn``) so every test and benchmark gets the same net, and takes a
  ``dtype`` (the book: float64 only) so the float32 baselines can be timed.
- ``train`` is ``train_neuralnet.py`` as a function: hyperparameters are arguments,
  batches come from ``default_rng(seed).choice`` (the book: ``np.random.choice``, also
  with replacement), and it returns ``test_acc_list`` (the train accuracy is computed, as
  in the book, but not kept).
- ``gradient_descent`` returns ``x``, as in the book's text; the repository's
  ``gradient_method.py`` also returns the history of ``x`` for its plot.
- ``mean_squared_error`` is the name early printings (and the repository until 2019)
  gave ``sum_squared_error``; both names are here.
- ``function_2`` is the one of ``gradient_2d.py``: one point (1-D) or a batch of rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# common/functions.py


def identity_function(x: np.ndarray) -> np.ndarray:
    return x


def step_function(x: np.ndarray) -> np.ndarray:
    """1 where x > 0, else 0 (int array)."""
    return np.array(x > 0, dtype=int)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    return (1.0 - sigmoid(x)) * sigmoid(x)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(0, x)


def relu_grad(x: np.ndarray) -> np.ndarray:
    """1 where x >= 0, else 0 (x's dtype)."""
    grad = np.zeros_like(x)
    grad[x >= 0] = 1
    return grad


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (one row or a batch), the max subtracted first."""
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def sum_squared_error(y: np.ndarray, t: np.ndarray) -> float:
    """0.5 * sum((y - t)^2) over every element (not divided by the batch)."""
    return 0.5 * np.sum((y - t) ** 2)


mean_squared_error = sum_squared_error


def cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """Mean over the batch of -log(y[label] + 1e-7); t one-hot or labels; 1-D y is one row."""
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:  # one-hot labels: take the index of the 1
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def softmax_loss(X: np.ndarray, t: np.ndarray) -> float:
    """cross_entropy_error(softmax(X), t): the loss from logits X."""
    y = softmax(X)
    return cross_entropy_error(y, t)


# common/gradient.py (and gradient_2d.py, which has the same two functions)


def _numerical_gradient_1d(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Central differences, h = 1e-4, over each element of the 1-D float array x."""
    h = 1e-4
    grad = np.zeros_like(x)
    for idx in range(x.size):
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)
        x[idx] = tmp_val - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val
    return grad


def numerical_gradient_2d(f: Callable[[np.ndarray], float], X: np.ndarray) -> np.ndarray:
    """The gradient of f at one point (1-D X) or at each row of a 2-D X separately."""
    if X.ndim == 1:
        return _numerical_gradient_1d(f, X)
    grad = np.zeros_like(X)
    for idx, x in enumerate(X):
        grad[idx] = _numerical_gradient_1d(f, x)
    return grad


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Central differences, h = 1e-4, over every element of a float array of any shape.

    Each element is perturbed in place and restored, so f may ignore its argument.
    """
    h = 1e-4
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = tmp_val + h
        fxh1 = f(x)
        x[idx] = tmp_val - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val
        it.iternext()
    return grad


# ch04/gradient_1d.py, gradient_2d.py, gradient_method.py


def numerical_diff(f: Callable[[float], float], x: float) -> float:
    """Central difference (f(x+h) - f(x-h)) / 2h, h = 1e-4."""
    h = 1e-4
    return (f(x + h) - f(x - h)) / (2 * h)


def function_1(x: float) -> float:
    return 0.01 * x**2 + 0.1 * x


def function_2(x: np.ndarray) -> np.ndarray:
    """x0^2 + x1^2 (+ ...): a float for one point, one value a row for a batch."""
    if x.ndim == 1:
        return np.sum(x**2)
    return np.sum(x**2, axis=1)


def gradient_descent(f: Callable[[np.ndarray], float], init_x: np.ndarray, lr: float = 0.01,
                     step_num: int = 100) -> np.ndarray:
    """step_num steps of x -= lr * numerical_gradient(f, x); init_x is updated in place."""
    x = init_x
    for _ in range(step_num):
        grad = numerical_gradient(f, x)
        x -= lr * grad
    return x


# ch04/two_layer_net.py


class TwoLayerNet:
    """input -> affine -> sigmoid -> affine -> softmax; labels one-hot (N, output_size)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 weight_init_std: float = 0.01, seed: int = 0, dtype=np.float64) -> None:
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": (weight_init_std * rng.standard_normal((input_size, hidden_size))).astype(dtype),
            "b1": np.zeros(hidden_size, dtype),
            "W2": (weight_init_std * rng.standard_normal((hidden_size, output_size))).astype(dtype),
            "b2": np.zeros(output_size, dtype),
        }

    def predict(self, x: np.ndarray) -> np.ndarray:
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)
        return y

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        y = self.predict(x)
        return cross_entropy_error(y, t)

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        y = self.predict(x)
        y = np.argmax(y, axis=1)
        t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        def loss_W(W):
            return self.loss(x, t)

        return {k: numerical_gradient(loss_W, self.params[k]) for k in ("W1", "b1", "W2", "b2")}

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Backprop; t one-hot."""
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        grads = {}
        batch_num = x.shape[0]

        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)

        dy = (y - t) / batch_num
        grads["W2"] = np.dot(z1.T, dy)
        grads["b2"] = np.sum(dy, axis=0)
        dz1 = np.dot(dy, W2.T)
        da1 = sigmoid_grad(a1) * dz1
        grads["W1"] = np.dot(x.T, da1)
        grads["b1"] = np.sum(da1, axis=0)
        return grads


# ch04/train_neuralnet.py


def train(x_train: np.ndarray, t_train: np.ndarray, x_test: np.ndarray, t_test: np.ndarray,
          iters_num: int = 10000, batch_size: int = 100, learning_rate: float = 0.1,
          hidden_size: int = 50, seed: int = 0, dtype=np.float64) -> list[float]:
    """The book's train_neuralnet.py; labels one-hot. Returns the test accuracy list."""
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
