"""xpnet.common.layers: forward against direct formulas and loops, backward against central
differences (float64), the book's buffers and train_flg handling."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.common.layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from xpnet.gradient import numerical_gradient


def check_backward(layer, x, rng, *, params=(), tol=1e-7, **forward_kw) -> None:
    """backward(dout) equals the numerical gradient of sum(forward(x) * dout), for x and params."""
    dout = rng.standard_normal(layer.forward(x.copy(), **forward_kw).shape)

    def f(_):
        return np.sum(layer.forward(x, **forward_kw) * dout)

    expected_dx = numerical_gradient(f, x)
    expected = {name: numerical_gradient(f, getattr(layer, name)) for name in params}
    layer.forward(x, **forward_kw)
    dx = layer.backward(dout.copy())
    np.testing.assert_allclose(dx, expected_dx, rtol=0, atol=tol)
    for name in params:
        np.testing.assert_allclose(getattr(layer, "d" + name), expected[name], rtol=0, atol=tol)


def test_relu_masks_and_zeroes(rng) -> None:
    x = rng.standard_normal((4, 5))
    x[0, 0] = 0.0
    layer = Relu()
    out = layer.forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(layer.mask, x <= 0)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, (x > 0).astype(float))
    assert x[0, 0] == 0.0 and out is not x


def test_sigmoid_forward_and_backward(rng) -> None:
    x = rng.standard_normal((3, 4))
    layer = Sigmoid()
    np.testing.assert_allclose(layer.forward(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    check_backward(Sigmoid(), x, rng)


def test_affine_flattens_tensors_and_has_the_books_gradients(rng) -> None:
    W, b = rng.standard_normal((12, 5)), rng.standard_normal(5)
    x = rng.standard_normal((3, 2, 2, 3))
    layer = Affine(W, b)
    out = layer.forward(x)
    np.testing.assert_allclose(out, x.reshape(3, 12) @ W + b, rtol=1e-14)
    assert layer.original_x_shape == (3, 2, 2, 3) and layer.x.shape == (3, 12)
    check_backward(Affine(W, b), x, rng, params=("W", "b"))
    assert layer.backward(np.ones((3, 5))).shape == x.shape


@pytest.mark.parametrize("kind", ["labels", "one-hot", "column"])
def test_softmax_with_loss_value_and_gradient(rng, kind) -> None:
    x = rng.standard_normal((4, 6))
    labels = np.array([1, 0, 5, 3])
    t = {"labels": labels, "one-hot": np.eye(6)[labels], "column": labels.reshape(4, 1)}[kind]
    if kind == "column":
        x, labels, t = x[:1], labels[:1], t[:1]  # the book's ch07 gradient check: one sample
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, t)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    assert loss == pytest.approx(-np.mean(np.log(y[rows, labels] + 1e-7)), rel=1e-14)
    expected = y.copy()
    expected[rows, labels] -= 1
    np.testing.assert_allclose(layer.backward(), expected / len(labels), rtol=1e-14)
    grad = numerical_gradient(lambda _: SoftmaxWithLoss().forward(x, t), x)
    # the 1e-7 inside the log moves the true gradient by about 1e-7 / y: a loose bound
    np.testing.assert_allclose(layer.backward(), grad, atol=1e-6)


def test_dropout_draws_its_mask_from_the_global_generator(rng) -> None:
    x = rng.standard_normal((5, 8))
    layer = Dropout(0.3)
    np.random.seed(11)  # noqa: NPY002
    out = layer.forward(x)
    np.random.seed(11)  # noqa: NPY002
    keep = np.random.rand(5, 8) > 0.3  # noqa: NPY002
    np.testing.assert_array_equal(layer.mask, keep)
    np.testing.assert_array_equal(out, x * keep)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), keep.astype(float))
    np.testing.assert_array_equal(layer.forward(x, train_flg=False), x * 0.7)


def batchnorm_reference(x, gamma, beta, eps=1e-6):
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, mu, var


def test_batchnorm_training_statistics_and_inference(rng) -> None:
    x = rng.standard_normal((6, 4)) * 3 + 1
    gamma, beta = rng.random(4) + 0.5, rng.standard_normal(4)
    layer = BatchNormalization(gamma, beta, momentum=0.8)
    out = layer.forward(x, train_flg=True)
    expected, mu, var = batchnorm_reference(x, gamma, beta)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean, 0.2 * mu, rtol=1e-14)
    np.testing.assert_allclose(layer.running_var, 0.2 * var, rtol=1e-14)
    inferred = layer.forward(x, train_flg=False)
    np.testing.assert_allclose(
        inferred, gamma * (x - 0.2 * mu) / np.sqrt(0.2 * var + 1e-6) + beta, rtol=1e-12)


def test_batchnorm_backward_matches_central_differences(rng) -> None:
    gamma, beta = rng.random(5) + 0.5, rng.standard_normal(5)
    check_backward(BatchNormalization(gamma, beta), rng.standard_normal((7, 5)), rng,
                   params=("gamma", "beta"), train_flg=True)
    # a convolution's output is normalised per flattened feature
    g4, b4 = rng.random(12) + 0.5, rng.standard_normal(12)
    check_backward(BatchNormalization(g4, b4), rng.standard_normal((4, 3, 2, 2)), rng,
                   params=("gamma", "beta"), train_flg=True)


def conv_loop(x, W, b, stride, pad):
    n, c, h, w = x.shape
    fn, _, fh, fw = W.shape
    p = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    out = np.zeros((n, fn, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = p[:, :, i * stride:i * stride + fh, j * stride:j * stride + fw]
            out[:, :, i, j] = np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (2, 1), (1, 2)])
def test_convolution_is_the_direct_loop_and_backprops(rng, stride, pad) -> None:
    x = rng.standard_normal((2, 3, 6, 5))
    W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    layer = Convolution(W, b, stride, pad)
    np.testing.assert_allclose(layer.forward(x), conv_loop(x, W, b, stride, pad), atol=1e-13)
    check_backward(Convolution(W, b, stride, pad), x, rng, params=("W", "b"))


def test_pooling_takes_window_maxima_and_routes_gradients_to_them(rng) -> None:
    x = rng.standard_normal((2, 3, 6, 4))
    layer = Pooling(2, 2, stride=2)
    out = layer.forward(x)
    expected = x.reshape(2, 3, 3, 2, 2, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(out, expected)
    check_backward(Pooling(2, 2, stride=2), x, rng)
    overlapping = Pooling(3, 3, stride=1)
    np.testing.assert_array_equal(
        overlapping.forward(x)[:, :, 1, 1], x[:, :, 1:4, 1:4].max(axis=(2, 3)))
    check_backward(Pooling(3, 3, stride=1), x, rng)
