"""xpnet.nets' BookNet on a GPU (the stand-in): the CPU's weights, losses, gradients,
dropout masks and accuracy, float64 to 1e-12."""

from __future__ import annotations

import cupy
import numpy as np
import pytest

from xpnet import nets
from xpnet.common import optimizer

SETTINGS = {  # (features, hidden, weight_init_std, weight decay): tiny shapes
    "multi-layer": (30, (20, 10), "relu", 0.1),
    "simple-conv": (100, 8, 0.01, 0.0),
    "deep-conv": (784, 12, "he", 0.0),
}


def build(kind, device, seed=3):
    features, hidden, init, decay = SETTINGS[kind]
    return nets.build(kind, features=features, classes=10, hidden=hidden, activation="relu",
                      weight_init_std=init, weight_decay=decay, dtype="float64",
                      device=device, seed=seed)


def host(a):
    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


@pytest.mark.parametrize("kind", list(SETTINGS))
def test_a_book_net_on_a_gpu_gives_the_cpus_numbers(kind, rng) -> None:
    cpu, gpu = build(kind, "cpu"), build(kind, "cuda")
    assert all(isinstance(gpu.params[k], cupy.ndarray) for k in gpu.param_names)
    for k in cpu.param_names:
        np.testing.assert_array_equal(host(gpu.params[k]), cpu.params[k])
    x = rng.random((2, cpu.features))
    t = rng.integers(0, 10, 2).astype(np.intp)
    cpu.start_iteration(4)
    gpu.start_iteration(4)
    for _ in range(2):  # the second step draws each dropout stream's next masks
        want_loss, want = cpu._loss_and_gradient(x, t)
        loss, grads = gpu._loss_and_gradient(cupy.asarray(x), cupy.asarray(t))
        assert abs(float(loss) - float(want_loss)) < 1e-12
        for k in want:
            np.testing.assert_allclose(host(grads[k]), want[k], rtol=0, atol=1e-12)
        for mine, theirs in zip(gpu._dropouts, cpu._dropouts, strict=True):
            np.testing.assert_array_equal(host(mine.mask), theirs.mask)
    assert gpu.accuracy(x, t) == cpu.accuracy(x, t)
    np.testing.assert_allclose(host(gpu.predict(x)), cpu.predict(x), rtol=0, atol=1e-12)


def test_set_params_and_an_optimizers_state_round_trip_through_the_host(rng) -> None:
    gpu, cpu = build("multi-layer", "cuda"), build("multi-layer", "cpu")
    arrays = {k: rng.standard_normal(v.shape) for k, v in cpu.host_params().items()}
    gpu.set_params(arrays)
    assert all(isinstance(gpu.params[k], cupy.ndarray) for k in gpu.param_names)
    np.testing.assert_array_equal(gpu.host_params()["W2"], arrays["W2"])
    x, t = cupy.asarray(rng.random((3, 30))), cupy.asarray(np.array([1, 2, 3]))
    adam = optimizer.make("adam", 0.01)
    adam.update(gpu.params, gpu._loss_and_gradient(x, t)[1])
    saved, scalars = optimizer.state(adam)
    assert all(isinstance(a, np.ndarray) for a in saved.values())
    fresh = optimizer.make("adam", 0.01)
    optimizer.restore(fresh, saved, scalars, gpu.params)
    assert isinstance(fresh.m["W1"], cupy.ndarray) and fresh.iter == 1
    np.testing.assert_array_equal(host(fresh.v["b3"]), host(adam.v["b3"]))
