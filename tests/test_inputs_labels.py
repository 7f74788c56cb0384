"""The one-hot rule of xpnet.inputs.labels: each row exactly one 1 and the rest 0.

A row with one 1 and another non-zero value ([1, 0.5, 0, 0]) is a soft or damaged label,
not a class: it must be refused at every entry point, not read as its argmax.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.functions import cross_entropy_error
from xpnet.inputs import InputError, labels

BAD_ROWS = [
    [1, 0.5, 0, 0],  # one 1 and another non-zero value
    [0, 1, 0, 1e-9],
    [1, 0, -0.25, 0],
    [1, 1, 0, 0],
    [0.5, 0.5, 0, 0],
    [0, 0, 0, 0],
    [1, np.nan, 0, 0],
    [0, 2, 0, 0],
]


def one_hot_batch(rng: np.random.Generator, batch: int, classes: int) -> tuple:
    t = rng.integers(0, classes, batch)
    return np.eye(classes)[t], t


@pytest.mark.parametrize("row", BAD_ROWS, ids=[str(r) for r in BAD_ROWS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_row_that_is_not_one_hot_is_refused_naming_it(row, dtype) -> None:
    rng = np.random.default_rng(18)
    t, _ = one_hot_batch(rng, 6, 4)
    where = int(rng.integers(0, 6))
    t[where] = row
    with pytest.raises(InputError) as info:
        labels(t.astype(dtype), 6, 4)
    assert str(info.value) == (f"t row {where} is not one-hot (one 1, the rest 0): pass "
                               "class indices, or one-hot rows")


def test_one_hot_rows_become_their_classes() -> None:
    rng = np.random.default_rng(19)
    for dtype in (np.float64, np.float32, np.int64, np.uint8, bool):
        t, classes = one_hot_batch(rng, 50, 10)
        got = labels(t.astype(dtype), 50, 10)
        assert got.dtype == np.intp
        np.testing.assert_array_equal(got, classes)


def test_soft_label_is_refused_by_the_book_functions_and_the_net() -> None:
    rng = np.random.default_rng(20)
    y = rng.dirichlet(np.ones(4), size=3)
    t, _ = one_hot_batch(rng, 3, 4)
    t[1] = [1, 0.5, 0, 0]
    with pytest.raises(InputError, match="t row 1 is not one-hot"):
        cross_entropy_error(y, t)
    with pytest.raises(InputError, match="is not one-hot"):
        cross_entropy_error(y[0], np.array([0, 0.5, 1, 0]))  # the book's 1-D form
    net = TwoLayerNet(5, 3, 4, seed=20)
    x = rng.random((3, 5))
    for method in (net.loss, net.accuracy, net.gradient):
        with pytest.raises(InputError, match="t row 1 is not one-hot"):
            method(x, t)
