"""bench/book.py, our plain-NumPy reference of chapter 4, against the numbers the book prints."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path

import book
import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parent / "scripts"

# The book's example output (chapter 4.2): label 2, a good and a bad guess.
T = np.eye(10)[2]
Y_GOOD = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
Y_BAD = np.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])


def test_sum_squared_error_gives_the_books_values() -> None:
    assert book.sum_squared_error(Y_GOOD, T) == pytest.approx(0.0975, rel=1e-12)
    assert book.sum_squared_error(Y_BAD, T) == pytest.approx(0.5975, rel=1e-12)
    assert book.mean_squared_error is book.sum_squared_error


def test_cross_entropy_error_gives_the_books_values_for_every_label_form() -> None:
    assert book.cross_entropy_error(Y_GOOD, T) == pytest.approx(0.510825457099338, rel=1e-14)
    assert book.cross_entropy_error(Y_BAD, T) == pytest.approx(2.302584092994546, rel=1e-14)
    batch, labels = np.stack([Y_GOOD, Y_BAD]), np.array([2, 2])
    mean = (0.510825457099338 + 2.302584092994546) / 2
    assert book.cross_entropy_error(batch, labels) == pytest.approx(mean, rel=1e-14)
    assert book.cross_entropy_error(batch, np.eye(10)[labels]) == pytest.approx(mean, rel=1e-14)


def test_softmax_and_softmax_loss_give_the_books_values() -> None:
    np.testing.assert_allclose(book.softmax(np.array([0.3, 2.9, 4.0])),
                               [0.01821127, 0.24519181, 0.73659691], atol=5e-9)
    # The book's overflow example: without the max subtracted, exp(1010) is inf.
    np.testing.assert_allclose(book.softmax(np.array([1010.0, 1000.0, 990.0])),
                               [9.99954600e-01, 4.53978686e-05, 2.06106005e-09], rtol=5e-8)
    logits = np.random.default_rng(3).normal(scale=3, size=(4, 10))
    np.testing.assert_allclose(book.softmax(logits)[1], book.softmax(logits[1]), rtol=1e-15)
    labels = np.array([0, 9, 4, 4])
    expected = -np.mean(np.log(book.softmax(logits)[np.arange(4), labels] + 1e-7))
    assert book.softmax_loss(logits, labels) == pytest.approx(expected, rel=1e-14)


def test_activations_give_the_books_values() -> None:
    x = np.array([-1.0, 0.0, 2.0])
    assert book.identity_function(x) is x
    step = book.step_function(x)
    assert step.tolist() == [0, 0, 1] and step.dtype.kind == "i"
    np.testing.assert_allclose(book.sigmoid(np.array([-1.0, 1.0, 2.0])),
                               [0.26894142, 0.73105858, 0.88079708], atol=5e-9)
    assert book.relu(x).tolist() == [0.0, 0.0, 2.0]
    assert book.relu_grad(x).tolist() == [0.0, 1.0, 1.0]  # the book's x >= 0 (fixed in 2019)
    for point in (-2.0, 0.3, 1.5):
        slope = book.numerical_diff(book.sigmoid, point)
        assert book.sigmoid_grad(np.array(point)) == pytest.approx(slope, rel=1e-7)


def test_numerical_diff_gives_the_books_values() -> None:
    assert book.numerical_diff(book.function_1, 5) == 0.1999999999990898
    assert book.numerical_diff(book.function_1, 10) == 0.2999999999986347


@pytest.mark.parametrize(("point", "expected"), [
    ((3.0, 4.0), (6.00000000000378, 7.999999999999119)),  # the book's footnote values
    ((0.0, 2.0), (0.0, 4.0)),
    ((3.0, 0.0), (6.0, 0.0)),
])
def test_numerical_gradient_of_function_2_gives_the_books_values(point, expected) -> None:
    x = np.array(point)
    np.testing.assert_allclose(book.numerical_gradient(book.function_2, x), expected,
                               rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(book.numerical_gradient_2d(book.function_2, x), expected,
                               rtol=1e-12, atol=1e-10)
    assert x.tolist() == list(point)  # every perturbed element restored


def test_numerical_gradient_handles_any_shape_and_the_2d_one_each_row() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4))
    weights = rng.normal(size=(3, 4))
    np.testing.assert_allclose(book.numerical_gradient(lambda v: np.sum(weights * v**3), x),
                               3 * weights * x**2, rtol=1e-6, atol=1e-7)
    rows = book.numerical_gradient_2d(book.function_2, x)
    for i in range(3):  # each row's own gradient: 2 x
        np.testing.assert_allclose(rows[i], book._numerical_gradient_1d(book.function_2, x[i]),
                                   rtol=1e-15)
    np.testing.assert_allclose(rows, 2 * x, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize(("lr", "expected"), [
    (0.1, (-6.11110793e-10, 8.14814391e-10)),
    (10.0, (-2.58983747e13, -1.29524862e12)),  # too large: diverges
    (1e-10, (-2.99999994, 3.99999992)),  # too small: hardly moves
])
def test_gradient_descent_gives_the_books_values(lr, expected) -> None:
    init_x = np.array([-3.0, 4.0])
    x = book.gradient_descent(book.function_2, init_x, lr=lr, step_num=100)
    np.testing.assert_allclose(x, expected, rtol=1e-8)
    assert x is init_x  # updated in place, as in the book
    if lr == 0.1:
        assert np.abs(x).max() < 1e-9


def test_two_layer_net_has_the_books_shapes_and_its_gradients_agree() -> None:
    net = book.TwoLayerNet(input_size=784, hidden_size=100, output_size=10)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {"W1": (784, 100), "b1": (100,), "W2": (100, 10), "b2": (10,)}
    assert net.params["W1"].std() == pytest.approx(0.01, rel=0.02)

    rng = np.random.default_rng(11)
    small = book.TwoLayerNet(6, 5, 3, seed=2)
    x, t = rng.random((4, 6)), np.eye(3)[[0, 2, 1, 2]]
    np.testing.assert_allclose(small.predict(x).sum(axis=1), 1.0, rtol=1e-15)
    numerical, backprop = small.numerical_gradient(x, t), small.gradient(x, t)
    for key in ("W1", "b1", "W2", "b2"):  # the book's ch. 5 gradient check
        # Relative: the loss's log(y + 1e-7) moves the true gradient ~1e-7/y off backprop's.
        scale = np.abs(backprop[key]).max()
        assert np.abs(numerical[key] - backprop[key]).max() < 1e-6 * scale, key
    assert small.loss(x, t) == pytest.approx(
        book.cross_entropy_error(small.predict(x), t), rel=1e-15)
    assert small.accuracy(x, t) == np.mean(small.predict(x).argmax(axis=1) == [0, 2, 1, 2])
    np.testing.assert_array_equal(book.TwoLayerNet(6, 5, 3, seed=2).params["W1"],
                                  book.TwoLayerNet(6, 5, 3, seed=2).params["W1"])
    assert book.TwoLayerNet(6, 5, 3, dtype=np.float32).params["b2"].dtype == np.float32


def test_train_evaluates_on_the_books_schedule_and_learns() -> None:
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=3, size=(3, 8))
    labels = rng.integers(0, 3, size=300)
    x = centres[labels] + rng.normal(size=(300, 8))
    t = np.eye(3)[labels]
    test_acc = book.train(x, t, x, t, iters_num=31, batch_size=100, learning_rate=1.0,
                          hidden_size=10)
    assert len(test_acc) == 11  # i % (300 / 100) == 0 for i in 0..30
    assert test_acc[0] < 0.8 <= test_acc[-1]


def test_a_readers_gradient_2d_script_prints_the_books_slope_field() -> None:
    out = subprocess.run([sys.executable, str(SCRIPTS / "gradient_2d.py")],
                         capture_output=True, text=True, timeout=120, check=True)
    grad = np.loadtxt(StringIO(out.stdout))
    X, Y = np.meshgrid(np.arange(-2, 2.5, 0.25), np.arange(-2, 2.5, 0.25))
    points = np.array([X.flatten(), Y.flatten()]).T
    assert grad.shape == points.shape == (324, 2)
    np.testing.assert_allclose(grad, book.numerical_gradient_2d(book.function_2, points.copy()),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, 2 * points, atol=1e-9)
