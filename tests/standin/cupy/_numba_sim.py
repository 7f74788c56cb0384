"""Numba's CUDA simulator, taught what the real numba-cuda has for CuPy's arrays.

Installed by ``import cupy`` (the stand-in) when NUMBA_ENABLE_CUDASIM=1, so xpnet's CUDA
kernels run unchanged: ``numba.cuda.as_cuda_array`` and ``is_cuda_array`` (a zero-copy
view of a stand-in array; its device pointers are host pointers), ``external_stream``
(a CuPy stream's pointer), and ``__cuda_array_interface__`` on the simulator's arrays (so
``cupy.asarray`` wraps them without a copy). Every kernel launch is counted, goes to its
stream, and is recorded when that stream captures; Numba's own allocations are counted
as outside CuPy's pool.
"""

from __future__ import annotations

import functools
from typing import Any

from . import _standin as sd


class _ExternalStream:
    """What ``numba.cuda.external_stream(ptr)`` gives: a stream Numba did not make."""

    def __init__(self, ptr: int) -> None:
        self.handle = ptr
        self.ptr = ptr

    def synchronize(self) -> None:
        state = sd.stream_state(self.ptr)
        if state.capturing:
            raise sd.fail_capture(state, 900)
        sd.counts.host_waits += 1

    def __repr__(self) -> str:
        return f"<External CUDA stream {self.ptr:#x} (stand-in)>"


def install() -> None:
    from numba import config, cuda

    if not config.ENABLE_CUDASIM or getattr(cuda, "_xpnet_standin", False):
        return
    from numba.cuda.simulator import kernel as simkernel
    from numba.cuda.simulator.cudadrv import devicearray as simarray

    from ._core import _check_device, foreign_array, host_write, ndarray

    fake = simarray.FakeCUDAArray

    def interface(self: Any) -> dict:
        a = self._ary
        return {"shape": a.shape, "typestr": a.dtype.str, "version": 3,
                "strides": None if a.flags.c_contiguous else a.strides,
                "data": (a.__array_interface__["data"][0], False), "stream": None}

    fake.__cuda_array_interface__ = property(interface)

    def as_cuda_array(obj: Any, sync: bool = True) -> Any:
        if isinstance(obj, ndarray):
            return fake(obj._a)
        if simarray.is_cuda_ndarray(obj):
            return obj
        if hasattr(obj, "__cuda_array_interface__"):
            return fake(foreign_array(obj)._a)
        raise TypeError("Expected an object with __cuda_array_interface__")

    def is_cuda_array(obj: Any) -> bool:
        return hasattr(obj, "__cuda_array_interface__")

    def counted(make, copies: bool = False):
        @functools.wraps(make)
        def allocate(*args: Any, **kwargs: Any) -> Any:
            result = make(*args, **kwargs)
            sd.refuse_allocation_while_capturing(result.nbytes)
            if copies:
                host_write(result.nbytes)
            sd.counts.foreign_allocations += 1
            sd.counts.foreign_bytes += result.nbytes
            return result
        return allocate

    original_getitem = simkernel.FakeCUDAKernel.__getitem__
    original_call = simkernel.FakeCUDAKernel.__call__

    def getitem(self: Any, configuration: tuple) -> Any:
        original_getitem(self, configuration)
        self._standin_stream = configuration[2] if len(configuration) > 2 else 0
        return self

    def call(self: Any, *args: Any) -> Any:
        if self._device:
            return original_call(self, *args)
        stream = getattr(self, "_standin_stream", 0)
        self._standin_stream = 0
        ptr = stream if isinstance(stream, int) else getattr(stream, "ptr", 0)
        state = sd.stream_state(ptr)
        device = sd.current_device
        args = tuple(_to_fake(a, device) for a in args)
        grid, block, shared = self.grid_dim, self.block_dim, self.dynshared_size

        def kernel() -> None:
            self.grid_dim, self.block_dim, self.dynshared_size = grid, block, shared
            original_call(self, *args)

        sd.submit(kernel, state)

    def _to_fake(a: Any, device: int) -> Any:
        if isinstance(a, ndarray):
            _check_device(a, device)
            sd.note_buffer(a._mem)
            return fake(a._a)
        return a

    simkernel.FakeCUDAKernel.__getitem__ = getitem
    simkernel.FakeCUDAKernel.__call__ = call
    cuda.as_cuda_array = as_cuda_array
    cuda.is_cuda_array = is_cuda_array
    cuda.external_stream = _ExternalStream
    cuda.device_array = counted(simarray.device_array)
    cuda.device_array_like = counted(simarray.device_array_like)
    cuda.to_device = counted(simarray.to_device, copies=True)
    cuda._xpnet_standin = True
