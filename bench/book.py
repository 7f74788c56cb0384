"""A plain-NumPy reference for the book's chapter-4 results, written for our tests and benchmarks.

Saitoh's *Deep Learning from Scratch* (chapter 4, with chapter 5's gradient check) fixes
what these names compute and which numbers they print; this module is our own
implementation of that arithmetic, kept deliberately naive so the optimised code in
``xpnet`` has something unoptimised to be held against. Each expression is evaluated in
the order the book's does (same operands, same operations, same reductions), so the
results match the book bit for bit and ``tests/test_book_reference.py`` can pin them to
the values the book prints.

Public names are the book's, so tests read as the book does: ``identity_function``,
``step_function``, ``sigmoid``, ``sigmoid_grad``, ``relu``, ``relu_grad``, ``softmax``,
``sum_squared_error`` (alias ``mean_squared_error``, its name in early printings),
``cross_entropy_error``, ``softmax_loss``, ``numerical_diff``, ``numerical_gradient``,
``numerical_gradient_2d``, ``gradient_descent``, ``function_1``, ``function_2``,
``TwoLayerNet`` and ``train``.

Where this reference departs from the book on purpose:

- ``TwoLayerNet`` takes ``seed`` (its weights come from ``np.random.default_rng(seed)``,
  not the global generator) so every test and benchmark builds the same net, and
  ``dtype`` so float32 baselines can be timed.
- ``train`` is the chapter's training script as a function: hyperparameters are
  arguments, mini-batches are drawn with replacement from ``default_rng(seed)``, and the
  test accuracy at each epoch boundary is returned.
- ``gradient_descent`` returns the final point only (the text's version).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

H = 1e-4  # the book's step for every numerical derivative
DELTA = 1e-7  # added inside the log of the cross-entropy, so a zero probability stays finite

Scalar = Callable[[np.ndarray], float]


# ------------------------------------------------------------ activations and losses


def identity_function(x: np.ndarray) -> np.ndarray:
    """x itself (the output activation of a regression net)."""
    return x


def step_function(x: np.ndarray) -> np.ndarray:
    """Integer array: 1 where x > 0, 0 elsewhere."""
    return (x > 0).astype(int)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, elementwise."""
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid at x: (1 - s) s with s = sigmoid(x)."""
    s = sigmoid(x)
    return (1.0 - s) * s


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x), elementwise."""
    return np.maximum(0, x)


def relu_grad(x: np.ndarray) -> np.ndarray:
    """x's dtype: 1 where x >= 0 (so 1 at the kink, as in the book), else 0."""
    return (x >= 0).astype(x.dtype)


def softmax(x: np.ndarray) -> np.ndarray:
    """Normalised exponentials along the last axis; shifting by the row max avoids overflow."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def sum_squared_error(y: np.ndarray, t: np.ndarray) -> float:
    """Half the total of squared differences, over all elements (no division by the batch)."""
    return 0.5 * np.sum((y - t) ** 2)


mean_squared_error = sum_squared_error


def cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """Batch mean of -log(probability of the right class + DELTA).

    y: probabilities, (C,) for one sample or (B, C). t: class indices or one-hot rows
    (told apart by size, as in the book).
    """
    rows = y.reshape(1, y.size) if y.ndim == 1 else y
    labels = t.reshape(1, t.size) if y.ndim == 1 else t
    if labels.size == rows.size:
        labels = labels.argmax(axis=1)
    n = rows.shape[0]
    picked = rows[np.arange(n), labels]
    return -np.sum(np.log(picked + DELTA)) / n


def softmax_loss(X: np.ndarray, t: np.ndarray) -> float:
    """Cross-entropy of softmax(X): the loss straight from logits."""
    return cross_entropy_error(softmax(X), t)


# ------------------------------------------------------------ numerical derivatives


def numerical_diff(f: Callable[[float], float], x: float) -> float:
    """Symmetric difference quotient of f at x with step H."""
    return (f(x + H) - f(x - H)) / (2 * H)


def _central(f: Scalar, x: np.ndarray, idx, up, down, out: np.ndarray) -> None:
    """out[idx] from f evaluated with x[idx] set to ``up`` then ``down``; x[idx] restored."""
    saved = x[idx]
    x[idx] = up
    f_up = f(x)
    x[idx] = down
    f_down = f(x)
    x[idx] = saved
    out[idx] = (f_up - f_down) / (2 * H)


def numerical_gradient(f: Scalar, x: np.ndarray) -> np.ndarray:
    """Gradient of the scalar f at x (any shape), one element at a time, in place.

    f is called with x itself after each change, so a closure that ignores its argument
    (a net's loss) works too. The step is added in x's own scalar type, as the book's
    nditer loop does.
    """
    slopes = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        v = x[idx]
        _central(f, x, idx, v + H, v - H, slopes)
    return slopes


def _numerical_gradient_1d(f: Scalar, x: np.ndarray) -> np.ndarray:
    """numerical_gradient for a 1-D x, as the book's row helper does it.

    Unlike the any-shape version, the upper point is formed in Python float (double)
    before it is stored: for float32 x the two round differently, and the book has both.
    """
    slopes = np.zeros_like(x)
    for k in range(x.size):
        v = x[k]
        _central(f, x, k, float(v) + H, v - H, slopes)
    return slopes


def numerical_gradient_2d(f: Scalar, X: np.ndarray) -> np.ndarray:
    """One point (1-D X), or each row of a 2-D X treated as a point of its own."""
    if X.ndim > 1:
        per_row = np.zeros_like(X)
        for row, out in zip(X, per_row, strict=True):
            out[...] = _numerical_gradient_1d(f, row)
        return per_row
    return _numerical_gradient_1d(f, X)


def gradient_descent(f: Scalar, init_x: np.ndarray, lr: float = 0.01,
                     step_num: int = 100) -> np.ndarray:
    """step_num fixed-size steps against the numerical gradient; init_x moves in place."""
    for _ in range(step_num):
        init_x -= lr * numerical_gradient(f, init_x)
    return init_x


def function_1(x: float) -> float:
    """The chapter's one-variable example, 0.01 x^2 + 0.1 x."""
    return 0.01 * x**2 + 0.1 * x


def function_2(x: np.ndarray) -> np.ndarray:
    """Sum of squares: a number for one point (1-D), one per row (axis 1) otherwise."""
    return np.sum(x**2, axis=None if x.ndim == 1 else 1)


# ------------------------------------------------------------ the two-layer net


class TwoLayerNet:
    """Affine, sigmoid, affine, softmax; labels one-hot rows (N, output_size)."""

    KEYS = ("W1", "b1", "W2", "b2")

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 weight_init_std: float = 0.01, seed: int = 0, dtype=np.float64) -> None:
        rng = np.random.default_rng(seed)

        def weights(rows: int, cols: int) -> np.ndarray:
            return (weight_init_std * rng.standard_normal((rows, cols))).astype(dtype)

        w_in = weights(input_size, hidden_size)  # drawn first, so W1 comes before W2
        w_out = weights(hidden_size, output_size)
        self.params = {"W1": w_in, "b1": np.zeros(hidden_size, dtype),
                       "W2": w_out, "b2": np.zeros(output_size, dtype)}

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hidden pre-activation, hidden output, class probabilities) for the batch x."""
        p = self.params
        pre = np.dot(x, p["W1"]) + p["b1"]
        hidden = sigmoid(pre)
        probs = softmax(np.dot(hidden, p["W2"]) + p["b2"])
        return pre, hidden, probs

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x)[2]

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        return cross_entropy_error(self.predict(x), t)

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """Fraction of rows whose most probable class is the one-hot label's."""
        hits = np.argmax(self.predict(x), axis=1) == np.argmax(t, axis=1)
        return np.sum(hits) / float(x.shape[0])

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Central differences of the loss over every parameter (slow by design)."""
        return {k: numerical_gradient(lambda _: self.loss(x, t), self.params[k])
                for k in self.KEYS}

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Backpropagation; t one-hot."""
        pre, hidden, probs = self._forward(x)
        d_logits = (probs - t) / x.shape[0]
        d_pre = sigmoid_grad(pre) * np.dot(d_logits, self.params["W2"].T)
        return {"W1": np.dot(x.T, d_pre), "b1": np.sum(d_pre, axis=0),
                "W2": np.dot(hidden.T, d_logits), "b2": np.sum(d_logits, axis=0)}


def train(x_train: np.ndarray, t_train: np.ndarray, x_test: np.ndarray, t_test: np.ndarray,
          iters_num: int = 10000, batch_size: int = 100, learning_rate: float = 0.1,
          hidden_size: int = 50, seed: int = 0, dtype=np.float64) -> list[float]:
    """Mini-batch SGD on the chapter's schedule; labels one-hot; test accuracy per epoch.

    The training loss and the training-set accuracy are computed at the same points as
    the book's script (a benchmark times this loop as the book's), though not returned.
    """
    net = TwoLayerNet(x_train.shape[1], hidden_size, t_train.shape[1], seed=seed, dtype=dtype)
    draw = np.random.default_rng(seed)
    n = x_train.shape[0]
    epoch = max(n / batch_size, 1)
    losses, test_acc = [], []
    for step in range(iters_num):
        pick = draw.choice(n, batch_size)
        xb, tb = x_train[pick], t_train[pick]
        grads = net.gradient(xb, tb)
        for key in TwoLayerNet.KEYS:
            net.params[key] -= learning_rate * grads[key]
        losses.append(net.loss(xb, tb))
        if step % epoch == 0:
            net.accuracy(x_train, t_train)
            test_acc.append(net.accuracy(x_test, t_test))
    return test_acc
