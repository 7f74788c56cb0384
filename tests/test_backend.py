"""The device switch: parsing, laziness, errors, and NumPy/CuPy agreement on a GPU."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

from xpnet import backend
from xpnet.backend import DeviceError

HAVE_CUPY = importlib.util.find_spec("cupy") is not None


def test_cpu_is_the_default_and_its_module_is_numpy() -> None:
    assert str(backend.get_device()) == "cpu"
    assert backend.array_module(backend.get_device()) is np


@pytest.mark.parametrize(("spec", "name"), [
    ("cpu", "cpu"), (" CUDA ", "cuda:0"), ("cuda:", "cuda:0"), ("cuda:03", "cuda:3"),
    ("Auto", "auto"), (None, "cpu"),
])
def test_device_syntax_alone_checks_no_device(spec, name) -> None:
    assert backend.device_name(spec) == name  # no CuPy here, yet cuda names are valid


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "", "cpu:0"])
def test_device_syntax_refuses_unknown_names(spec) -> None:
    with pytest.raises(DeviceError, match="valid values are cpu, cuda, cuda:N"):
        backend.device_name(spec)


def test_env_var_is_read_when_first_needed(monkeypatch) -> None:
    monkeypatch.setenv("XPNET_DEVICE", "CPU")
    assert backend.get_device() == backend.CPU


def test_unknown_device_names_the_valid_ones(monkeypatch) -> None:
    for bad in ("gpu", "cuda:x", "cpu:0", ""):
        with pytest.raises(DeviceError, match=r"valid values are cpu, cuda, cuda:N"):
            backend.parse_device(bad if bad else "  ")
    monkeypatch.setenv("XPNET_DEVICE", "tpu")
    with pytest.raises(DeviceError, match="'tpu'"):
        backend.get_device()


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_cuda_without_cupy_says_what_is_missing() -> None:
    with pytest.raises(DeviceError, match=r"CuPy is not installed.*\[cuda13\]") as err:
        backend.parse_device("cuda:1")
    message = str(err.value)
    assert "\n" not in message
    # xpnet is not on PyPI: the source checkout's form is the one offered
    assert "pip install -e '.[cuda13]'" in message and "'xpnet[cuda13]'" not in message
    assert message.endswith("use the CPU (XPNET_DEVICE=cpu)")


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_a_missing_cuda_error_carries_fields_to_reword_it() -> None:
    """The command line names its flag, not the API's variable (issue 19)."""
    with pytest.raises(DeviceError) as err:
        backend.parse_device("cuda")
    e = err.value
    assert e.reason.startswith("CuPy is not installed") and e.install == backend.INSTALL_CUPY
    assert e.cpu_choice == "XPNET_DEVICE=cpu"
    worded = backend.cuda_missing_sentence(e, "--device cpu")
    assert worded == str(e).replace("XPNET_DEVICE=cpu", "--device cpu")
    assert worded.endswith("or use the CPU (--device cpu)")


def test_no_usable_gpu_is_worded_from_the_same_fields() -> None:
    e = backend.cuda_missing("no usable CUDA device was found (driver too old)")
    assert str(e) == ("CUDA was requested but no usable CUDA device was found (driver too "
                      "old); use the CPU (XPNET_DEVICE=cpu)")
    assert backend.cuda_missing_sentence(e, "--device cpu").endswith("(--device cpu)")


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_auto_falls_back_to_cpu_and_says_so_once() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert backend.parse_device("auto") == backend.CPU
        assert backend.parse_device("auto") == backend.CPU
    assert len(caught) == 1
    message = str(caught[0].message)
    # It already fell back: it says why, not how to fall back.
    assert message.startswith("device auto: using the CPU: CuPy is not installed")
    assert "pip" not in message and "cpu)" not in message and "(" not in message.split(":")[1]


def test_use_device_restores_the_previous_device(monkeypatch) -> None:
    # A CUDA device object is never used here, only compared: no GPU needed.
    previous = backend.Device("cuda", 3)
    monkeypatch.setattr(backend, "_current", previous)
    with backend.use_device("cpu") as device:
        assert backend.get_device() is device is backend.CPU
    assert backend.get_device() is previous
    with pytest.raises(KeyError), backend.use_device("cpu"):
        raise KeyError("an error inside the block")
    assert backend.get_device() is previous
    monkeypatch.setattr(backend, "_current", None)
    with backend.use_device("cpu"):
        pass
    assert backend._current is None  # still unresolved: XPNET_DEVICE is read when needed


def test_numpy_helpers_on_the_cpu(rng) -> None:
    a = rng.normal(size=(3, 2))
    assert backend.get_array_module(a, [1, 2], 3.0) is np
    assert backend.asnumpy(a) is a
    assert backend.to_device(a, "cpu") is a
    backend.synchronize()  # a no-op on the CPU


@pytest.mark.cuda
def test_cupy_in_cupy_out_and_same_numbers(rng) -> None:
    import cupy

    from xpnet import functions as F

    x = rng.normal(scale=3, size=(64, 10))
    t = rng.integers(0, 10, size=64)
    gx = backend.to_device(x, "cuda")
    assert isinstance(gx, cupy.ndarray)
    assert backend.get_array_module(gx) is cupy
    for f in (F.sigmoid, F.sigmoid_grad, F.relu, F.relu_grad, F.softmax, F.step_function):
        out = f(gx)
        assert isinstance(out, cupy.ndarray), f.__name__
        np.testing.assert_allclose(backend.asnumpy(out), f(x), rtol=1e-12, err_msg=f.__name__)
    y = F.softmax(x)
    gy = backend.to_device(y, "cuda")
    np.testing.assert_allclose(
        float(F.cross_entropy_error(gy, backend.to_device(t, "cuda"))),
        F.cross_entropy_error(y, t),
        rtol=1e-12,
    )
    assert float(F.sum_squared_error(gy, gy * 0)) == pytest.approx(F.sum_squared_error(y, 0 * y))


@pytest.mark.cuda
def test_cuda_device_selection_and_numerical_gradient_on_cupy() -> None:
    import cupy

    from xpnet.gradient import numerical_gradient

    with backend.use_device("cuda:0") as device:
        assert backend.array_module(device) is cupy
        x = backend.to_device(np.array([[3.0, 4.0], [1.0, -2.0]]))
        grad = numerical_gradient(lambda v: (v**2).sum(), x)
        assert isinstance(grad, cupy.ndarray)
        np.testing.assert_allclose(backend.asnumpy(grad), 2 * backend.asnumpy(x), atol=1e-8)
        backend.synchronize(device)
    with pytest.raises(DeviceError, match="does not exist"):
        backend.parse_device("cuda:999")


class _Stream:
    """A stream that says which calls ran inside it and what a capture recorded."""

    def __init__(self) -> None:
        self.entered, self.capturing, self.log = 0, False, []

    def __enter__(self) -> None:
        self.entered += 1

    def __exit__(self, *exc) -> None:
        self.entered -= 1

    def begin_capture(self) -> None:
        self.capturing = True

    def end_capture(self) -> object:
        self.capturing = False
        stream = self

        class Graph:
            def launch(self, on) -> None:
                stream.log.append(("launch", on is stream))

        return Graph()


def test_a_graphed_step_runs_eager_and_captured_calls_on_its_own_stream() -> None:
    # a caller that forgets `with stream:` still gets every kernel on the step's stream
    stream = _Stream()

    def step() -> None:
        stream.log.append(("step", stream.entered > 0, stream.capturing))

    graphed = backend.GraphedStep(stream, step, graph=True)
    for _ in range(3):
        graphed()
    assert stream.log == [("step", True, False), ("step", True, True), ("launch", True),
                          ("launch", True)]
    assert stream.entered == 0
    eager = backend.GraphedStep(stream, step, graph=False)
    stream.log.clear()
    eager()
    assert stream.log == [("step", True, False)]
