"""kernels.cross_entropy against the book's softmax + cross_entropy_error in plain NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import xpnet.kernels.cross_entropy as ce_module
from xpnet.kernels import (
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_with_grad,
)


def book_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def book_loss(logits: np.ndarray, t: np.ndarray) -> float:
    y = book_softmax(logits.astype(np.float64))
    batch = y.shape[0]
    return float(-np.sum(np.log(y[np.arange(batch), t] + 1e-7)) / batch)


def book_backward(logits: np.ndarray, t: np.ndarray) -> np.ndarray:
    y = book_softmax(logits.astype(np.float64))
    y[np.arange(len(t)), t] -= 1.0
    return y / len(t)


def make(seed: int, batch: int, classes: int, dtype, scale: float = 3.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((batch, classes))).astype(dtype)
    return logits, rng.integers(0, classes, batch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 100])
@pytest.mark.parametrize("scale", [3.0, 1000.0])
def test_matches_book(dtype, batch, scale):
    logits, t = make(batch + int(scale), batch, 10, dtype, scale)
    loss, dlogits = softmax_cross_entropy_with_grad(logits, t)
    assert isinstance(loss, float)
    assert dlogits.dtype == dtype and dlogits.shape == logits.shape
    # float32 logits are read exactly and the math is float64: only the output rounds
    assert loss == pytest.approx(book_loss(logits, t), rel=1e-13, abs=1e-13)
    atol = 1e-15 if dtype == np.float64 else 1e-7 / batch
    np.testing.assert_allclose(dlogits, book_backward(logits, t), rtol=0, atol=atol)
    assert softmax_cross_entropy(logits, t) == loss
    np.testing.assert_array_equal(softmax_cross_entropy_backward(logits, t), dlogits)


def test_huge_logits_overflow_naive_softmax_but_not_this():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    t = np.array([0, 1])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert not np.isfinite(naive).all()
    loss, dlogits = softmax_cross_entropy_with_grad(logits, t)
    # sample 0 is right (log(1 + 1e-7)), sample 1 is as wrong as the 1e-7 allows
    assert loss == pytest.approx((-np.log(1 + 1e-7) - np.log(1e-7)) / 2, rel=1e-14)
    np.testing.assert_allclose(dlogits, [[0, 0, 0], [0, -0.5, 0.5]], atol=1e-300)


@pytest.mark.parametrize(
    "label_dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64]
)
def test_any_integer_label_dtype(label_dtype):
    logits, t = make(7, 50, 10, np.float64)
    expected = book_loss(logits, t)
    assert softmax_cross_entropy(logits, t.astype(label_dtype)) == pytest.approx(
        expected, rel=1e-14
    )


def test_one_hot_labels_are_reduced_by_argmax():
    logits, t = make(8, 20, 10, np.float32)
    onehot = np.eye(10, dtype=np.float32)[t]
    assert softmax_cross_entropy(logits, onehot) == softmax_cross_entropy(logits, t)


def test_non_contiguous_logits():
    logits, t = make(9, 30, 20, np.float64)
    view = logits[:, ::2]
    assert softmax_cross_entropy(view, t % 10) == pytest.approx(book_loss(view, t % 10), rel=1e-14)


def test_deterministic():
    logits, t = make(10, 1000, 10, np.float32)
    first = softmax_cross_entropy_with_grad(logits, t)
    for _ in range(3):
        again = softmax_cross_entropy_with_grad(logits, t)
        assert again[0] == first[0]
        np.testing.assert_array_equal(again[1], first[1])


def test_big_batches_run_in_parallel_with_the_same_bits(monkeypatch):
    logits, t = make(11, 4000, 10, np.float32)
    assert logits.size >= ce_module.PARALLEL_MIN_SIZE
    loss, dlogits = softmax_cross_entropy_with_grad(logits, t)
    assert loss == pytest.approx(book_loss(logits, t), rel=1e-13)
    monkeypatch.setattr(ce_module, "PARALLEL_MIN_SIZE", logits.size + 1)
    serial_loss, serial_dlogits = softmax_cross_entropy_with_grad(logits, t)
    assert serial_loss == loss
    np.testing.assert_array_equal(serial_dlogits, dlogits)


@pytest.mark.parametrize(
    ("logits", "labels", "error", "words"),
    [
        (np.zeros(3), np.zeros(3, int), ValueError, "logits: expected"),
        (np.zeros((2, 3), int), np.zeros(2, int), TypeError, "dtype int64"),
        (np.zeros((2, 3), np.float16), np.zeros(2, int), TypeError, "float32/float64"),
        ([[0.0, 1.0]], np.zeros(1, int), TypeError, "got a list"),
        (np.zeros((0, 3)), np.zeros(0, int), ValueError, "non-empty"),
        (np.zeros((2, 3)), np.zeros(2), TypeError, "labels: expected an integer"),
        (np.zeros((2, 3)), np.zeros(3, int), ValueError, "shape (3,)"),
        (np.zeros((2, 3)), np.array([0, 3]), ValueError, "in [0, 2], got min 0 max 3"),
        (np.zeros((2, 3)), np.array([-1, 0]), ValueError, "got min -1"),
    ],
)
def test_validation(logits, labels, error, words):
    for fn in (softmax_cross_entropy, softmax_cross_entropy_backward):
        with pytest.raises(error) as info:
            fn(logits, labels)
        assert words in str(info.value)
        assert "\n" not in str(info.value)
