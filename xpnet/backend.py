"""The device switch: the one module of xpnet that imports CuPy.

Everything else reaches CuPy through here (``get_array_module``, ``to_device``,
``cuda_stream_pointer``) or, in ``xpnet.kernels.cuda`` which stands alone, through the
``__cuda_array_interface__`` protocol without importing it.

``XPNET_DEVICE`` picks where new arrays are created: ``cpu`` (default), ``cuda``,
``cuda:N`` or ``auto`` (CUDA when usable, else CPU, said once). It is read the first
time a device is needed; ``use_device`` overrides it for a block. Library functions
do not ask this module which device is configured: they dispatch on their inputs with
``get_array_module`` so NumPy in gives NumPy out and CuPy in gives CuPy out.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .errors import DeviceError, first_line

__all__ = ["CPU", "ENV_VAR", "VALID_DEVICES", "Device", "DeviceError", "array_module",
           "asnumpy", "cuda_missing", "cuda_missing_sentence", "cuda_stream_pointer",
           "cuda_unavailable_reason", "device_memory_bytes",
           "device_name", "get_array_module", "get_device", "is_cupy_array", "new_stream",
           "parse_device",
           "synchronize", "to_device", "use_device"]

ENV_VAR = "XPNET_DEVICE"
VALID_DEVICES = "cpu, cuda, cuda:N (N = 0, 1, ...), auto"


# xpnet is not on PyPI: the source checkout's form first.
INSTALL_CUPY = ("pip install -e '.[cuda13]' in xpnet's source checkout (or [cuda12]; "
                "CuPy alone: pip install cupy-cuda13x)")
CPU_CHOICE = "XPNET_DEVICE=cpu"  # how the API's user picks the CPU; the CLI says --device cpu


@dataclass(frozen=True)
class Device:
    """A place for arrays: ``kind`` is ``"cpu"`` or ``"cuda"``; ``index`` the GPU ordinal."""

    kind: str
    index: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"


CPU = Device("cpu")
_current: Device | None = None
_auto_fallback_said = False


def device_name(text: str | None) -> str:
    """The syntax alone: ``"cpu"``, ``"cuda:N"`` or ``"auto"`` for ``text``, checking no device.

    ``None`` means ``$XPNET_DEVICE``, else cpu. Raises DeviceError naming the valid values.
    """
    if text is None:
        text = os.environ.get(ENV_VAR, "cpu") or "cpu"
    name = str(text).strip().lower()
    if name in ("cpu", "auto"):
        return name
    if name == "cuda" or name.startswith("cuda:"):
        index_text = name.partition(":")[2] or "0"
        if index_text.isdigit():
            return f"cuda:{int(index_text)}"
    raise DeviceError(f"unknown device {text!r}: valid values are {VALID_DEVICES}")


def parse_device(device: str | Device | None) -> Device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` into a usable Device.

    ``None`` means the configured device. Raises DeviceError naming the valid values
    for an unknown name, and saying what is missing when CUDA is asked for but absent.
    """
    if device is None:
        return get_device()
    if isinstance(device, Device):
        return device
    name = device_name(device)
    if name == "cpu":
        return CPU
    if name == "auto":
        return _auto()
    cuda = Device("cuda", int(name.partition(":")[2]))
    _check_cuda(cuda)
    return cuda


def _auto() -> Device:
    global _auto_fallback_said
    try:
        return parse_device("cuda")
    except DeviceError as err:
        if not _auto_fallback_said:
            _auto_fallback_said = True
            warnings.warn(f"device auto: using the CPU: {err.reason}", RuntimeWarning,
                          stacklevel=3)
        return CPU


def _cupy() -> ModuleType:
    try:
        import cupy
    except ImportError as err:
        raise cuda_missing(f"CuPy is not installed ({err.msg})", INSTALL_CUPY) from None
    return cupy


def cuda_missing(reason: str, install: str | None = None) -> DeviceError:
    """The DeviceError for CUDA asked for but unusable, with fields to reword it.

    ``reason`` (what is missing), ``install`` (how to get CuPy, or None) and ``cpu_choice``
    are kept on the error; ``cuda_missing_sentence(err, "--device cpu")`` gives the same
    sentence in a command line's words.
    """
    err = DeviceError("", reason)
    err.install, err.cpu_choice = install, CPU_CHOICE
    err.args = (cuda_missing_sentence(err),)
    return err


def cuda_missing_sentence(err: DeviceError, cpu_choice: str | None = None) -> str:
    """The one line of a ``cuda_missing`` error, naming ``cpu_choice`` as the way to the CPU."""
    choice = cpu_choice or getattr(err, "cpu_choice", CPU_CHOICE)
    install = getattr(err, "install", None)
    fix = f": install it with {install}, or" if install else ";"
    return f"CUDA was requested but {err.reason}{fix} use the CPU ({choice})"


def _check_cuda(device: Device) -> None:
    cupy = _cupy()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError, or a driver that fails to load
        raise cuda_missing(f"no usable CUDA device was found ({first_line(err)})") from None
    if device.index >= count:
        raise DeviceError(
            f"device {device} does not exist: this machine has {count} CUDA device(s), "
            f"use cuda:0 to cuda:{count - 1}" if count else "no CUDA devices are visible"
        )


def cuda_unavailable_reason() -> str | None:
    """None when CuPy sees a CUDA device, else a one-line reason (for skips and checks)."""
    try:
        _check_cuda(Device("cuda", 0))
    except DeviceError as err:
        return str(err)
    return None


def get_device() -> Device:
    """The current device: set by ``use_device``, else ``$XPNET_DEVICE``."""
    global _current
    if _current is None:
        _current = parse_device(device_name(None))
    return _current


@contextlib.contextmanager
def use_device(name: str | Device | None) -> Iterator[Device]:
    """Within the block, new arrays go to device ``name`` (and CuPy's current GPU is set)."""
    global _current
    device = parse_device(name)
    previous, _current = _current, device
    try:
        if device.kind == "cuda":
            with _cupy().cuda.Device(device.index):
                yield device
        else:
            yield device
    finally:
        _current = previous


def array_module(device: Device) -> ModuleType:
    """``numpy`` for the CPU, ``cupy`` for a CUDA device."""
    return np if device.kind == "cpu" else _cupy()


def is_cupy_array(a: Any) -> bool:
    """True for a CuPy ndarray; never imports CuPy."""
    return "cupy" in sys.modules and isinstance(a, sys.modules["cupy"].ndarray)


def get_array_module(*arrays: Any) -> ModuleType:
    """``cupy`` if any argument is a CuPy array, else ``numpy`` (like ``cupy.get_array_module``)."""
    if any(is_cupy_array(a) for a in arrays):
        return sys.modules["cupy"]
    return np


def asnumpy(a: Any) -> np.ndarray:
    """A NumPy copy of a CuPy array, or ``np.asarray(a)`` of anything else."""
    return a.get() if is_cupy_array(a) else np.asarray(a)


def to_device(a: Any, device: str | Device | None = None) -> Any:
    """``a`` as an array on ``device`` (default: the current device); no copy if already there."""
    target = parse_device(device)
    if target.kind == "cpu":
        return asnumpy(a)
    cupy = _cupy()
    with cupy.cuda.Device(target.index):
        return cupy.asarray(a)


def cuda_stream_pointer(a: Any) -> int:
    """The pointer of CuPy's current stream on ``a``'s GPU (0: the legacy default stream).

    The fused kernels launch on it, so they queue behind CuPy's own work on the array.
    """
    return int(_cupy().cuda.get_current_stream().ptr)


def new_stream(device: str | Device | None = None) -> Any:
    """A new non-blocking CuPy stream on a CUDA ``device`` (default: current).

    For work captured as a CUDA graph: capture refuses the legacy default stream, and a
    non-blocking stream never waits on it implicitly (callers synchronize once before).
    """
    target = parse_device(device)
    cupy = _cupy()
    with cupy.cuda.Device(target.index):
        return cupy.cuda.Stream(non_blocking=True)


class GraphedStep:
    """A step of work on ``stream``: run eagerly on its first call, captured as a CUDA graph
    on its second, and replayed as one graph launch on every call after.

    The first call runs eagerly because it is where lazy set-up happens (Numba compiles,
    CuPy makes its handles and kernels), which a capture refuses. ``graph=False``: every
    call runs ``step`` eagerly. Every call runs on ``stream`` (entered here; a NumPy step
    passes a null context). A capture that ``step`` breaks raises ``step``'s own error,
    not that the capture was voided. ``graph`` is the captured graph, once there is one.
    """

    def __init__(self, stream: Any, step: Callable[[], None], *, graph: bool) -> None:
        self.stream, self.step, self.use_graph = stream, step, graph
        self.graph: Any = None
        self.calls = 0

    def __call__(self) -> None:
        # on its own stream whatever the caller's: a capture records only that stream
        with self.stream:
            if self.graph is not None:
                self.graph.launch(self.stream)
            elif self.use_graph and self.calls >= 1:
                self.stream.begin_capture()
                try:
                    self.step()
                except BaseException:
                    with contextlib.suppress(Exception):
                        self.stream.end_capture()
                    raise
                self.graph = self.stream.end_capture()
                self.graph.launch(self.stream)
            else:
                self.step()
        self.calls += 1


def device_memory_bytes(device: str | Device | None = None) -> int | None:
    """Total memory of ``device`` in bytes: RAM for the CPU, the GPU's own memory for CUDA."""
    target = parse_device(device)
    if target.kind == "cuda":
        return int(_cupy().cuda.Device(target.index).mem_info[1])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return None


def synchronize(device: str | Device | None = None) -> None:
    """Wait for queued GPU work on ``device`` (default: current); a no-op on the CPU."""
    target = parse_device(device)
    if target.kind == "cuda":
        _cupy().cuda.Device(target.index).synchronize()
