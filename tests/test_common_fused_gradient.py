# ruff: noqa: NPY002  (the nets draw their weights from the book's global generator)
"""The book's fully connected nets' ``numerical_gradient`` through the fused kernel: the
same numbers as the book's loop (``method="generic"``) and as our float64 reference loop, to
1e-9; the loop kept where the kernel cannot model the net (batch norm, dropout)."""

from __future__ import annotations

import numpy as np
import pytest
from test_kernels_mlp_numerical_gradient import reference_gradient

from xpnet.common.multi_layer_net import MultiLayerNet
from xpnet.common.multi_layer_net_extend import MultiLayerNetExtend
from xpnet.common.two_layer_net import TwoLayerNet
from xpnet.errors import InputError


def sparse_batch(rng, batch, features, classes):
    x = rng.random((batch, features))
    x[x < 0.3] = 0.0  # images are mostly zeros: the kernel skips those inputs
    return x, rng.integers(0, classes, batch)


def reference(net, layers, x, labels, activation, decay):
    """Our float64 loop (tests/test_kernels_mlp_numerical_gradient.py) on copies of params."""
    weights = [net.params[f"W{i}"].copy() for i in range(1, layers + 1)]
    biases = [net.params[f"b{i}"].copy() for i in range(1, layers + 1)]
    gw, gb = reference_gradient(weights, biases, x.reshape(len(x), -1), labels, activation,
                                decay)
    return {k: v for i in range(layers) for k, v in ((f"W{i + 1}", gw[i]), (f"b{i + 1}", gb[i]))}


def largest_gap(got, expected):
    assert list(got) == list(expected)
    for key in got:
        assert got[key].shape == expected[key].shape and got[key].dtype == np.float64, key
    return max(float(np.abs(got[key] - expected[key]).max()) for key in got)


@pytest.mark.parametrize(("activation", "init", "decay"),
                         [("relu", "he", 0.0), ("sigmoid", "xavier", 0.1), ("relu", 0.5, 0.05)])
@pytest.mark.parametrize("hidden", [[], [7], [7, 6], [7, 6, 5]])  # []: softmax regression
@pytest.mark.parametrize("one_hot", [False, True])
def test_multi_layer_net_fused_is_the_books_loop(rng, activation, init, decay, hidden,
                                                 one_hot) -> None:
    np.random.seed(len(hidden))
    net = MultiLayerNet(12, hidden, 4, activation, init, decay)
    x, labels = sparse_batch(rng, 5, 12, 4)
    t = np.eye(4)[labels] if one_hot else labels
    fused = net.numerical_gradient(x, t)
    assert largest_gap(fused, net.numerical_gradient(x, t, method="generic")) < 1e-9
    assert largest_gap(fused, reference(net, len(hidden) + 1, x, labels, activation,
                                        decay)) < 1e-9
    assert max(float(np.abs(g).max()) for g in fused.values()) > 1e-2  # a real gradient


def test_multi_layer_net_flattens_image_batches_as_its_affine_layer_does(rng) -> None:
    np.random.seed(3)
    net = MultiLayerNet(2 * 3 * 4, [6], 3, weight_decay_lambda=0.2)
    x = rng.random((4, 2, 3, 4))
    labels = np.array([2, 0, 1, 2])
    fused = net.numerical_gradient(x, labels)
    assert largest_gap(fused, reference(net, 2, x, labels, "relu", 0.2)) < 1e-9


def test_multi_layer_net_extend_without_batchnorm_or_dropout_is_fused(rng) -> None:
    np.random.seed(4)
    net = MultiLayerNetExtend(10, [6, 5], 3, "sigmoid", "xavier", weight_decay_lambda=0.1)
    x, labels = sparse_batch(rng, 4, 10, 3)
    fused = net.numerical_gradient(x, np.eye(3)[labels])
    assert largest_gap(fused, net.numerical_gradient(x, labels, method="generic")) < 1e-9
    assert largest_gap(fused, reference(net, 3, x, labels, "sigmoid", 0.1)) < 1e-9


@pytest.mark.parametrize("extras", [{"use_batchnorm": True}, {"use_dropout": True},
                                    {"use_batchnorm": True, "use_dropout": True}])
def test_multi_layer_net_extend_with_batchnorm_or_dropout_keeps_the_loop(rng, extras) -> None:
    np.random.seed(5)
    net = MultiLayerNetExtend(8, [5], 3, weight_decay_lambda=0.1, **extras)
    x, labels = sparse_batch(rng, 4, 8, 3)
    np.random.seed(6)  # dropout draws a mask at every forward pass: the same draws twice
    default = net.numerical_gradient(x, labels)
    np.random.seed(6)
    loop = net.numerical_gradient(x, labels, method="generic")
    assert list(default) == list(loop)
    assert ("gamma1" in default) == ("use_batchnorm" in extras)
    for key in loop:  # bit for bit: the same loop ran, not the kernel
        np.testing.assert_array_equal(default[key], loop[key])


def test_ch05_two_layer_net_fused_is_the_books_loop(rng) -> None:
    # The book's gradient_check.py shape: 784-50-10 and 3 samples.
    np.random.seed(0)
    net = TwoLayerNet(784, 50, 10)
    x, labels = sparse_batch(rng, 3, 784, 10)
    x = x.astype(np.float32)  # load_mnist(normalize=True) gives float32 images
    fused = net.numerical_gradient(x, np.eye(10)[labels])
    assert list(fused) == ["W1", "b1", "W2", "b2"]
    assert largest_gap(fused, net.numerical_gradient(x, labels, method="generic")) < 1e-9
    assert largest_gap(fused, reference(net, 2, x.astype(np.float64), labels, "relu",
                                        0.0)) < 1e-9
    backprop = net.gradient(x, labels)  # the book's check: apart by the log's 1e-7 at most
    assert max(float(np.abs(fused[k] - backprop[k]).max()) for k in fused) < 1e-6


@pytest.mark.parametrize("make", [lambda: MultiLayerNet(6, [4], 3),
                                  lambda: TwoLayerNet(6, 4, 3),
                                  lambda: MultiLayerNetExtend(6, [4], 3)])
def test_labels_follow_the_one_label_rule(rng, make) -> None:
    np.random.seed(7)
    net = make()
    x = rng.random((2, 6))
    with pytest.raises(InputError, match="row 1 is not one-hot") as info:
        net.numerical_gradient(x, np.array([[0, 1, 0], [0.2, 0.8, 0]]))
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="outside 0..2"):
        net.numerical_gradient(x, np.array([0, 3]))


@pytest.mark.parametrize("make", [lambda: MultiLayerNet(6, [4, 4], 3, weight_decay_lambda=0.1),
                                  lambda: TwoLayerNet(6, 4, 3),
                                  lambda: MultiLayerNetExtend(6, [4], 3, "sigmoid")])
def test_plain_nets_never_run_the_loop_by_default(rng, monkeypatch, make) -> None:
    from xpnet.common import _gradient_check

    def refuse(*args, **kwargs):
        raise AssertionError("the book's loop ran where the kernel models the net")

    np.random.seed(8)
    net = make()
    x, labels = sparse_batch(rng, 3, 6, 3)
    expected = net.numerical_gradient(x, labels, method="generic")
    monkeypatch.setattr(_gradient_check, "loop", refuse)
    assert largest_gap(net.numerical_gradient(x, labels), expected) < 1e-9


def test_an_unknown_method_is_refused_in_one_line(rng) -> None:
    np.random.seed(9)
    net = MultiLayerNet(6, [4], 3)
    with pytest.raises(InputError, match="method must be one of fused, generic, got 'loop'"):
        net.numerical_gradient(rng.random((2, 6)), np.array([0, 1]), method="loop")


def test_strided_batches_and_labels_give_the_same_numbers(rng) -> None:
    np.random.seed(10)
    net = MultiLayerNet(8, [5], 3, "sigmoid", "xavier", 0.1)
    x, labels = sparse_batch(rng, 8, 8, 3)
    expected = net.numerical_gradient(x[::2].copy(), labels[::2].copy())
    assert largest_gap(net.numerical_gradient(x[::2], labels[::2]), expected) == 0.0
    assert largest_gap(net.numerical_gradient(np.asfortranarray(x[::2]), labels[::2]),
                       expected) == 0.0
