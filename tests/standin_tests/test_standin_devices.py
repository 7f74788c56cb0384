"""Two devices, streams and the pool, with CuPy 14's rules and messages."""

from __future__ import annotations

import gc

import cupy
import cupy_standin
import numpy as np
import pytest
from cupy.cuda import runtime

PEER = (r"The device where the array resides \(1\) is different from the current device "
        r"\(0\)\. Peer access is unavailable between these devices\.")


def test_two_devices_and_device_contexts() -> None:
    assert runtime.getDeviceCount() == 2
    assert cupy.cuda.Device().id == 0
    with cupy.cuda.Device(1) as dev:
        assert dev.id == 1 and runtime.getDevice() == 1
        with cupy.cuda.Device(0):
            assert runtime.getDevice() == 0
        b = cupy.ones(3)
    assert runtime.getDevice() == 0
    assert b.device.id == 1 and b.device == cupy.cuda.Device(1)
    assert cupy.zeros(2).device.id == 0
    free, total = cupy.cuda.Device(1).mem_info
    assert 0 < free <= total


def test_a_device_that_does_not_exist() -> None:
    with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorInvalidDevice"):
        with cupy.cuda.Device(2):
            pass
    assert runtime.getDevice() == 0


def test_kernels_refuse_arrays_of_another_device_than_the_current() -> None:
    with cupy.cuda.Device(1):
        b = cupy.arange(4.0)
    for op in (lambda: b + 1, lambda: cupy.exp(b), lambda: b.sum(), lambda: b @ b,
               lambda: cupy.zeros(4) + b, lambda: b[cupy.arange(2)]):
        with pytest.raises(ValueError, match=PEER):
            op()
    with cupy.cuda.Device(1):
        assert float((b + 1).sum()) == 10.0
    np.testing.assert_array_equal(b.get(), np.arange(4.0))  # get works from any device


def test_asarray_copies_between_devices_onto_the_current_one() -> None:
    with cupy.cuda.Device(1):
        b = cupy.arange(4.0)
    with cupy_standin.counting() as c:
        a = cupy.asarray(b)
    assert a.device.id == 0 and c.d2d_bytes == b.nbytes and c.h2d_bytes == 0
    with cupy.cuda.Device(1):
        assert cupy.asarray(b) is b


def test_streams_belong_to_their_device() -> None:
    s = cupy.cuda.Stream(non_blocking=True)
    assert cupy.cuda.get_current_stream() == cupy.cuda.Stream.null
    with s:
        assert cupy.cuda.get_current_stream() == s
        assert cupy.cuda.get_current_stream().ptr != 0
    assert cupy.cuda.get_current_stream().ptr == 0
    with cupy.cuda.Device(1):
        with pytest.raises(RuntimeError, match=r"created on \(0\) does not match with the "
                                               r"current device \(1\)"):
            with s:
                pass


def test_synchronize_is_a_host_wait() -> None:
    with cupy_standin.counting() as c:
        cupy.cuda.Device(0).synchronize()
        cupy.cuda.Stream(non_blocking=True).synchronize()
        cupy.cuda.get_current_stream().synchronize()
    assert c.host_waits == 3


def test_the_default_pool_counts_blocks_in_use_and_cached() -> None:
    pool = cupy.get_default_memory_pool()
    gc.collect()
    pool.free_all_blocks()
    used = pool.used_bytes()
    with cupy_standin.counting() as c:
        x = cupy.empty(1000, dtype=np.float64)  # 8000 bytes: 8192 in 512-byte units
    assert c.allocations == 1 and pool.used_bytes() == used + 8192
    del x
    gc.collect()
    assert pool.used_bytes() == used and pool.total_bytes() >= used + 8192
    pool.free_all_blocks()
    assert pool.total_bytes() == used
    with cupy.cuda.Device(1):
        assert pool.used_bytes() == 0 or pool.used_bytes() != used + 8192


def test_counters_reset() -> None:
    cupy.ones(3).sum().get()
    assert cupy_standin.counters().host_waits > 0
    cupy_standin.reset_counters()
    assert cupy_standin.counters() == cupy_standin.Counters()
