"""The public API on a GPU (the stand-in): TwoLayerNet on any device, files, the book's
functions, the label rule, and what each call asks of the device."""

from __future__ import annotations

import cupy
import cupy_standin
import matplotlib
import numpy as np
import pytest

from xpnet import backend, functions, fused, inputs
from xpnet.errors import InputError
from xpnet.two_layer_net import PARAM_NAMES, TwoLayerNet, save_params

matplotlib.use("Agg")


def pair(device: str, dtype: str = "float64", sizes=(12, 5, 3)) -> tuple[TwoLayerNet, TwoLayerNet]:
    return (TwoLayerNet(*sizes, seed=4, dtype=dtype),
            TwoLayerNet(*sizes, seed=4, dtype=dtype, device=device))


def host(a):
    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_net_on_any_gpu_gives_the_cpus_numbers_whatever_device_is_current(device, rng) -> None:
    """A net on cuda:1 used outside use_device computed with device 0 current (issue 16)."""
    cpu, gpu = pair(device)
    x, t = rng.random((7, 12)), rng.integers(0, 3, 7)
    assert cupy.cuda.runtime.getDevice() == 0
    np.testing.assert_allclose(host(gpu.predict(x)), cpu.predict(x), rtol=0, atol=1e-12)
    assert abs(gpu.loss(x, t) - cpu.loss(x, t)) < 1e-12
    assert gpu.accuracy(x, t) == cpu.accuracy(x, t)
    for method in ("gradient", "numerical_gradient"):
        got, want = getattr(gpu, method)(x, t), getattr(cpu, method)(x, t)
        for k in PARAM_NAMES:
            assert got[k].device.id == gpu.device.index
            np.testing.assert_allclose(host(got[k]), want[k], rtol=0, atol=1e-12, err_msg=k)
    # data already on the other GPU is copied across, not refused
    with cupy.cuda.Device(1 - gpu.device.index):
        x_there = cupy.asarray(x)
    np.testing.assert_allclose(host(gpu.predict(x_there)), cpu.predict(x), rtol=0, atol=1e-12)
    assert cupy.cuda.runtime.getDevice() == 0


def test_float32_on_a_gpu_is_the_cpus_float32(rng) -> None:
    cpu, gpu = pair("cuda:1", "float32")
    x, t = rng.random((6, 12)).astype(np.float32), rng.integers(0, 3, 6)
    got, want = gpu.gradient(x, t), cpu.gradient(x, t)
    for k in PARAM_NAMES:
        assert got[k].dtype == np.float32
        np.testing.assert_allclose(host(got[k]), want[k], rtol=1e-5, atol=1e-7, err_msg=k)
    assert abs(gpu.loss(x, t) - cpu.loss(x, t)) < 1e-6


def test_save_and_load_between_devices(rng, tmp_path) -> None:
    _, gpu = pair("cuda:1")
    gpu.save(tmp_path / "net.npz")
    save_params(tmp_path / "direct.npz", gpu.params)  # CuPy params: copied to the host
    for name in ("net.npz", "direct.npz"):
        for device in ("cpu", "cuda", "cuda:1"):
            back = TwoLayerNet.load(tmp_path / name, device=device)
            for k in PARAM_NAMES:
                np.testing.assert_array_equal(host(back.params[k]), host(gpu.params[k]))
    x = rng.random((4, 12))
    loaded = TwoLayerNet.load(tmp_path / "net.npz", device="cuda")
    np.testing.assert_array_equal(host(loaded.predict(x)), host(gpu.predict(x)))


def test_the_books_loss_list_plots(rng) -> None:
    """loss was a 0-d CuPy array: plt.plot(train_loss_list) raised TypeError."""
    import matplotlib.pyplot as plt

    _, net = pair("cuda")
    x, t = cupy.asarray(rng.random((5, 12))), cupy.asarray(rng.integers(0, 3, 5))
    train_loss_list = [net.loss(x, t) for _ in range(3)]
    assert all(type(v) is float for v in train_loss_list)
    plt.plot(train_loss_list)
    plt.close("all")


@pytest.mark.parametrize("function", [functions.cross_entropy_error,
                                      functions.sum_squared_error, functions.softmax_loss])
@pytest.mark.parametrize("gpu_side", ["y", "t"])
def test_the_books_functions_refuse_numpy_with_cupy_in_one_line(function, gpu_side) -> None:
    y = np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    t = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    if gpu_side == "y":
        y = cupy.asarray(y)
    else:
        t = cupy.asarray(t)
    other = "t" if gpu_side == "y" else "y"
    with pytest.raises(InputError, match=rf"^{gpu_side} is a CuPy array \(on the GPU\) but "
                       rf"{other} is on the host \(NumPy\): put both on one device"):
        function(y, t)


def test_the_books_functions_on_cupy_give_numpys_numbers() -> None:
    y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    t = np.eye(10)[2]
    for f in (functions.cross_entropy_error, functions.sum_squared_error):
        got = f(cupy.asarray(y), cupy.asarray(t))
        assert isinstance(got, cupy.ndarray)
        assert abs(float(got) - f(y, t)) < 1e-15


@pytest.mark.parametrize(("t", "match"), [
    ([0, 1, 3], r"holds label 3, outside 0\.\.2"),
    ([0.0, 1.5, 2.0], r"holds 1\.5, not a class index"),
    ([[1, 0, 0], [0, 1, 0], [1, 0.5, 0]], r"row 2 is not one-hot"),
])
def test_labels_on_a_gpu_wait_once_and_still_refuse_bad_ones(t, match) -> None:
    good = cupy.asarray(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]]) if np.ndim(t) == 2
                        else np.array([0, 1, 2]))
    with cupy_standin.counting() as c:
        got = inputs.labels(good, 3, 3)
    assert c.host_waits == 1 and c.d2h_copies == 1  # was 2-3 (bool, min, max)
    assert host(got).tolist() == [0, 1, 2]
    with pytest.raises(InputError, match=match):
        inputs.labels(cupy.asarray(np.array(t)), 3, 3)


def test_gradient_waits_for_nothing_and_a_bad_label_is_told_at_the_next_read(rng) -> None:
    _, net = pair("cuda")
    x = cupy.asarray(rng.random((3, 12)))
    with cupy_standin.counting() as c:
        net.gradient(x, cupy.asarray(np.array([0, 7, 1])))  # 7: no such class
    assert c.host_waits == 0
    with pytest.raises(InputError, match=r"t holds label 7, outside 0\.\.2 \(given to "
                       r"loss_and_gradient\(\);"):
        net.loss(x, cupy.asarray(np.array([0, 1, 2])))
    assert net.loss(x, cupy.asarray(np.array([0, 1, 2]))) > 0  # told once


def test_the_books_loop_reads_only_the_loss_each_step(rng) -> None:
    """The book's train_neuralnet.py on a GPU net, the data moved to the device once."""
    _, network = pair("cuda")
    x_train = cupy.asarray(rng.random((40, 12)))
    t_train = cupy.asarray(np.eye(3)[rng.integers(0, 3, 40)])  # one-hot, as the book loads
    train_loss_list = []
    counts = []
    for _ in range(4):
        with cupy_standin.counting() as c:
            batch_mask = np.random.choice(40, 10)  # noqa: NPY002 - the book's own line
            x_batch = x_train[batch_mask]
            t_batch = t_train[batch_mask]
            grad = network.gradient(x_batch, t_batch)
            for key in ("W1", "b1", "W2", "b2"):
                network.params[key] -= 0.1 * grad[key]
            loss = network.loss(x_batch, t_batch)
            train_loss_list.append(loss)
        counts.append(c)
    for c in counts[1:]:
        assert c.host_waits == 1 and c.d2h_copies == 1  # the loss the book appends
        assert c.h2d_copies == 2  # batch_mask, uploaded by the book's indexing (x and t)
        assert c.foreign_allocations == 0


def test_the_numerical_gradient_takes_its_memory_from_cupys_pool(rng) -> None:
    """Numba allocated every output and scratch array outside the pool (cuMemFree stalls)."""
    for dtype in ("float64", "float32"):
        _, net = pair("cuda", dtype)
        x, t = cupy.asarray(rng.random((4, 12)).astype(dtype)), cupy.asarray([0, 1, 2, 0])
        net.numerical_gradient(x, t)
        with cupy_standin.counting() as c:
            grads = net.numerical_gradient(x, t)
        assert c.foreign_allocations == 0 and c.host_waits == 0, c
        assert all(isinstance(g, cupy.ndarray) and g.dtype == np.float64
                   for g in grads.values())


def test_one_numba_stream_object_per_cupy_stream() -> None:
    a = cupy.zeros(3)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        first, second = fused._stream(a), fused._stream(a)
    assert first is second and first.ptr == stream.ptr
    assert fused._stream(a) == 0  # the legacy stream


def test_the_multilayer_numerical_gradient_dispatches_on_the_arrays(rng) -> None:
    weights = [rng.standard_normal((6, 4)), rng.standard_normal((4, 3))]
    biases = [0.1 * rng.standard_normal(4), 0.1 * rng.standard_normal(3)]
    x, t = rng.random((3, 6)), np.array([0, 2, 1])
    options = {"activation": "sigmoid", "weight_decay_lambda": 0.1}
    cpu_w, cpu_b = fused.mlp_numerical_gradient(weights, biases, x, t, **options)
    gpu_w, gpu_b = fused.mlp_numerical_gradient(
        [cupy.asarray(w) for w in weights], [cupy.asarray(b) for b in biases],
        cupy.asarray(x), cupy.asarray(t), **options)
    for got, want in zip(gpu_w + gpu_b, cpu_w + cpu_b, strict=True):
        assert isinstance(got, cupy.ndarray) and isinstance(want, np.ndarray)
        np.testing.assert_allclose(host(got), want, rtol=0, atol=1e-12)


def test_use_device_and_to_device_across_gpus(rng) -> None:
    a = rng.random(3)
    on1 = backend.to_device(a, "cuda:1")
    assert on1.device.id == 1
    on0 = backend.to_device(on1, "cuda:0")
    assert on0.device.id == 0 and host(on0).tolist() == a.tolist()


def test_the_books_numerical_gradient_on_cupy_waits_for_nothing() -> None:
    """CuPy has no nditer: the book's loop runs element by element, all on the device."""
    from xpnet.gradient import numerical_gradient

    def f(v):
        return (v**2).sum()

    x = np.array([[3.0, -4.0], [0.5, 2.0]])
    on_gpu = cupy.asarray(x)
    with cupy_standin.counting() as c:
        got = numerical_gradient(f, on_gpu)
    assert c.host_waits == 0 and c.d2h_copies == 0 and c.h2d_copies == 0
    np.testing.assert_allclose(host(got), numerical_gradient(f, x.copy()), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(host(on_gpu), x)  # restored
