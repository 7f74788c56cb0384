"""The device switch: the one module that knows CuPy exists.

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
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

ENV_VAR = "XPNET_DEVICE"
VALID_DEVICES = "cpu, cuda, cuda:N (N = 0, 1, ...), auto"


class DeviceError(RuntimeError):
    """The requested device cannot be used (bad name, no CuPy, or no usable GPU).

    ``reason`` says what is missing, without the advice that follows it in the message.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


INSTALL_CUPY = ("pip install 'xpnet[cuda13]' (or [cuda12]; in a source checkout: "
                "pip install -e '.[cuda13]')")


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


def parse_device(spec: str | Device | None) -> Device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` into a usable Device.

    ``None`` means the configured device. Raises DeviceError naming the valid values
    for an unknown spec, and saying what is missing when CUDA is asked for but absent.
    """
    if spec is None:
        return get_device()
    if isinstance(spec, Device):
        return spec
    name = str(spec).strip().lower()
    if name == "cpu":
        return CPU
    if name == "auto":
        return _auto()
    if name == "cuda" or name.startswith("cuda:"):
        index_text = name.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise DeviceError(f"unknown device {spec!r}: valid values are {VALID_DEVICES}")
        device = Device("cuda", int(index_text))
        _check_cuda(device)
        return device
    raise DeviceError(f"unknown device {spec!r}: valid values are {VALID_DEVICES}")


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
        reason = f"CuPy is not installed ({err.msg})"
        raise DeviceError(f"CUDA was requested but {reason}: install it with {INSTALL_CUPY}, "
                          "or use the CPU (XPNET_DEVICE=cpu)", reason) from None
    return cupy


def _check_cuda(device: Device) -> None:
    cupy = _cupy()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError, or a driver that fails to load
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        reason = f"no usable CUDA device was found ({message})"
        raise DeviceError(f"CUDA was requested but {reason}; use the CPU (XPNET_DEVICE=cpu)",
                          reason) from None
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
    """The current device: set by ``use_device``/``set_device``, else ``$XPNET_DEVICE``."""
    global _current
    if _current is None:
        _current = parse_device(os.environ.get(ENV_VAR, "cpu") or "cpu")
    return _current


def set_device(spec: str | Device) -> Device:
    """Make ``spec`` the device for new arrays from now on; returns it."""
    global _current
    _current = parse_device(spec)
    return _current


@contextlib.contextmanager
def use_device(spec: str | Device | None) -> Iterator[Device]:
    """Within the block, new arrays go to ``spec`` (and CuPy's current GPU is set)."""
    global _current
    device = parse_device(spec)
    previous, _current = _current, device
    try:
        if device.kind == "cuda":
            with _cupy().cuda.Device(device.index):
                yield device
        else:
            yield device
    finally:
        _current = previous


def __getattr__(name: str) -> Any:
    # ``backend.xp`` follows the current device, so it is computed on access.
    if name == "xp":
        return array_module(get_device())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def device_of(a: Any) -> Device:
    """The device an array lives on."""
    return Device("cuda", a.device.id) if is_cupy_array(a) else CPU


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
