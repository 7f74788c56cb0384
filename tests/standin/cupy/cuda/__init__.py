"""``cupy.cuda`` for the stand-in: devices, streams, capture, graphs, events and the pool."""

from __future__ import annotations

import time as _time

from .. import _standin as _sd
from .._core import MemoryPointer
from . import runtime

__all__ = ["Device", "Stream", "ExternalStream", "Event", "Graph", "MemoryPool",
           "MemoryPointer", "get_current_stream", "get_device_id", "is_available",
           "get_elapsed_time", "runtime"]


def is_available() -> bool:
    return True


def get_device_id() -> int:
    return _sd.current_device


class Device:
    """A CUDA device; ``with Device(i):`` makes it current for the block."""

    def __init__(self, device=None):
        self.id = _sd.current_device if device is None else int(device)
        self._previous: list[int] = []

    def __int__(self):
        return self.id

    def __enter__(self):
        self._previous.append(_sd.current_device)
        if self.id != _sd.current_device:
            _sd.set_device(self.id)
        return self

    def __exit__(self, *exc):
        _sd.set_device(self._previous.pop())

    def __repr__(self):
        return f"<CUDA Device {self.id}>"

    def __eq__(self, other):
        return isinstance(other, Device) and self.id == other.id

    def __hash__(self):
        return hash(self.id)

    def use(self):
        _sd.set_device(self.id)
        return self

    def synchronize(self):
        previous = _sd.current_device
        try:
            _sd.set_device(self.id)
            runtime.deviceSynchronize()
        finally:
            _sd.set_device(previous)

    @property
    def compute_capability(self):
        _sd.check_device_id(self.id)
        return "90"

    @property
    def mem_info(self):
        previous = _sd.current_device
        try:
            _sd.set_device(self.id)
            return runtime.memGetInfo()
        finally:
            _sd.set_device(previous)

    @property
    def pci_bus_id(self):
        _sd.check_device_id(self.id)
        return f"0000:{self.id:02x}:00.0"


def _check_stream_device(device_id: int) -> int:
    current = _sd.current_device
    if device_id == -1:
        return current
    if device_id != current:
        raise RuntimeError(f"The device that the stream is created on ({device_id}) does not "
                           f"match with the current device ({current})")
    return device_id


class _BaseStream:
    def __init__(self, state: _sd.StreamState, device_id: int) -> None:
        self._state = state
        self.ptr = state.ptr
        self.device_id = device_id

    def __eq__(self, other):
        return isinstance(other, _BaseStream) and self.ptr == other.ptr

    def __hash__(self):
        return self.ptr

    def __repr__(self):
        return f"<{type(self).__name__} {self.ptr} (device {self.device_id})>"

    def __cuda_stream__(self):
        return (0, self.ptr)

    def __enter__(self):
        device_id = _check_stream_device(self.device_id)
        _sd.current_streams[device_id].append(self)
        self._entered_on = getattr(self, "_entered_on", []) + [device_id]
        return self

    def __exit__(self, *exc):
        _sd.current_streams[self._entered_on.pop()].pop()

    def use(self):
        device_id = _check_stream_device(self.device_id)
        stack = _sd.current_streams[device_id]
        if stack:
            stack[-1] = self
        else:
            stack.append(self)
        return self

    @property
    def done(self):
        if self._state.capturing:
            raise _sd.fail_capture(self._state, 900)
        return True

    def synchronize(self):
        state = self._state
        if state.capturing:
            raise _sd.fail_capture(state, 900)
        if state is _sd.LEGACY:
            runtime.streamIsCapturing(0)  # refused while a blocking stream captures
        _sd.counts.host_waits += 1

    def record(self, event=None):
        event = Event() if event is None else event
        event._recorded = _time.perf_counter()
        event._capturing = self._state.capturing
        return event

    def wait_event(self, event):
        pass  # the stand-in runs every stream in order on the host

    def begin_capture(self, mode=None):
        if self.ptr in (0, 1):
            raise RuntimeError("cannot capture on the default (legacy) stream")
        state = self._state
        if state.capturing:
            raise _sd.CUDARuntimeError(401)
        state.recording, state.buffers, state.invalidated = [], [], False

    def end_capture(self):
        state = self._state
        if not state.capturing:
            raise _sd.CUDARuntimeError(401)
        kernels, buffers, invalid = state.recording, state.buffers, state.invalidated
        state.recording, state.buffers, state.invalidated = None, [], False
        if invalid:
            raise _sd.CUDARuntimeError(901)
        graph = Graph.__new__(Graph)
        graph._kernels, graph._buffers = kernels, buffers
        return graph

    def is_capturing(self):
        return runtime.streamIsCapturing(self.ptr)

    @property
    def is_non_blocking(self):
        return not self._state.blocking

    @property
    def priority(self):
        return 0


class Stream(_BaseStream):
    """A CUDA stream: ``with s:`` or ``s.use()`` makes it current on its device."""

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        if null:
            super().__init__(_sd.LEGACY, -1)
        elif ptds:
            super().__init__(_sd.PER_THREAD, -1)
        else:
            device = _sd.current_device
            super().__init__(_sd.new_stream(device, blocking=not non_blocking), device)


Stream.null = Stream(null=True)
Stream.ptds = Stream(ptds=True)


class ExternalStream(_BaseStream):
    """A stream made by another library, known by its pointer."""

    def __init__(self, ptr, device_id=-1):
        try:
            state = _sd.stream_state(ptr)
        except _sd.CUDARuntimeError:
            state = _sd.StreamState(ptr, device_id, True)
            _sd._streams[ptr] = state
        super().__init__(state, device_id)


def get_current_stream(device_id=-1):
    device_id = _sd.current_device if device_id == -1 else device_id
    stack = _sd.current_streams[device_id]
    return stack[-1] if stack else Stream.null


class Event:
    """A CUDA event; the stand-in's times are the host's (never a GPU figure)."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        if interprocess and not disable_timing:
            raise ValueError("Timing must be disabled for interprocess events")
        self._recorded = None
        self._capturing = False

    @property
    def done(self):
        return True

    def record(self, stream=None):
        (get_current_stream() if stream is None else stream).record(self)

    def synchronize(self):
        if self._capturing:
            raise _sd.CUDARuntimeError(907)
        _sd.counts.host_waits += 1


def get_elapsed_time(start_event, end_event):
    end_event.synchronize()
    return (end_event._recorded - start_event._recorded) * 1000.0


class Graph:
    """Work captured on a stream; ``launch`` replays it on the same buffers."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("currently this class cannot be initiated by the user and "
                                  "must be created via stream capture")

    def launch(self, stream=None):
        for ref in self._buffers:
            if ref() is None:
                raise _sd.StandinRuleError(
                    "stand-in rule: this graph writes into a buffer that was freed after "
                    "the capture (CuPy's pool may have handed it to another array): keep "
                    "every array the captured work uses alive as long as the graph")
        state = (get_current_stream() if stream is None else stream)._state
        kernels = self._kernels

        def replay() -> None:
            _sd.counts.graph_kernels += len(kernels)
            for kernel in kernels:
                kernel()

        if not state.capturing:
            _sd.counts.graph_launches += 1
        _sd.submit(replay, state, kernel=False)

    def upload(self, stream=None):
        pass

    def debug_dot_str(self, flags=0):
        nodes = "\n".join(f'  k{i} [label="kernel {i}"];' for i in range(len(self._kernels)))
        edges = "\n".join(f"  k{i} -> k{i + 1};" for i in range(len(self._kernels) - 1))
        return f"digraph stand_in_graph {{\n{nodes}\n{edges}\n}}\n"


class MemoryPool:
    """CuPy's memory pool, per device: the stand-in's bookkeeping of the blocks it holds."""

    def __init__(self, allocator=None):
        self._limit = 0

    def _pool(self):
        return _sd.pools[_sd.current_device]

    def malloc(self, size):
        import numpy

        from .._core import new_array

        arr = new_array(numpy.empty(int(size), dtype=numpy.uint8))
        return arr.data

    def used_bytes(self):
        return self._pool().used

    def free_bytes(self):
        return self._pool().free

    def total_bytes(self):
        pool = self._pool()
        return pool.used + pool.free

    def n_free_blocks(self):
        return sum(self._pool().free_blocks.values())

    def free_all_blocks(self, stream=None):
        self._pool().free_all_blocks()

    def free_all_free(self):
        self.free_all_blocks()

    def set_limit(self, size=None, fraction=None):
        self._limit = int(size or 0)

    def get_limit(self):
        return self._limit
