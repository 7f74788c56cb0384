"""The stand-in's machine: two simulated devices, their streams, capture, pool and counters.

Everything here runs on the host, synchronously: a "kernel" is a Python closure over NumPy
views of device buffers. Eagerly it runs at once; while the current stream captures it is
recorded instead (CUDA runs nothing during capture), and ``Graph.launch`` runs the
recorded closures again on the same buffers.
"""

from __future__ import annotations

import dataclasses
import itertools
import weakref
from collections.abc import Callable

DEVICE_COUNT = 2
DEVICE_MEMORY = 141 * 10**9  # an H200's HBM, for mem_info; nothing is really reserved
ALLOCATION_UNIT = 512  # CuPy's pool rounds every block up to this many bytes


class StandinRuleError(RuntimeError):
    """A rule of the stand-in that is stricter than CuPy (see cupy_standin)."""


@dataclasses.dataclass
class Counters:
    """What the host asked of the devices. Bytes are payload bytes; launches are kernels.

    kernel_launches: kernels launched from the host (CuPy ops and Numba kernels), eager.
    graph_launches: ``Graph.launch`` calls; graph_kernels: kernels replayed inside them.
    host_waits: the host waited for a device (get, float, bool, item, synchronize, ...).
    h2d_copies/h2d_bytes, d2h_copies/d2h_bytes: host-device copies; d2d_bytes between
    devices. allocations/allocated_bytes: blocks taken from CuPy's pool (reused or new);
    foreign_allocations/foreign_bytes: device memory made outside it (Numba's allocator).
    """

    kernel_launches: int = 0
    graph_launches: int = 0
    graph_kernels: int = 0
    host_waits: int = 0
    h2d_copies: int = 0
    h2d_bytes: int = 0
    d2h_copies: int = 0
    d2h_bytes: int = 0
    d2d_bytes: int = 0
    allocations: int = 0
    allocated_bytes: int = 0
    foreign_allocations: int = 0
    foreign_bytes: int = 0

    def __sub__(self, other: Counters) -> Counters:
        return Counters(**{f.name: getattr(self, f.name) - getattr(other, f.name)
                           for f in dataclasses.fields(self)})


counts = Counters()


def reset_counters() -> None:
    global counts
    for field in dataclasses.fields(counts):
        setattr(counts, field.name, 0)


# ------------------------------------------------------------------------ errors

ERROR_NAMES = {
    1: ("cudaErrorInvalidValue", "invalid argument"),
    101: ("cudaErrorInvalidDevice", "invalid device ordinal"),
    400: ("cudaErrorInvalidResourceHandle", "invalid resource handle"),
    401: ("cudaErrorIllegalState", "the operation cannot be performed in the present state"),
    900: ("cudaErrorStreamCaptureUnsupported", "operation not permitted when stream is capturing"),
    901: ("cudaErrorStreamCaptureInvalidated",
          "operation failed due to a previous error during capture"),
    907: ("cudaErrorCapturedEvent",
          "operation not permitted on an event last recorded in a capturing stream"),
    906: ("cudaErrorStreamCaptureImplicit",
          "operation would make the legacy stream depend on a capturing blocking stream"),
}


class CUDARuntimeError(RuntimeError):
    """Real CuPy's ``cupy.cuda.runtime.CUDARuntimeError``: ``str`` is "name: description"."""

    def __init__(self, status: int) -> None:
        self.status = status
        name, description = ERROR_NAMES[status]
        super().__init__(f"{name}: {description}")

    def __reduce__(self):
        return (type(self), (self.status,))


# ---------------------------------------------------------------- devices, streams

_device_stack: list[int] = []
current_device = 0


def check_device_id(device_id: int) -> int:
    if not 0 <= device_id < DEVICE_COUNT:
        raise CUDARuntimeError(101)
    return device_id


def set_device(device_id: int) -> None:
    global current_device
    current_device = check_device_id(device_id)


_stream_ptrs = itertools.count(0x5000, 0x100)


class StreamState:
    """One CUDA stream's capture state (the Stream objects of CuPy point at one of these)."""

    def __init__(self, ptr: int, device_id: int, blocking: bool) -> None:
        self.ptr = ptr
        self.device_id = device_id  # -1: the legacy/per-thread stream of any device
        self.blocking = blocking
        self.recording: list[Callable[[], None]] | None = None
        self.invalidated = False
        self.buffers: list[weakref.ref] = []  # the pool blocks a capture touched

    @property
    def capturing(self) -> bool:
        return self.recording is not None


LEGACY = StreamState(0, -1, True)
PER_THREAD = StreamState(2, -1, True)
_streams: dict[int, StreamState] = {0: LEGACY, 1: LEGACY, 2: PER_THREAD}
# The current stream of each device, as CuPy keeps it (a stack per device for `with`).
current_streams: list[list[object]] = [[] for _ in range(DEVICE_COUNT)]


def new_stream(device_id: int, blocking: bool) -> StreamState:
    state = StreamState(next(_stream_ptrs), device_id, blocking)
    _streams[state.ptr] = state
    return state


def stream_state(ptr: int) -> StreamState:
    try:
        return _streams[ptr]
    except KeyError:
        raise CUDARuntimeError(400) from None


def current_state() -> StreamState:
    stack = current_streams[current_device]
    return stack[-1]._state if stack else LEGACY


def capturing_on_device(device_id: int) -> list[StreamState]:
    return [s for s in _streams.values() if s.capturing and s.device_id == device_id]


def fail_capture(state: StreamState, status: int) -> CUDARuntimeError:
    """CUDA's answer to an illegal call during capture: an error, and the capture is void."""
    state.invalidated = True
    return CUDARuntimeError(status)


def refuse_sync_while_capturing() -> None:
    """cudaStreamSynchronize/cudaDeviceSynchronize with a capture open on the device."""
    for state in capturing_on_device(current_device):
        raise fail_capture(state, 900)


# ------------------------------------------------------------------- the kernels


def submit(work: Callable[[], None], state: StreamState | None = None,
           *, kernel: bool = True) -> None:
    """Launch ``work`` on ``state`` (default: the current stream): run it, or record it.

    ``kernel``: count it as a kernel launch (a graph launch counts as itself).
    """
    state = current_state() if state is None else state
    if state is LEGACY or state is PER_THREAD:
        _check_legacy_launch()
    if state.capturing:
        state.recording.append(work)
        return
    counts.kernel_launches += kernel
    work()


def _check_legacy_launch() -> None:
    # Work on the legacy stream waits for every blocking stream: with one of them capturing,
    # CUDA refuses it (cudaErrorStreamCaptureImplicit) and voids that capture.
    for state in capturing_on_device(current_device):
        if state.blocking:
            raise fail_capture(state, 906)


def note_buffer(memory: object) -> None:
    """Remember that the capturing stream uses ``memory``, so a replay can check it lives."""
    state = current_state()
    if state.capturing:
        state.buffers.append(weakref.ref(memory))


def refuse_allocation_while_capturing(nbytes: int) -> None:
    state = current_state()
    if state.capturing:
        state.invalidated = True
        raise StandinRuleError(
            f"stand-in rule: an allocation of {nbytes} bytes while stream {state.ptr:#x} "
            "captures (CuPy's pool would hand this block to other arrays once the capture "
            "frees it, and every replay would write there): make every buffer of the "
            "captured work before begin_capture and write into it with out= or in place"
        )


# ---------------------------------------------------------------- memory pool


class PoolState:
    """CuPy's per-device pool, as bookkeeping: blocks in use, and freed blocks it keeps."""

    def __init__(self) -> None:
        self.used = 0
        self.free_blocks: dict[int, int] = {}  # rounded size -> number of cached blocks

    @property
    def free(self) -> int:
        return sum(size * n for size, n in self.free_blocks.items())

    def malloc(self, nbytes: int) -> int:
        size = -(-max(nbytes, 1) // ALLOCATION_UNIT) * ALLOCATION_UNIT if nbytes else 0
        if size and self.free_blocks.get(size):
            self.free_blocks[size] -= 1
        self.used += size
        counts.allocations += 1
        counts.allocated_bytes += nbytes
        return size

    def release(self, size: int) -> None:
        self.used -= size
        if size:
            self.free_blocks[size] = self.free_blocks.get(size, 0) + 1

    def free_all_blocks(self) -> None:
        self.free_blocks.clear()


pools = [PoolState() for _ in range(DEVICE_COUNT)]


class Memory:
    """One device allocation. Arrays keep it alive; when the last one dies, the pool gets
    the block back (and a graph that still writes there is refused at its next launch)."""

    __slots__ = ("buffer", "device_id", "size", "owner", "__weakref__")

    def __init__(self, buffer: object, device_id: int, owner: object = None) -> None:
        self.buffer = buffer  # the NumPy array holding the bytes
        self.device_id = device_id
        self.owner = owner  # foreign memory: the object that owns it (kept alive)
        self.size = 0
        if owner is None:
            nbytes = buffer.nbytes
            refuse_allocation_while_capturing(nbytes)
            pool = pools[device_id]
            self.size = pool.malloc(nbytes)
            weakref.finalize(self, pool.release, self.size)
