"""The net face a run trains through (TwoLayerNet and xpnet.nets.BookNet) and the
optimizers' saved state, against the book-API nets' own numbers (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import nets
from xpnet.common import _net, optimizer
from xpnet.common.deep_convnet import DeepConvNet
from xpnet.common.layers import Dropout
from xpnet.common.multi_layer_net import MultiLayerNet
from xpnet.common.simple_convnet import SimpleConvNet
from xpnet.counter_random import Draw, stream_start
from xpnet.errors import InputError, ModelFileError
from xpnet.functions import softmax
from xpnet.inputs import NETS, OPTIMIZERS, SCALE_NAMES
from xpnet.two_layer_net import PARAM_NAMES, TwoLayerNet

# -- optimizers: make, state, restore -----------------------------------------------------


def grads_for(params, rng, count):
    return [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(count)]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_an_optimizer_restored_from_its_host_state_continues_bit_identically(name, rng) -> None:
    start = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal(3),
             "W2": rng.standard_normal((3, 2))}
    grads = grads_for(start, rng, 5)
    straight, params = optimizer.make(name, 0.05), {k: v.copy() for k, v in start.items()}
    for g in grads:
        straight.update(params, g)

    first, resumed = optimizer.make(name, 0.05), {k: v.copy() for k, v in start.items()}
    for g in grads[:3]:
        first.update(resumed, g)
    arrays, scalars = optimizer.state(first)
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    fresh = optimizer.make(name, 0.05)
    optimizer.restore(fresh, arrays, scalars, resumed)
    for g in grads[3:]:
        fresh.update(resumed, g)
    for k in start:
        np.testing.assert_array_equal(resumed[k], params[k])


def test_state_names_each_array_by_slot_and_parameter_and_adam_counts(rng) -> None:
    params = {"W1": rng.standard_normal((2, 2)), "b1": rng.standard_normal(2)}
    adam = optimizer.make("adam", 0.001)
    assert optimizer.state(adam) == ({}, {"iter": 0})
    adam.update(params, grads_for(params, rng, 1)[0])
    adam.update(params, grads_for(params, rng, 1)[0])
    arrays, scalars = optimizer.state(adam)
    assert sorted(arrays) == ["m.W1", "m.b1", "v.W1", "v.b1"] and scalars == {"iter": 2}
    np.testing.assert_array_equal(arrays["m.W1"], adam.m["W1"])
    arrays["m.W1"][0, 0] = 99.0  # a copy: the optimizer's own state is not touched
    assert adam.m["W1"][0, 0] != 99.0
    for name, slots in (("sgd", []), ("momentum", ["v.W1", "v.b1"]),
                        ("nesterov", ["v.W1", "v.b1"]), ("adagrad", ["h.W1", "h.b1"]),
                        ("rmsprop", ["h.W1", "h.b1"])):
        opt = optimizer.make(name, 0.1)
        opt.update(dict(params), grads_for(params, rng, 1)[0])
        assert sorted(optimizer.state(opt)[0]) == slots and optimizer.state(opt)[1] == {}


def test_restore_puts_arrays_in_the_parameters_dtype_and_refuses_what_does_not_fit(rng) -> None:
    params = {"W1": rng.standard_normal((2, 3)).astype(np.float32)}
    opt = optimizer.make("momentum", 0.1)
    optimizer.restore(opt, {"v.W1": rng.standard_normal((2, 3))}, {}, params)
    assert opt.v["W1"].dtype == np.float32
    for arrays in ({"v.W2": np.zeros((2, 3))}, {"h.W1": np.zeros((2, 3))},
                   {"v.W1": np.zeros((3, 2))}, {"v.W1": np.zeros((2, 3)), "v.b1": np.zeros(3)}):
        with pytest.raises(InputError):
            optimizer.restore(optimizer.make("momentum", 0.1), arrays, {}, params)
    moments = {"m.W1": np.zeros((2, 3)), "v.W1": np.zeros((2, 3))}
    for scalars in ({}, {"iter": 0}, {"iter": -1}, {"iter": 1.5}):
        with pytest.raises(InputError):
            optimizer.restore(optimizer.make("adam", 0.1), moments, scalars, params)
    fresh = optimizer.make("adam", 0.1)
    optimizer.restore(fresh, {}, {"iter": 0}, params)  # saved before the first update
    assert fresh.m is None and fresh.iter == 0
    with pytest.raises(InputError, match="optimizer must be one of"):
        optimizer.make("lbfgs", 0.1)
    assert tuple(optimizer.CLASSES) == OPTIMIZERS


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e300])  # 1e300: infinite in float32
def test_restore_refuses_a_moment_that_is_not_finite_as_damaged(bad, rng) -> None:
    params = {"W1": rng.standard_normal((2, 3)).astype(np.float32)}
    moments = {"m.W1": np.zeros((2, 3)), "v.W1": np.zeros((2, 3))}
    moments["v.W1"][1, 2] = bad
    adam = optimizer.make("adam", 0.1)
    with pytest.raises(InputError, match=r"^optimizer state v\.W1 holds NaN or infinity "
                       r"\(in float32\): the saved state is damaged$"):
        optimizer.restore(adam, moments, {"iter": 3}, params)
    assert adam.m is None and adam.iter == 0  # nothing half-restored


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_momentum_updates_its_velocity_in_place_with_the_books_numbers(dtype, rng) -> None:
    params = {"W": rng.standard_normal((5, 4)).astype(dtype)}
    grads = [{"W": g["W"].astype(dtype)} for g in grads_for(params, rng, 3)]
    opt = optimizer.Momentum(lr=0.07, momentum=0.85)
    p, v, held = params["W"].copy(), np.zeros_like(params["W"]), []
    for g in grads:
        opt.update(params, g)
        held.append(opt.v["W"])
        v = 0.85 * v - 0.07 * g["W"]  # the book's statement, a new array each time
        p += v
    assert held[0] is held[1] is held[2]
    np.testing.assert_array_equal(params["W"], p)


# -- the net face: TwoLayerNet --------------------------------------------------------------


def test_two_layer_net_has_the_face_a_run_trains_through(rng) -> None:
    net = TwoLayerNet(12, 5, 3, seed=1, dtype=np.float32)
    assert net.param_names == PARAM_NAMES and (net.features, net.classes) == (12, 3)
    assert net.describe() == "TwoLayerNet(12, 5, 3)"
    # the parameters (83) and their gradients, then the batch's activations; Adam keeps
    # two more copies of the parameters, Momentum one
    params = 12 * 5 + 5 + 5 * 3 + 3
    assert net.step_bytes(10) == 2 * params * 4 + 10 * ((12 + 2 * 5 + 2 * 3) * 4 + 8)
    assert net.step_bytes(10, optimizer.make("adam", 0.1)) == net.step_bytes(10) + 2 * params * 4
    assert net.step_bytes(10, optimizer.make("momentum", 0.1)) == (net.step_bytes(10)
                                                                    + params * 4)
    net.start_iteration(7)
    host = net.host_params()
    assert list(host) == list(PARAM_NAMES) and host["W1"].dtype == np.float32
    host["W1"][0, 0] = 5.0  # a copy
    assert net.params["W1"][0, 0] != 5.0

    other = TwoLayerNet(12, 5, 3, seed=2)
    arrays = {k: rng.standard_normal(v.shape) for k, v in net.host_params().items()}
    held = dict(other.params)
    other.set_params(arrays)
    assert all(other.params[k] is held[k] for k in PARAM_NAMES)  # in place
    for k in PARAM_NAMES:
        np.testing.assert_array_equal(other.params[k], arrays[k])
    net.set_params(arrays)
    assert net.params["W1"].dtype == np.float32
    np.testing.assert_array_equal(net.params["W1"], arrays["W1"].astype(np.float32))


def test_set_params_refuses_a_wrong_name_or_shape_and_changes_nothing(rng) -> None:
    net = TwoLayerNet(6, 4, 3, seed=1)
    before = net.host_params()
    good = {k: rng.standard_normal(v.shape) for k, v in before.items()}
    for bad in ({**good, "W3": good["W1"]}, {k: v for k, v in good.items() if k != "b2"},
                {**good, "W2": good["W2"].T}, {**good, "b1": np.array(["a"] * 4)}):
        with pytest.raises(ModelFileError):
            net.set_params(bad)
        for k in PARAM_NAMES:
            np.testing.assert_array_equal(net.params[k], before[k])


# -- xpnet.nets: build and BookNet against the book-API nets ---------------------------------

SETTINGS = {  # (features, hidden, weight_init_std) small enough for a fast test
    "multi-layer": (30, (20, 10), "relu"),
    "simple-conv": (100, 8, 0.01),  # 1x10x10 images
    "deep-conv": (784, 12, "he"),  # the book's fixed fan-ins need 28x28
}


def build(kind, seed=3, *, dtype="float64", activation="relu", decay=0.0, hidden=None,
          device="cpu"):
    features, default_hidden, init = SETTINGS[kind]
    return nets.build(kind, features=features, classes=10,
                      hidden=default_hidden if hidden is None else hidden,
                      activation=activation, weight_init_std=init, weight_decay=decay,
                      dtype=dtype, device=device, seed=seed)


def book_twin(net):
    """The xpnet.common net built the book's way, holding ``net``'s weights."""
    if net.kind == "multi-layer":
        book = MultiLayerNet(net.features, list(net.net.hidden_size_list), net.classes,
                             net.net.activation, 0.1, net.weight_decay, device="cpu")
    elif net.kind == "simple-conv":
        book = SimpleConvNet(net.input_shape, hidden_size=net.params["W2"].shape[1],
                             output_size=net.classes, device="cpu")
    else:
        book = DeepConvNet(hidden_size=net.params["W7"].shape[1], output_size=net.classes,
                           device="cpu")
    for k, v in net.params.items():
        book.params[k][...] = v  # in place: the book net's layers hold these arrays
    return book


def rule_masks(book, seed, iteration):
    """Give ``book``'s Dropout layers the masks of the spec's rule at ``iteration``."""
    dropouts = [layer for layer in book.layers if isinstance(layer, Dropout)]
    for k, layer in enumerate(dropouts):
        layer.source = lambda x, k=k: Draw(x, x.size, stream_start(seed, k, iteration,
                                                                   x.size)).uniform()
    return dropouts


def batch(net, rng, rows=3):
    return rng.random((rows, net.features)), rng.integers(0, net.classes, rows).astype(np.intp)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_multi_layer_loss_and_grads_are_the_books_with_weight_decay(activation, rng) -> None:
    net = build("multi-layer", activation=activation, decay=0.1)
    book = book_twin(net)
    x, t = batch(net, rng, 5)
    loss, grads = net._loss_and_gradient(x, t)
    assert loss == book.loss(x, t) and book.weight_decay_lambda == 0.1
    want = book.gradient(x, t)
    assert list(grads) == list(net.param_names) == list(want)
    for k in want:
        np.testing.assert_array_equal(grads[k], want[k])
    assert net._loss(x, t) == loss
    np.testing.assert_array_equal(net.predict(x), softmax(book.predict(x)))
    assert net.accuracy(x, t) == book.accuracy(x, t)


def test_multi_layer_numerical_gradient_is_the_books_loop(rng) -> None:
    net = build("multi-layer", activation="sigmoid", decay=0.05, hidden=(4, 3))
    book = book_twin(net)
    x, t = batch(net, rng, 4)
    got, want = net._numerical_gradient(x, t), book.numerical_gradient(x, t, method="generic")
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-9)


def test_simple_conv_loss_and_grads_are_the_books(rng) -> None:
    net = build("simple-conv")
    book = book_twin(net)
    x, t = batch(net, rng, 3)
    loss, grads = net._loss_and_gradient(x, t)
    images = x.reshape(3, 1, 10, 10)
    assert loss == book.loss(images, t)
    want = book.gradient(images, t)
    for k in want:
        np.testing.assert_array_equal(grads[k], want[k])
    np.testing.assert_array_equal(net.predict(x), softmax(book.predict(images)))


def test_deep_conv_loss_and_grads_are_the_books_with_the_rules_dropout_masks(rng) -> None:
    net = build("deep-conv", seed=11)
    book = book_twin(net)
    x, t = batch(net, rng, 2)
    images = x.reshape(2, 1, 28, 28)
    for iteration in range(2):  # the second draws the next masks of each stream
        loss, grads = net._loss_and_gradient(x, t)
        book_dropouts = rule_masks(book, 11, iteration)
        assert loss == book.loss(images, t)
        want = book.gradient(images, t)
        for k in want:
            np.testing.assert_array_equal(grads[k], want[k])
        for mine, theirs in zip(net._dropouts, book_dropouts, strict=True):
            np.testing.assert_array_equal(mine.mask, theirs.mask)
    assert 0.3 < net._dropouts[0].mask.mean() < 0.7  # about half dropped
    assert net.describe() == "DeepConvNet(1x28x28, 12, 10)"


def test_dropout_masks_after_start_iteration_are_those_of_a_run_that_got_there(rng) -> None:
    x, t = batch(build("deep-conv"), rng, 2)
    ran = build("deep-conv", seed=5)
    history = []
    for _ in range(4):
        ran._loss_and_gradient(x, t)
        history.append([layer.mask.copy() for layer in ran._dropouts])
    resumed = build("deep-conv", seed=5)
    resumed.start_iteration(3)
    resumed._loss(x, t)  # the loss alone draws the next step's masks, not advancing
    resumed._loss_and_gradient(x, t)
    for mine, theirs in zip(resumed._dropouts, history[3], strict=True):
        np.testing.assert_array_equal(mine.mask, theirs)
    assert not np.array_equal(history[2][1], history[3][1])  # new masks each iteration
    assert not np.array_equal(history[3][0].ravel()[:24], history[3][1].ravel()[:24])
    other_seed = build("deep-conv", seed=6)
    other_seed.set_params(ran.host_params())
    other_seed._loss_and_gradient(x, t)
    assert not np.array_equal(other_seed._dropouts[1].mask, history[0][1])


@pytest.mark.parametrize("kind", list(SETTINGS))
def test_a_seed_gives_its_weights_every_time_and_leaves_numpys_generator_alone(kind) -> None:
    before = np.random.get_state()  # noqa: NPY002  (the global one, untouched)
    first, again, other = build(kind, seed=7), build(kind, seed=7), build(kind, seed=8)
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])
    narrow = build(kind, seed=7, dtype="float32")
    for k in first.param_names:
        np.testing.assert_array_equal(first.params[k], again.params[k])
        assert narrow.params[k].dtype == np.float32
        np.testing.assert_array_equal(narrow.params[k], first.params[k].astype(np.float32))
    assert not np.array_equal(first.params["W1"], other.params["W1"])


def test_weights_are_drawn_in_the_books_order_and_scales() -> None:
    net = build("multi-layer", seed=9)
    draw = np.random.default_rng(9)
    for idx, (fan_in, fan_out) in enumerate(((30, 20), (20, 10), (10, 10)), start=1):
        want = np.sqrt(2.0 / fan_in) * draw.standard_normal((fan_in, fan_out))
        np.testing.assert_array_equal(net.params[f"W{idx}"], want)
        np.testing.assert_array_equal(net.params[f"b{idx}"], np.zeros(fan_out))
    conv = build("simple-conv", seed=9)
    draw = np.random.default_rng(9)
    for key, shape in (("W1", (30, 1, 5, 5)), ("W2", (270, 8)), ("W3", (8, 10))):
        np.testing.assert_array_equal(conv.params[key], 0.01 * draw.standard_normal(shape))


@pytest.mark.parametrize("kind", list(SETTINGS))
def test_set_params_copies_in_place_and_refuses_a_wrong_name_or_shape(kind, rng) -> None:
    net = build(kind)
    good = {k: rng.standard_normal(v.shape) for k, v in net.host_params().items()}
    held = dict(net.params)
    net.set_params(good)
    for k in net.param_names:
        assert net.params[k] is held[k]
        np.testing.assert_array_equal(net.params[k], good[k])
    renamed = {("W9" if k == "W1" else k): v for k, v in good.items()}
    for bad in (renamed, {**good, "W2": good["W2"][:1]}):
        with pytest.raises(ModelFileError):
            net.set_params(bad)
    np.testing.assert_array_equal(net.host_params()["W2"], good["W2"])


def test_accuracy_counts_every_row_in_bounded_batches(rng, monkeypatch) -> None:
    net = build("simple-conv", seed=2)
    net.set_params({k: rng.standard_normal(v.shape) for k, v in net.host_params().items()})
    book = book_twin(net)
    x, t = batch(net, rng, 23)
    predicted = book.predict(x.reshape(-1, 1, 10, 10)).argmax(axis=1)
    t[::2] = predicted[::2]  # every other row right, the last batch's too
    want = (predicted == t).sum() / 23
    assert 0 < want < 1
    monkeypatch.setattr(nets, "CONV_ACCURACY_ROWS", 5)  # 23 rows: 4 full batches and 3
    assert net._accuracy(x, t) == want
    assert net.accuracy(x, np.eye(10)[t]) == want


def test_describe_and_step_bytes_name_and_size_each_net() -> None:
    assert build("multi-layer", decay=0.1).describe() == (
        "MultiLayerNet(30, [20, 10], 10, relu, weight decay 0.1)")
    assert build("multi-layer", activation="sigmoid").describe() == (
        "MultiLayerNet(30, [20, 10], 10, sigmoid)")
    assert build("simple-conv").describe() == "SimpleConvNet(1x10x10, 30 filters 5x5, 8, 10)"
    # the parameters and their gradients; then x, each layer's output and its gradient:
    # affine 20, relu 20, affine 10, relu 10, affine 10
    params = 30 * 20 + 20 + 20 * 10 + 10 + 10 * 10 + 10
    assert build("multi-layer").step_bytes(4) == 2 * params * 8 + 4 * (
        (30 + 2 * (20 + 20 + 10 + 10 + 10)) * 8 + 8)
    conv = build("simple-conv")
    # conv: columns 6*6*25 (and their gradient), output 30x6x6; relu; pool columns
    # 30*3*3*4, output 30x3x3; affine 8; relu; affine 10
    per_sample = (100 + 2 * 900 + 2 * 1080 + 2 * 1080 + 2 * 1080 + 2 * 270
                  + 2 * 8 + 2 * 8 + 2 * 10)
    params = 30 * 25 + 30 + 270 * 8 + 8 + 8 * 10 + 10
    assert conv.step_bytes(3) == 2 * params * 8 + 3 * (per_sample * 8 + 8)


@pytest.mark.parametrize("kind", list(SETTINGS))
def test_step_bytes_counts_the_optimizers_state_as_copies_of_the_parameters(kind) -> None:
    net = build(kind, dtype="float32")
    one_copy = sum(p.size for p in net.params.values()) * 4
    plain = net.step_bytes(2)
    assert net.step_bytes(2, optimizer.make("sgd", 0.1)) == plain
    for name, copies in (("momentum", 1), ("adagrad", 1), ("adam", 2)):
        assert net.step_bytes(2, optimizer.make(name, 0.1)) == plain + copies * one_copy

    class Mine:  # not one of the book's six: counted as the most any keeps (Adam's 2)
        def update(self, params, grads) -> None: ...

    assert net.step_bytes(2, Mine()) == plain + 2 * one_copy


def test_a_net_too_big_is_refused_in_one_line_before_any_weight_is_drawn() -> None:
    # 784*300000 + 300000**2 + 3000000 weights: 672 GiB in float64, more than any RAM here
    with pytest.raises(InputError, match=r"^a MultiLayerNet\(784, \[300000, 300000\], 10, relu\) "
                       r"needs 672\.3 GiB for its parameters, more than half of the .* GiB "
                       r"of cpu; use a smaller hidden size$"):
        nets.build("multi-layer", features=784, classes=10, hidden=(300000, 300000),
                   activation="relu", weight_init_std="he", weight_decay=0.0, dtype="float32",
                   device="cpu", seed=1)


@pytest.mark.parametrize("kind", list(SETTINGS))
def test_the_size_check_counts_the_parameters_the_net_gets(kind, monkeypatch) -> None:
    from xpnet import two_layer_net

    count = sum(p.size for p in build(kind).params.values())
    monkeypatch.setattr(two_layer_net, "device_memory_bytes", lambda device: 2 * count * 8)
    build(kind)  # exactly half the memory: fits
    monkeypatch.setattr(two_layer_net, "device_memory_bytes", lambda device: 2 * count * 8 - 2)
    drawn = []  # a generator made is a weight about to be drawn
    monkeypatch.setattr(np.random, "default_rng", lambda *a, **k: drawn.append(a))
    with pytest.raises(InputError, match="for its parameters, more than half"):
        build(kind)
    assert not drawn


def test_check_settings_is_the_one_table_of_what_each_net_accepts() -> None:
    base = {"hidden": 5, "activation": "relu", "weight_init_std": 0.01, "weight_decay": 0.0}
    assert nets.check_settings("simple-conv", **base) == {
        **base, "optimizer": "sgd", "grad": "backprop"}
    assert nets.check_settings("multi-layer", **{**base, "hidden": [4, 3],
                                                  "weight_init_std": "RELU"})["hidden"] == (4, 3)
    assert nets.check_settings("deep-conv", **{**base, "weight_init_std": "relu"})[
        "weight_init_std"] == "he"
    refused = [("two-layer", {"activation": "relu"}), ("two-layer", {"optimizer": "adam"}),
               ("simple-conv", {"weight_decay": 0.1}), ("simple-conv", {"hidden": (4, 4)}),
               ("simple-conv", {"weight_init_std": "he"}), ("deep-conv", {"grad": "numerical"}),
               ("deep-conv", {"weight_init_std": 0.01}), ("multi-layer", {"hidden": ()}),
               ("multi-layer", {"activation": "tanh"})]
    for net, change in refused:
        with pytest.raises(InputError):
            nets.check_settings(net, **{**base, **change})
    assert tuple(nets.RULES) == NETS


def test_each_scale_name_gives_its_std() -> None:
    assert set(SCALE_NAMES.values()) == set(_net.SCALE_NUMERATORS)
    for name, scale in SCALE_NAMES.items():
        assert _net.init_scale(name.upper(), 8) == np.sqrt({"he": 2, "xavier": 1}[scale] / 8)
    assert _net.init_scale(0.05, 8) == 0.05


def test_build_gives_chapter_4s_net_for_two_layer_and_refuses_what_a_net_lacks() -> None:
    net = nets.build("two-layer", features=12, classes=3, hidden=5, activation="sigmoid",
                     weight_init_std=0.01, weight_decay=0.0, dtype="float32", device="cpu",
                     seed=4)
    assert isinstance(net, TwoLayerNet) and net.describe() == "TwoLayerNet(12, 5, 3)"
    np.testing.assert_array_equal(net.params["W1"],
                                  TwoLayerNet(12, 5, 3, seed=4, dtype="float32").params["W1"])
    for kind, change in (("simple-conv", {"decay": 0.1}), ("deep-conv", {"activation": "sigmoid"}),
                         ("simple-conv", {"hidden": (4, 4)})):
        with pytest.raises(InputError):
            build(kind, **change)
    with pytest.raises(InputError, match="28x28"):
        nets.build("deep-conv", features=100, classes=10, hidden=5, activation="relu",
                   weight_init_std="he", weight_decay=0.0, dtype="float64", device="cpu",
                   seed=1)


@pytest.mark.parametrize("kind", list(SETTINGS))
def test_a_float32_net_computes_in_float32_near_the_float64_numbers(kind, rng) -> None:
    wide, narrow = build(kind, seed=4), build(kind, seed=4, dtype="float32")
    x, t = batch(wide, rng, 2)
    want_loss, want = wide._loss_and_gradient(x, t)
    loss, grads = narrow._loss_and_gradient(x.astype(np.float32), t)
    assert abs(float(loss) - want_loss) < 1e-5
    for k in want:
        assert grads[k].dtype == np.float32, k
        scale = np.abs(want[k]).max() + 1e-12
        np.testing.assert_allclose(grads[k], want[k], rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize("kind", ["two-layer", *SETTINGS])
def test_set_params_refuses_a_value_that_is_not_finite_as_damaged(kind, rng) -> None:
    net = (TwoLayerNet(12, 5, 3, seed=1) if kind == "two-layer" else build(kind))
    good = net.host_params()
    bad = {k: v.copy() for k, v in good.items()}
    bad[net.param_names[-1]][0] = np.nan
    with pytest.raises(ModelFileError, match=rf"^parameter {net.param_names[-1]} holds NaN "
                       r"or infinity \(in float64\): the parameters are damaged$"):
        net.set_params(bad)
    for k, v in net.host_params().items():
        np.testing.assert_array_equal(v, good[k])


# -- the public gradients: checked input, the internals' numbers ----------------------


@pytest.mark.parametrize("kind", ["multi-layer", "simple-conv"])
def test_book_nets_public_gradients_are_the_internals_on_host_samples(kind, rng) -> None:
    net = build(kind, activation="relu", decay=0.2 if kind == "multi-layer" else 0.0,
                hidden=(5, 4) if kind == "multi-layer" else 3)
    x, t = batch(net, rng, 2)
    one_hot = np.eye(net.classes)[t]
    trusted = np.ascontiguousarray(x, dtype=net.dtype)
    want_backprop = net._loss_and_gradient(trusted, t)[1]
    want_numerical = net._numerical_gradient(trusted, t)
    for labels in (t, one_hot):
        got_backprop = net.gradient(x, labels)
        got_numerical = net.numerical_gradient(x, labels)
        assert list(got_backprop) == list(got_numerical) == list(net.param_names)
        for k in net.param_names:
            np.testing.assert_array_equal(got_backprop[k], want_backprop[k])
            np.testing.assert_array_equal(got_numerical[k], want_numerical[k])
    if kind == "multi-layer":  # the book's loop: the book net's own, within the fused 1e-9
        looped = net.numerical_gradient(x, t, method="generic")
        book = net.net.numerical_gradient(trusted, t, method="generic")
        for k in net.param_names:
            np.testing.assert_array_equal(looped[k], book[k])
            np.testing.assert_allclose(looped[k], want_numerical[k], rtol=0, atol=1e-9)


def test_book_nets_public_gradients_refuse_bad_input_in_one_line(rng) -> None:
    net = build("multi-layer", hidden=(4,))
    x, t = batch(net, rng, 2)
    with pytest.raises(InputError, match=r"x has shape \(2, 3\) but the net expects"):
        net.gradient(x[:, :3], t)
    with pytest.raises(InputError, match="method"):
        net.numerical_gradient(x, t, method="loop")
    with pytest.raises(InputError):
        net.numerical_gradient(x, t[:1])


def unlikely_labels(net, rng, rows=4):
    """Samples and, for each, the class the net gives the least probability (< 0.05)."""
    x = rng.random((rows, net.features))
    y = net.predict(x)
    t = y.argmin(axis=1)
    assert y[np.arange(rows), t].max() < 0.05
    return x, t


@pytest.mark.parametrize("kind", ["two-layer", "multi-layer"])
def test_books_loss_gradient_is_the_numerical_gradient_where_backprop_is_off_by_the_delta(
        kind, rng) -> None:
    # Peaked softmaxes and the least likely class: the book's 1e-7 in -log(y + 1e-7)
    # moves the numerical gradient off backprop's (y - t) / B by ~1e-7 / y, over 1e-7.
    if kind == "two-layer":
        net = TwoLayerNet(20, 8, 10, 0.5, seed=4)
    else:
        net = nets.build("multi-layer", features=20, classes=10, hidden=(8, 6),
                         activation="sigmoid", weight_init_std=1.0, weight_decay=0.3,
                         dtype="float64", device="cpu", seed=5)
        assert net.weight_decay == 0.3
    x, t = unlikely_labels(net, rng)
    numerical, backprop = net.numerical_gradient(x, t), net.gradient(x, t)
    books = net.books_loss_gradient(x, np.eye(10)[t])  # one-hot as labels
    assert list(books) == list(net.param_names)
    for k in net.param_names:
        assert books[k].dtype == np.float64 and isinstance(books[k], np.ndarray)
        assert np.abs(numerical[k] - backprop[k]).max() > 1e-7, k
        np.testing.assert_allclose(books[k], numerical[k], rtol=0, atol=1e-9, err_msg=k)


def test_books_loss_gradient_refuses_a_net_with_dropout(rng) -> None:
    net = build("deep-conv")
    x, t = batch(net, rng, 1)
    with pytest.raises(InputError, match="books_loss_gradient needs a net without dropout"):
        net.books_loss_gradient(x, t)
