"""The book's nets in xpnet.common: backprop against the numerical gradient (float64),
the book's structure (params, layers, last layer) and the global generator's start."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.common.deep_convnet import DeepConvNet
from xpnet.common.layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid
from xpnet.common.multi_layer_net import MultiLayerNet
from xpnet.common.multi_layer_net_extend import MultiLayerNetExtend
from xpnet.common.simple_convnet import SimpleConvNet
from xpnet.common.two_layer_net import TwoLayerNet
from xpnet.gradient import numerical_gradient


def exact_loss(scores, t, params, decay=0.0):
    """The cross-entropy without the book's 1e-7 inside the log, plus the weight decay.

    Backprop's (y - onehot) / N is the exact gradient of this one; the book's loss differs
    from it by about 1e-7 / y per sample, which would hide errors below ~1e-6.
    """
    labels = t if t.ndim == 1 else t.argmax(axis=1)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    penalty = sum(0.5 * decay * np.sum(v**2) for k, v in params.items() if k[0] == "W")
    return -np.mean(log_p[np.arange(len(labels)), labels]) + penalty


def worst_gap(net, x, t, *, train=None, decay=0.0) -> dict[str, float]:
    """Largest |backprop - central difference of the exact loss| per parameter, and the
    net's own numerical_gradient (the book's loss) within the 1e-7 bias of the book's log."""
    kw = {} if train is None else {"train_flg": train}

    def f(_):
        return exact_loss(net.predict(x, **kw), t, net.params, decay)

    backprop = net.gradient(x, t)
    exact = {k: numerical_gradient(f, net.params[k]) for k in backprop}
    books = net.numerical_gradient(x, t)
    assert list(books) == list(backprop)
    for k in books:
        assert np.abs(books[k] - backprop[k]).max() < 2e-6, k
    return {k: float(np.abs(exact[k] - backprop[k]).max()) for k in backprop}


def test_ch05_two_layer_net_gradient_check(rng) -> None:
    np.random.seed(0)  # noqa: NPY002
    net = TwoLayerNet(20, 6, 4, weight_init_std=0.3)
    x, t = rng.random((3, 20)), np.eye(4)[[0, 3, 1]]
    gaps = worst_gap(net, x, t)
    assert set(gaps) == {"W1", "b1", "W2", "b2"}
    assert max(gaps.values()) < 1e-8, gaps
    assert list(net.layers) == ["Affine1", "Relu1", "Affine2"]
    assert net.layers["Affine1"].W is net.params["W1"]
    assert type(net.lastLayer).__name__ == "SoftmaxWithLoss"


@pytest.mark.parametrize(("activation", "init", "decay"),
                         [("relu", "he", 0), ("sigmoid", "xavier", 0.1), ("relu", 0.3, 0.05)])
def test_multi_layer_net_gradient_check(rng, activation, init, decay) -> None:
    np.random.seed(1)  # noqa: NPY002
    net = MultiLayerNet(12, [7, 6, 5], 4, activation, init, decay)
    x, t = rng.random((4, 12)), np.array([0, 3, 2, 1])
    gaps = worst_gap(net, x, t, decay=decay)
    assert len(gaps) == 8 and max(gaps.values()) < 1e-8, gaps
    kinds = [type(layer) for layer in net.layers.values()]
    act = Relu if activation == "relu" else Sigmoid
    assert kinds == [Affine, act, Affine, act, Affine, act, Affine]
    assert list(net.layers)[:2] == ["Affine1", "Activation_function1"]


def test_multi_layer_net_loss_adds_the_weight_decay(rng) -> None:
    np.random.seed(2)  # noqa: NPY002
    plain = MultiLayerNet(5, [4], 3)
    np.random.seed(2)  # noqa: NPY002
    decayed = MultiLayerNet(5, [4], 3, weight_decay_lambda=0.3)
    x, t = rng.random((2, 5)), np.array([1, 2])
    penalty = 0.5 * 0.3 * sum(np.sum(plain.params[k] ** 2) for k in ("W1", "W2"))
    assert decayed.loss(x, t) == pytest.approx(plain.loss(x, t) + penalty, rel=1e-14)


def test_weights_start_from_the_global_generator_with_he_xavier_or_a_number() -> None:
    for init, scale in (("relu", np.sqrt(2 / 10)), ("sigmoid", np.sqrt(1 / 10)), (0.01, 0.01)):
        np.random.seed(3)  # noqa: NPY002
        net = MultiLayerNet(10, [8], 2, weight_init_std=init)
        np.random.seed(3)  # noqa: NPY002
        np.testing.assert_array_equal(net.params["W1"], scale * np.random.randn(10, 8))  # noqa: NPY002
        np.testing.assert_array_equal(net.params["b1"], np.zeros(8))


def test_multi_layer_net_extend_with_batchnorm_gradient_check(rng) -> None:
    np.random.seed(4)  # noqa: NPY002
    net = MultiLayerNetExtend(10, [6, 5], 3, weight_decay_lambda=0.02, use_batchnorm=True)
    x, t = rng.random((5, 10)), np.array([0, 1, 2, 1, 0])
    gaps = worst_gap(net, x, t, train=True, decay=0.02)
    assert list(gaps) == ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2",
                          "W3", "b3"]
    assert max(gaps.values()) < 1e-8, gaps
    assert isinstance(net.layers["BatchNorm1"], BatchNormalization)
    assert net.layers["BatchNorm2"].gamma is net.params["gamma2"]


def test_multi_layer_net_extend_dropout_only_in_training(rng) -> None:
    np.random.seed(5)  # noqa: NPY002
    net = MultiLayerNetExtend(8, [6], 3, use_dropout=True, dropout_ration=0.4)
    assert isinstance(net.layers["Dropout1"], Dropout)
    x = rng.random((4, 8))
    np.testing.assert_array_equal(net.predict(x), net.predict(x))  # no mask outside training
    np.random.seed(6)  # noqa: NPY002
    a = net.predict(x, train_flg=True)
    np.random.seed(6)  # noqa: NPY002
    np.testing.assert_array_equal(a, net.predict(x, train_flg=True))
    assert not np.array_equal(a, net.predict(x, train_flg=True))


def test_simple_convnet_gradient_check_on_tiny_images(rng) -> None:
    np.random.seed(7)  # noqa: NPY002
    net = SimpleConvNet((2, 6, 6), {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1},
                        hidden_size=5, output_size=4, weight_init_std=0.3)
    x, t = rng.random((2, 2, 6, 6)), np.array([3, 0])
    gaps = worst_gap(net, x, t)
    assert list(gaps) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert max(gaps.values()) < 1e-8, gaps
    assert net.params["W2"].shape == (3 * 3 * 3, 5)


def test_convnet_accuracy_counts_whole_batches_only() -> None:
    np.random.seed(8)  # noqa: NPY002
    net = SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1},
                        hidden_size=4, output_size=3)
    x = np.random.rand(7, 1, 6, 6)  # noqa: NPY002
    predicted = net.predict(x).argmax(axis=1)
    # batches of 3: samples 0-5 count, the 7th does not, yet the total is 7 (the book's way)
    assert net.accuracy(x, predicted, batch_size=3) == 6 / 7
    assert net.accuracy(x, np.eye(3)[predicted], batch_size=7) == 1.0


def test_deep_convnet_backprop_matches_differences_with_dropout_masks_fixed(rng) -> None:
    np.random.seed(9)  # noqa: NPY002
    net = DeepConvNet()
    assert len(net.layers) == 20
    x, t = rng.random((2, 1, 28, 28)), np.array([4, 7])

    def loss() -> float:
        np.random.seed(10)  # noqa: NPY002  (the same dropout masks at every evaluation)
        return exact_loss(net.predict(x, train_flg=True), t, {})

    np.random.seed(10)  # noqa: NPY002
    grads = net.gradient(x, t)
    assert list(grads) == [f"{p}{i}" for i in range(1, 9) for p in "Wb"]
    # ReLU and max pooling have kinks (many zeros tie in a window): a step of 1e-6, not the
    # book's 1e-4, keeps the differences off them; float64 rounding stays near 1e-10.
    h = 1e-6
    for key in ("W1", "b1", "W3", "W4", "b5", "W6", "W7", "b7", "W8", "b8"):
        flat = net.params[key].reshape(-1)
        for i in rng.choice(flat.size, 3, replace=False):
            old = flat[i]
            flat[i] = old + h
            up = loss()
            flat[i] = old - h
            down = loss()
            flat[i] = old
            assert (up - down) / (2 * h) == pytest.approx(grads[key].reshape(-1)[i],
                                                          abs=1e-8), (key, i)


def test_accuracy_and_loss_have_the_books_types(rng) -> None:
    np.random.seed(11)  # noqa: NPY002
    net = MultiLayerNet(4, [3], 2, device="cpu")
    assert str(net.device) == "cpu"
    x, t = rng.random((5, 4)).astype(np.float32), np.array([0, 1, 1, 0, 1])
    acc = net.accuracy(x, t)
    assert type(acc) is np.float64
    assert acc == np.sum(net.predict(x).argmax(axis=1) == t) / 5.0
    assert type(net.loss(x, t)) is np.float64
