"""Fixtures for the benchmark suites: the real data and the book's mini-batch."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from support import load_fashion
from threadpoolctl import threadpool_limits


def pytest_benchmark_update_machine_info(config, machine_info) -> None:
    """Name the GPU in the record, so a table printed elsewhere says what ran it."""
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        machine_info["gpu"] = f"GPU {props['name'].decode()} (CuPy {cupy.__version__})"
    except Exception:
        machine_info["gpu"] = None


@pytest.fixture(autouse=True)
def _one_thread_when_not_timing(request):
    """The correctness pass (--benchmark-disable) runs BLAS, OpenMP and Numba on one thread.

    It times nothing, and on a busy machine threads that wait for each other at every
    small matrix product make it several times slower; timing runs keep every thread.
    """
    if "benchmark" not in request.fixturenames or request.getfixturevalue("benchmark").enabled:
        yield
        return
    numba_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        numba.set_num_threads(numba_threads)


@pytest.fixture(scope="session")
def fashion():
    """Real Fashion-MNIST, (x_train, t_train), (x_test, t_test): float32 / 255, uint8 labels."""
    return load_fashion()


@pytest.fixture(scope="session")
def batch100(fashion):
    """The book's mini-batch: 100 real training images (float64) and their labels."""
    (x_train, t_train), _ = fashion
    idx = np.random.default_rng(0).integers(0, x_train.shape[0], size=100)
    return x_train[idx].astype(np.float64), t_train[idx].astype(np.int64)
