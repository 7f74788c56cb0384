"""xpnet.functions against the book's published values and a float64 NumPy reference."""

from __future__ import annotations

import warnings

import book
import numpy as np
import pytest

from xpnet.functions import (
    cross_entropy_error,
    identity_function,
    mean_squared_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
    sum_square_error,
    sum_squared_error,
)
from xpnet.inputs import InputError

# The book's example (ch. 4.2): the answer is class 2.
T = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
Y_GOOD = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
Y_BAD = np.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])


def ref_softmax(a: np.ndarray) -> np.ndarray:
    return book.softmax(np.asarray(a, dtype=np.float64))


def ref_cee(y: np.ndarray, labels: np.ndarray) -> float:
    return float(book.cross_entropy_error(np.asarray(y, dtype=np.float64), np.asarray(labels)))


def test_book_values_sum_squared_error() -> None:
    assert sum_squared_error(Y_GOOD, T) == pytest.approx(0.0975, abs=1e-15)
    assert sum_squared_error(Y_BAD, T) == pytest.approx(0.5975, abs=1e-15)
    assert sum_square_error is sum_squared_error
    assert mean_squared_error is sum_squared_error


def test_book_values_cross_entropy_error() -> None:
    assert cross_entropy_error(Y_GOOD, T) == pytest.approx(0.510825457099338, abs=1e-15)
    assert cross_entropy_error(Y_BAD, T) == pytest.approx(2.302584092994546, abs=1e-15)
    # a label instead of one-hot gives the same number
    assert cross_entropy_error(Y_GOOD, np.array([2])) == pytest.approx(0.510825457099338)


@pytest.mark.parametrize("batch", [1, 7, 100])
def test_cross_entropy_matches_reference_labels_and_one_hot(rng, batch: int) -> None:
    y = ref_softmax(rng.normal(scale=3, size=(batch, 10)))
    labels = rng.integers(0, 10, size=batch)
    one_hot = np.eye(10)[labels]
    expected = ref_cee(y, labels)
    assert cross_entropy_error(y, labels) == pytest.approx(expected, rel=1e-13)
    assert cross_entropy_error(y, one_hot) == pytest.approx(expected, rel=1e-13)


def test_cross_entropy_rejects_label_count_mismatch(rng) -> None:
    y = ref_softmax(rng.normal(size=(4, 10)))
    with pytest.raises(InputError, match=r"shape \(3,\) but there are 4 samples"):
        cross_entropy_error(y, np.array([1, 2, 3]))


def test_cross_entropy_of_zero_probability_is_finite() -> None:
    # log(0 + 1e-7): the book's delta keeps the loss finite
    assert cross_entropy_error(np.array([1.0, 0.0]), np.array([1])) == pytest.approx(
        -np.log(1e-7)
    )


@pytest.mark.parametrize("shape", [(10,), (5, 10), (3, 4, 6)])
def test_softmax_matches_reference(rng, shape) -> None:
    a = rng.normal(scale=5, size=shape)
    np.testing.assert_allclose(softmax(a), ref_softmax(a), rtol=1e-14, atol=0)
    np.testing.assert_allclose(softmax(a).sum(axis=-1), 1.0, rtol=1e-14)


def test_softmax_does_not_overflow_and_keeps_float32() -> None:
    a = np.array([[1010.0, 1000.0, 990.0], [-1000.0, -1000.0, -1000.0]], dtype=np.float32)
    y = softmax(a)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref_softmax(a.astype(np.float64)), rtol=1e-6)


def test_softmax_loss_is_softmax_then_cee(rng) -> None:
    a = rng.normal(size=(6, 10))
    labels = rng.integers(0, 10, size=6)
    assert softmax_loss(a, labels) == pytest.approx(ref_cee(ref_softmax(a), labels), rel=1e-13)


def test_elementwise_functions_match_reference(rng) -> None:
    x = rng.normal(scale=4, size=(20, 7))
    x[0, :3] = 0.0
    s = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(sigmoid(x), s, rtol=1e-15)
    np.testing.assert_allclose(sigmoid_grad(x), (1 - s) * s, rtol=1e-14)
    np.testing.assert_array_equal(relu(x), np.where(x > 0, x, 0.0))
    np.testing.assert_array_equal(relu_grad(x), (x >= 0).astype(float))
    np.testing.assert_array_equal(step_function(x), (x > 0).astype(int))
    assert step_function(x).dtype.kind == "i"
    assert identity_function(x) is x


def test_book_scalar_examples() -> None:
    np.testing.assert_array_equal(step_function(np.array([-1.0, 1.0, 2.0])), [0, 1, 1])
    np.testing.assert_allclose(
        sigmoid(np.array([-1.0, 1.0, 2.0])), [0.26894142, 0.73105858, 0.88079708], atol=1e-8
    )
    np.testing.assert_allclose(
        softmax(np.array([0.3, 2.9, 4.0])), [0.01821127, 0.24519181, 0.73659691], atol=1e-8
    )


def test_sigmoid_saturates_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])


def test_float32_in_float32_out(rng) -> None:
    x = rng.normal(size=(4, 10)).astype(np.float32)
    for f in (sigmoid, sigmoid_grad, relu, relu_grad, softmax):
        assert f(x).dtype == np.float32, f.__name__


def test_star_import_gives_the_books_names() -> None:
    namespace: dict = {}
    exec("from xpnet.functions import *", namespace)
    for name in ("np", "sigmoid", "softmax", "cross_entropy_error", "sum_squared_error"):
        assert name in namespace


@pytest.mark.parametrize(("t", "match"), [
    (np.array([2, -1]), "label -1, outside 0..9"),
    (np.array([2, 10]), "label 10, outside 0..9"),
    (np.array([2.0, 2.99]), "2.99, not a class index"),
    (np.array([2.0, np.nan]), "nan, not a class index"),
    (np.eye(10)[[2, 3]] * 0.9, "row 0 is not one-hot"),
    (np.eye(11)[[2, 3]], r"shape \(2, 11\)"),
    (np.array(["2", "3"]), "dtype <U1"),
])
def test_cross_entropy_refuses_what_is_not_a_label(rng, t, match) -> None:
    y = ref_softmax(rng.normal(size=(2, 10)))
    with pytest.raises(InputError, match=match):
        cross_entropy_error(y, t)


def test_cross_entropy_accepts_whole_float_labels_and_one_dim_y(rng) -> None:
    y = ref_softmax(rng.normal(size=(3, 10)))
    t = np.array([1, 7, 0])
    assert cross_entropy_error(y, t.astype(np.float32)) == cross_entropy_error(y, t)
    assert cross_entropy_error(y[1], 7) == cross_entropy_error(y[1:2], t[1:2])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int64, np.bool_])
def test_integer_inputs_are_computed_in_float64(dtype) -> None:
    # uint8 200 negated wraps to 56, int8 -128 negated stays -128: the book's formulas
    # would silently return wrong values.
    x = np.array([0, 1, 100, 127], dtype=dtype)
    ref = x.astype(np.float64)
    np.testing.assert_array_equal(sigmoid(x), 1 / (1 + np.exp(-ref)))
    np.testing.assert_allclose(softmax(x), ref_softmax(ref))
    assert sum_squared_error(x, np.zeros_like(x)) == 0.5 * np.sum(ref**2)
    assert sigmoid(np.array([200], dtype=np.uint8))[0] == 1.0
    assert sigmoid(np.array([-128], dtype=np.int8))[0] < 1e-55
