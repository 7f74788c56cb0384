"""kernels.two_layer_numerical_gradient against the book's element-by-element loop."""

from __future__ import annotations

import gzip

import numba
import numpy as np
import pytest
from xpnet.kernels import two_layer_numerical_gradient
from xpnet.kernels.numerical_gradient import SERIES_MAX

NAMES = ("W1", "b1", "W2", "b2")


# ----------------------------------------------------------- the book, in NumPy


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def book_loss(params, x, t):
    y = softmax(sigmoid(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"])
    return -np.sum(np.log(y[np.arange(len(t)), t] + 1e-7)) / len(t)


def book_numerical_gradient(f, p, h):
    grad = np.zeros_like(p)
    it = np.nditer(p, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        idx = it.multi_index
        tmp = p[idx]
        p[idx] = tmp + h
        f1 = f()
        p[idx] = tmp - h
        f2 = f()
        grad[idx] = (f1 - f2) / (2 * h)
        p[idx] = tmp
        it.iternext()
    return grad


def book_gradient(net, x, t, h=1e-4):
    """TwoLayerNet.numerical_gradient of the book, in float64."""
    params = {k: net[k].astype(np.float64) for k in NAMES}
    x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        return [
            book_numerical_gradient(lambda: book_loss(params, x, t), params[k], h) for k in NAMES
        ]


def backprop_gradient(net, x, t):
    """The analytic gradient (without the 1e-7), for a looser cross-check."""
    W1, b1, W2, b2 = (net[k].astype(np.float64) for k in NAMES)
    x = x.astype(np.float64)
    z1 = sigmoid(x @ W1 + b1)
    dy = softmax(z1 @ W2 + b2)
    dy[np.arange(len(t)), t] -= 1
    dy /= len(t)
    da1 = dy @ W2.T * z1 * (1 - z1)
    return [x.T @ da1, da1.sum(axis=0), z1.T @ dy, dy.sum(axis=0)]


def make(seed, d_in, hidden, out, batch, dtype=np.float64, zeros=0.6, w_scale=0.5, x_scale=1.0):
    """A random net and batch; a fraction ``zeros`` of the inputs are exactly 0."""
    rng = np.random.default_rng(seed)
    net = {
        "W1": w_scale * rng.standard_normal((d_in, hidden)),
        "b1": 0.1 * rng.standard_normal(hidden),
        "W2": w_scale * rng.standard_normal((hidden, out)),
        "b2": 0.1 * rng.standard_normal(out),
    }
    net = {k: v.astype(dtype) for k, v in net.items()}
    x = x_scale * rng.random((batch, d_in))
    x[rng.random((batch, d_in)) < zeros] = 0.0
    return net, x.astype(dtype), rng.integers(0, out, batch)


def fused(net, x, t, h=1e-4):
    return two_layer_numerical_gradient(net["W1"], net["b1"], net["W2"], net["b2"], x, t, h)


def assert_close(got, expected, atol):
    for name, g, e in zip(NAMES, got, expected, strict=True):
        assert g.dtype == np.float64 and g.shape == e.shape, name
        np.testing.assert_allclose(g, e, rtol=0, atol=atol, err_msg=name)


# ------------------------------------------------------------------------ tests


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("dims", "batch"), [((20, 8, 5), 1), ((20, 8, 5), 100), ((30, 10, 10), 100)]
)
def test_matches_book_loop(dims, batch, dtype):
    net, x, t = make(sum(dims) + batch, *dims, batch, dtype)
    assert_close(fused(net, x, t), book_gradient(net, x, t), atol=1e-9)


def test_matches_backprop():
    net, x, t = make(1, 30, 10, 10, 50)
    assert_close(fused(net, x, t), backprop_gradient(net, x, t), atol=1e-6)


def test_exact_fallback_for_large_inputs_and_weights():
    # |dz| max|W2[j]| reaches ~1e-2 here, well past the series' limit
    net, x, t = make(2, 20, 8, 5, 40, w_scale=0.05, x_scale=40.0)
    net["W2"] *= 400.0
    a1 = x @ net["W1"] + net["b1"]
    dz = sigmoid(a1[:, None, :] + 1e-4 * x[:, :, None]) - sigmoid(a1[:, None, :])
    y = np.abs(dz) * np.abs(net["W2"]).max(axis=1)
    assert (y > SERIES_MAX).any() and (y[x != 0] < SERIES_MAX).any()
    got = fused(net, x, t)
    assert max(np.abs(g).max() for g in got) > 1e-3  # not all saturated
    assert_close(got, book_gradient(net, x, t), atol=1e-9)


@pytest.mark.parametrize("h", [0.5, 1.5])
def test_big_steps_take_the_exact_paths(h):
    net, x, t = make(3, 12, 6, 4, 20)
    assert_close(fused(net, x, t, h), book_gradient(net, x, t, h), atol=1e-9)


def test_real_fashion_images():
    from support import require_fashion_mnist

    path = require_fashion_mnist() / "train-images-idx3-ubyte.gz"
    with gzip.open(path) as f:
        images = np.frombuffer(f.read(16 + 10 * 784), np.uint8, offset=16)
    x = images.reshape(10, 784).astype(np.float32) / 255
    net, _, t = make(4, 784, 4, 10, 10, w_scale=0.01)
    assert_close(fused(net, x, t), book_gradient(net, x, t), atol=1e-9)


def test_one_hot_labels():
    net, x, t = make(5, 10, 4, 3, 8)
    onehot = np.eye(3)[t]
    for a, b in zip(fused(net, x, onehot), fused(net, x, t), strict=True):
        np.testing.assert_array_equal(a, b)


def test_deterministic_across_thread_counts():
    net, x, t = make(6, 40, 10, 10, 30)
    first = fused(net, x, t)
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = fused(net, x, t)
    finally:
        numba.set_num_threads(saved)
    for a, b in zip(first, single, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["W1", "b1", "W2", "b2", "x"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_rejects_non_finite(name, bad):
    net, x, t = make(7, 5, 3, 2, 4)
    args = {**net, "x": x}
    args[name] = args[name].copy()
    args[name].flat[1] = bad
    with pytest.raises(ValueError, match=f"^{name}: expected finite values, got 1 NaN or inf$"):
        two_layer_numerical_gradient(*(args[k] for k in (*NAMES, "x")), t)


@pytest.mark.parametrize(
    ("name", "value", "error", "words"),
    [
        (
            "W1",
            np.zeros((6, 3)),
            ValueError,
            "W1: expected a float32/float64 array of shape (5, H)",
        ),
        ("b1", np.zeros(4), ValueError, "b1: expected a float32/float64 array of shape (3,)"),
        ("W2", np.zeros((3, 2), np.int64), TypeError, "W2: expected a float32/float64 array"),
        ("b2", np.zeros((1, 2)), ValueError, "got shape (1, 2) dtype float64"),
        ("x", np.zeros(5), ValueError, "x: expected a float32/float64 array of shape (B, D)"),
        ("t", np.zeros(4), TypeError, "labels: expected an integer array of shape (4,)"),
        ("t", np.zeros(3, int), ValueError, "labels: expected an integer array of shape (4,)"),
        ("t", np.array([0, 1, 2, 0]), ValueError, "labels: expected integers in [0, 1]"),
        ("h", 0.0, ValueError, "h: expected a finite step > 0, got 0.0"),
        ("h", "1e-4", TypeError, "h: expected a float step > 0, got str"),
    ],
)
def test_rejects_bad_arguments(name, value, error, words):
    net, x, t = make(8, 5, 3, 2, 4)
    args = {**net, "x": x, "t": t, "h": 1e-4}
    args[name] = value
    with pytest.raises(error) as info:
        two_layer_numerical_gradient(*(args[k] for k in (*NAMES, "x", "t", "h")))
    assert words in str(info.value)
