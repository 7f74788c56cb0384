"""Stream capture with CUDA's rules, and graphs that replay on the same buffers."""

from __future__ import annotations

import gc

import cupy
import cupy_standin
import numpy as np
import pytest
from cupy.cuda import runtime


@pytest.fixture
def stream():
    return cupy.cuda.Stream(non_blocking=True)


def make_step(seed: int = 3):
    """A tiny SGD step on a linear model, written for capture: out= and in place only."""
    rng = np.random.default_rng(seed)
    b = {"x": rng.standard_normal((8, 5)), "w": rng.standard_normal((5, 3)),
         "y": rng.standard_normal((8, 3))}
    d = {k: cupy.asarray(v) for k, v in b.items()}
    d["pred"], d["err"] = cupy.empty((8, 3)), cupy.empty((8, 3))
    d["grad"], d["loss"] = cupy.empty((5, 3)), cupy.empty(())

    def step() -> None:
        cupy.matmul(d["x"], d["w"], out=d["pred"])
        cupy.subtract(d["pred"], d["y"], out=d["err"])
        cupy.matmul(d["x"].T, d["err"], out=d["grad"])
        d["grad"] *= 0.01
        d["w"] -= d["grad"]
        cupy.multiply(d["err"], d["err"], out=d["err"])
        d["err"].sum(out=d["loss"])

    return d, step


def test_capture_records_without_running_and_replay_equals_eager(stream) -> None:
    eager, eager_step = make_step()
    for _ in range(5):
        eager_step()
    graphed, step = make_step()
    w0 = graphed["w"].get()
    with stream:
        stream.begin_capture()
        assert stream.is_capturing()
        step()
        graph = stream.end_capture()
    assert not stream.is_capturing()
    np.testing.assert_array_equal(graphed["w"].get(), w0)  # capture runs nothing
    with cupy_standin.counting() as c:
        for _ in range(5):
            graph.launch(stream)
    assert (c.graph_launches, c.graph_kernels, c.kernel_launches) == (5, 35, 0)
    assert c.host_waits == 0 and c.allocations == 0
    for key in ("w", "loss", "grad"):
        assert graphed[key].get().tobytes() == eager[key].get().tobytes(), key


def test_graph_cannot_be_made_by_hand() -> None:
    with pytest.raises(NotImplementedError, match="must be created via stream capture"):
        cupy.cuda.Graph()


def test_no_capture_on_the_legacy_stream() -> None:
    with pytest.raises(RuntimeError, match=r"cannot capture on the default \(legacy\) stream"):
        cupy.cuda.Stream.null.begin_capture()


@pytest.mark.parametrize("read", [lambda a: a.get(), lambda a: float(a[0]),
                                  lambda a: bool(a[0]), lambda a: a.tolist(),
                                  lambda a: cupy.asnumpy(a), lambda a: cupy.flatnonzero(a)])
def test_host_reads_while_capturing_raise(stream, read) -> None:
    a = cupy.arange(3.0)
    with stream:
        stream.begin_capture()
        with pytest.raises(RuntimeError, match="capturing, so D2H transfers are disallowed"):
            read(a)
        stream.end_capture()  # CuPy refused before CUDA saw it: the capture is still valid


@pytest.mark.parametrize("write", [lambda a: cupy.asarray(np.ones(3)),
                                   lambda a: a.set(np.ones(3)),
                                   lambda a: a.__setitem__(slice(None), np.ones(3))])
def test_uploads_while_capturing_raise(stream, write) -> None:
    a = cupy.arange(3.0)
    with stream:
        stream.begin_capture()
        with pytest.raises(RuntimeError, match="capturing, so H2D transfers are disallowed"):
            write(a)
        stream.end_capture()


@pytest.mark.parametrize("sync", [lambda s: s.synchronize(),
                                  lambda s: cupy.cuda.Device().synchronize(),
                                  lambda s: runtime.deviceSynchronize()])
def test_synchronizing_while_capturing_voids_the_capture(stream, sync) -> None:
    with stream:
        stream.begin_capture()
        with pytest.raises(runtime.CUDARuntimeError,
                           match="cudaErrorStreamCaptureUnsupported"):
            sync(stream)
        with pytest.raises(runtime.CUDARuntimeError,
                           match="cudaErrorStreamCaptureInvalidated"):
            stream.end_capture()
    assert not stream.is_capturing()


def test_allocating_while_capturing_fails_loudly(stream) -> None:
    a = cupy.arange(3.0)
    with stream:
        stream.begin_capture()
        for allocate in (lambda: a + 1, lambda: cupy.zeros(3), lambda: a.sum(),
                         lambda: cupy.empty_like(a)):
            with pytest.raises(cupy_standin.StandinRuleError, match="allocation of"):
                allocate()
        with pytest.raises(runtime.CUDARuntimeError, match="Invalidated"):
            stream.end_capture()


def test_legacy_stream_work_while_a_blocking_stream_captures_is_refused() -> None:
    s = cupy.cuda.Stream()  # blocking: the legacy stream would wait for it
    a = cupy.arange(3.0)
    s.begin_capture()
    with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorStreamCaptureImplicit"):
        cupy.add(a, 1, out=a)  # the current stream is still the legacy one
    with pytest.raises(runtime.CUDARuntimeError, match="Invalidated"):
        s.end_capture()


def test_a_graph_whose_buffers_were_freed_is_not_launched(stream) -> None:
    a, b = cupy.arange(3.0), cupy.ones(3)
    with stream:
        stream.begin_capture()
        cupy.add(a, b, out=a)
        graph = stream.end_capture()
    graph.launch(stream)
    np.testing.assert_array_equal(a.get(), [1.0, 2.0, 3.0])
    del b
    gc.collect()
    with pytest.raises(cupy_standin.StandinRuleError, match="freed after the capture"):
        graph.launch(stream)
