"""xpnet.gradient against the book's published values and analytic gradients."""

from __future__ import annotations

import book
import numpy as np
import pytest

from xpnet.gradient import (
    _numerical_gradient_1d,
    gradient_descent,
    numerical_diff,
    numerical_gradient,
    numerical_gradient_2d,
)
from xpnet.inputs import InputError


def function_1(x):
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    return np.sum(x**2)


def test_numerical_diff_book_values() -> None:
    assert numerical_diff(function_1, 5) == pytest.approx(0.1999999999990898, abs=1e-15)
    assert numerical_diff(function_1, 10) == pytest.approx(0.2999999999986347, abs=1e-15)


@pytest.mark.parametrize(
    ("point", "expected"),
    [([3.0, 4.0], [6.0, 8.0]), ([0.0, 2.0], [0.0, 4.0]), ([3.0, 0.0], [6.0, 0.0])],
)
def test_numerical_gradient_book_values(point, expected) -> None:
    np.testing.assert_allclose(numerical_gradient(function_2, np.array(point)), expected, atol=1e-9)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_numerical_gradient_any_shape_restores_x(rng, shape) -> None:
    x = rng.normal(size=shape)
    before = x.copy()
    w = rng.normal(size=shape)
    grad = numerical_gradient(lambda v: np.sum(w * v**3), x)
    np.testing.assert_allclose(grad, 3 * w * x**2, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_on_a_non_contiguous_view(rng) -> None:
    base = rng.normal(size=(4, 6))
    view = base.T[::2]
    grad = numerical_gradient(lambda v: np.sum(np.sin(v)), view)
    np.testing.assert_allclose(grad, np.cos(view), atol=1e-8)


def test_numerical_gradient_reads_x_through_a_closure_like_the_book(rng) -> None:
    W = rng.normal(size=(2, 3))

    def loss(_):  # ignores its argument, as the book's `lambda W: net.loss(x, t)`
        return np.sum(W**2)

    np.testing.assert_allclose(numerical_gradient(loss, W), 2 * W, atol=1e-8)


def test_numerical_gradient_rejects_integer_arrays() -> None:
    with pytest.raises(InputError, match="float array"):
        numerical_gradient(function_2, np.array([3, 4]))


def test_gradient_descent_book_example() -> None:
    x = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=100)
    assert np.abs(x).max() < 1e-9
    np.testing.assert_allclose(x, [-6.11110793e-10, 8.14814391e-10], rtol=1e-6)


def test_gradient_descent_learning_rate_extremes() -> None:
    big = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=10.0, step_num=100)
    small = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=1e-10, step_num=100)
    assert np.abs(big).max() > 1e10  # the book's lesson: too large diverges
    np.testing.assert_allclose(small, [-3.0, 4.0], atol=1e-6)  # too small barely moves


def test_numerical_gradient_refuses_float16() -> None:
    # In float16 x + 1e-4 == x for |x| > 0.06: the book's loop would return zeros.
    x = np.array([3.0, 4.0], dtype=np.float16)
    with pytest.raises(InputError, match="float16.*astype"):
        numerical_gradient(lambda v: np.sum(v.astype(np.float64) ** 2), x)


def test_numerical_gradient_float32_divides_by_the_step_it_stored(rng) -> None:
    # x**2 summed: the exact gradient is 2x. Rounding x + 1e-4 in float32 misplaces the
    # step by up to 0.1% near |x| = 8; dividing by the stored step removes that error.
    x = rng.uniform(4, 8, size=50).astype(np.float32)
    grad = numerical_gradient(lambda v: np.sum(v.astype(np.float64) ** 2), x)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, 2 * x.astype(np.float64), rtol=1e-6)


def test_numerical_gradient_says_to_use_the_2d_form_for_row_functions(rng) -> None:
    points = rng.normal(size=(5, 2))
    with pytest.raises(InputError, match="numerical_gradient_2d"):
        numerical_gradient(book.function_2, points)


def test_numerical_gradient_2d_is_the_books(rng) -> None:
    points = rng.normal(size=(7, 2))
    expected = book.numerical_gradient_2d(book.function_2, points.copy())
    got = numerical_gradient_2d(book.function_2, points)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got, 2 * points, atol=1e-8)
    one = rng.normal(size=3)
    np.testing.assert_array_equal(numerical_gradient_2d(book.function_2, one),
                                  _numerical_gradient_1d(book.function_2, one.copy()))


def test_a_read_only_x_is_one_input_error() -> None:
    x = np.array([3.0, 4.0])
    x.setflags(write=False)
    for call in (lambda: numerical_gradient(lambda v: np.sum(v**2), x),
                 lambda: gradient_descent(lambda v: np.sum(v**2), x)):
        with pytest.raises(InputError, match=r"x is read-only; pass a writable copy, x\.copy\(\)"):
            call()
