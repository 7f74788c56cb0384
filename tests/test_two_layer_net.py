"""TwoLayerNet: the book's behaviour, gradients that agree, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import backend
from xpnet.functions import cross_entropy_error, sigmoid, softmax
from xpnet.two_layer_net import TwoLayerNet

KEYS = ("W1", "b1", "W2", "b2")


def small_batch(rng, batch=5, d=12, c=4):
    x = rng.random((batch, d))
    x[x < 0.4] = 0.0  # images are mostly exact zeros
    return x, rng.integers(0, c, size=batch)


def test_params_like_the_book() -> None:
    net = TwoLayerNet(784, 50, 10, seed=0)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {"W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert all(v.dtype == np.float64 for v in net.params.values())
    assert np.std(net.params["W1"]) == pytest.approx(0.01, rel=0.02)
    assert not net.params["b1"].any() and not net.params["b2"].any()


def test_seed_none_uses_numpys_global_generator_like_the_book() -> None:
    np.random.seed(3)
    a = TwoLayerNet(6, 4, 3).params["W1"]
    np.random.seed(3)
    b = TwoLayerNet(6, 4, 3).params["W1"]
    np.testing.assert_array_equal(a, b)
    np.random.seed(3)
    np.testing.assert_array_equal(a, 0.01 * np.random.randn(6, 4))


def test_seed_and_float32() -> None:
    a = TwoLayerNet(6, 4, 3, seed=7)
    b = TwoLayerNet(6, 4, 3, seed=7, dtype=np.float32)
    assert b.params["W1"].dtype == np.float32
    np.testing.assert_allclose(b.params["W1"], a.params["W1"], rtol=1e-7)


def test_predict_loss_accuracy_match_the_books_formulas(rng) -> None:
    net = TwoLayerNet(12, 6, 4, weight_init_std=1.0, seed=1)
    x, t = small_batch(rng)
    p = net.params
    y = softmax(sigmoid(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"])
    np.testing.assert_allclose(net.predict(x), y, rtol=1e-14)
    np.testing.assert_allclose(net.predict(x[0]), y[0], rtol=1e-14)
    assert net.loss(x, t) == pytest.approx(cross_entropy_error(y, t), rel=1e-12)
    assert net.loss(x, np.eye(4)[t]) == pytest.approx(cross_entropy_error(y, t), rel=1e-12)
    expected_acc = float(np.mean(y.argmax(axis=1) == t))
    assert net.accuracy(x, t) == expected_acc
    assert net.accuracy(x, np.eye(4)[t]) == expected_acc


@pytest.mark.parametrize("batch", [1, 8])
def test_numerical_gradient_agrees_with_backprop(rng, batch) -> None:
    net = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=2)
    x, t = small_batch(rng, batch)
    numerical = net.numerical_gradient(x, t, method="generic")
    backprop = net.gradient(x, t)
    for key in KEYS:
        assert numerical[key].shape == net.params[key].shape
        assert np.abs(numerical[key] - backprop[key]).max() < 1e-6, key


def test_gradient_takes_labels_or_one_hot_and_keeps_the_books_numbers(rng) -> None:
    net = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=3)
    x, t = small_batch(rng, 6)
    one_hot = np.eye(4)[t]
    by_label = net.gradient(x, t)
    by_one_hot = net.gradient(x, one_hot)
    # the book's gradient, written out: dy = (y - t) / batch
    p = net.params
    a1 = x @ p["W1"] + p["b1"]
    z1 = sigmoid(a1)
    dy = (softmax(z1 @ p["W2"] + p["b2"]) - one_hot) / x.shape[0]
    da1 = (1.0 - sigmoid(a1)) * sigmoid(a1) * (dy @ p["W2"].T)
    book = {"W1": x.T @ da1, "b1": da1.sum(0), "W2": z1.T @ dy, "b2": dy.sum(0)}
    for key in KEYS:
        np.testing.assert_allclose(by_label[key], book[key], rtol=1e-10, atol=1e-15)
        np.testing.assert_array_equal(by_label[key], by_one_hot[key])


def test_float32_net_computes_in_float32(rng) -> None:
    net = TwoLayerNet(12, 6, 4, seed=4, dtype="float32")
    x, t = small_batch(rng)
    assert net.predict(x).dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.gradient(x, t).values())
    loss64 = TwoLayerNet(12, 6, 4, seed=4).loss(x, t)
    assert net.loss(x, t) == pytest.approx(loss64, rel=1e-5)


def test_shape_mistakes_say_what_was_expected(rng) -> None:
    net = TwoLayerNet(12, 6, 4, seed=5)
    x, t = small_batch(rng)
    expected = r"x has shape \(5, 11\) but the net expects \(batch, 12\)"
    with pytest.raises(ValueError, match=expected):
        net.predict(x[:, :11])
    expected = r"t has shape \(4,\) but x has 5 samples.*\(5,\).*\(5, 4\)"
    with pytest.raises(ValueError, match=expected):
        net.gradient(x, t[:4])
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.3"):
        net.loss(x, np.array([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="method must be"):
        net.numerical_gradient(x, t, method="fast")
    with pytest.raises(ValueError, match="positive integer"):
        TwoLayerNet(0, 6, 4)
    with pytest.raises(ValueError, match="float32 or float64"):
        TwoLayerNet(12, 6, 4, dtype=np.int32)


@pytest.mark.cuda
def test_same_seed_same_start_and_same_numbers_on_cpu_and_gpu(rng) -> None:
    import cupy

    cpu = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=9)
    gpu = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=9, device="cuda")
    x, t = small_batch(rng, 8)
    for key in KEYS:
        assert isinstance(gpu.params[key], cupy.ndarray)
        np.testing.assert_array_equal(backend.asnumpy(gpu.params[key]), cpu.params[key])
    # host arrays are moved to the net's device, as the book's loop passes NumPy slices
    assert float(gpu.loss(x, t)) == pytest.approx(cpu.loss(x, t), rel=1e-12)
    assert gpu.accuracy(x, t) == cpu.accuracy(x, t)
    g_cpu, g_gpu = cpu.gradient(x, t), gpu.gradient(x, t)
    n_cpu, n_gpu = cpu.numerical_gradient(x, t), gpu.numerical_gradient(x, t)
    for key in KEYS:
        np.testing.assert_allclose(backend.asnumpy(g_gpu[key]), g_cpu[key], atol=1e-14)
        np.testing.assert_allclose(backend.asnumpy(n_gpu[key]), n_cpu[key], atol=1e-12)
