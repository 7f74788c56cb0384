"""The net face a run trains through (TwoLayerNet and xpnet.nets.BookNet) and the
optimizers' saved state, against the book-API nets' own numbers (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.common import optimizer
from xpnet.errors import InputError, ModelFileError
from xpnet.inputs import OPTIMIZERS
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
    assert net.step_bytes(10) == 10 * ((12 + 2 * 5 + 2 * 3) * 4 + 8)
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
