"""xpnet's CUDA kernels take the stand-in's arrays through Numba's simulator, unchanged."""

from __future__ import annotations

import os

import cupy
import cupy_standin
import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 before numba is imported", allow_module_level=True)

from numba import cuda  # noqa: E402

from xpnet import fused  # noqa: E402


@cuda.jit
def twice(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        y[i] = 2 * x[i]


def test_simulator_arrays_are_wrapped_without_a_copy() -> None:
    host = cuda.device_array(4)
    host[:] = 1.5
    with cupy_standin.counting() as c:
        wrapped = cupy.asarray(host)
    assert c.h2d_bytes == 0 and c.allocations == 0
    np.testing.assert_array_equal(wrapped.get(), np.full(4, 1.5))


def test_numba_allocations_are_counted_outside_the_pool() -> None:
    with cupy_standin.counting() as c:
        cuda.device_array((3, 2), np.float64)
    assert (c.foreign_allocations, c.foreign_bytes, c.allocations) == (1, 48, 0)


def test_fused_cross_entropy_on_the_standin_equals_the_cpu() -> None:
    rng = np.random.default_rng(11)
    logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    loss, grad = fused.cross_entropy_with_grad(logits, labels)
    with cupy_standin.counting() as c:
        dloss, dgrad = fused.cross_entropy_with_grad(cupy.asarray(logits), cupy.asarray(labels))
    assert isinstance(dloss, cupy.ndarray) and c.kernel_launches >= 1
    assert c.foreign_allocations == 0
    np.testing.assert_allclose(dloss.get(), loss, rtol=1e-15)
    np.testing.assert_allclose(dgrad.get(), grad, rtol=0, atol=1e-16)


def test_numba_kernels_on_a_capturing_stream_are_recorded_and_replayed() -> None:
    stream = cupy.cuda.Stream(non_blocking=True)
    x, y = cupy.arange(4.0), cupy.zeros(4)
    with stream:
        stream.begin_capture()
        twice[1, 32, cuda.external_stream(stream.ptr)](cuda.as_cuda_array(x),
                                                       cuda.as_cuda_array(y))
        cupy.add(x, 1, out=x)
        graph = stream.end_capture()
    np.testing.assert_array_equal(y.get(), np.zeros(4))
    graph.launch(stream)
    np.testing.assert_array_equal(y.get(), [0.0, 2.0, 4.0, 6.0])
    graph.launch(stream)
    np.testing.assert_array_equal(y.get(), [2.0, 4.0, 6.0, 8.0])
