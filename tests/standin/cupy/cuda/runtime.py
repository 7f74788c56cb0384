"""``cupy.cuda.runtime`` for the stand-in's two devices (only names real CuPy has)."""

from __future__ import annotations

from .. import _standin as _sd

CUDARuntimeError = _sd.CUDARuntimeError
is_hip = False
streamLegacy = 1
streamPerThread = 2
streamDefault = 0
streamNonBlocking = 1
streamCaptureModeGlobal = 0
streamCaptureModeThreadLocal = 1
streamCaptureModeRelaxed = 2
streamCaptureStatusNone = 0
streamCaptureStatusActive = 1
streamCaptureStatusInvalidated = 2


def getDeviceCount() -> int:  # noqa: N802 - CuPy's names
    return _sd.DEVICE_COUNT


def getDevice() -> int:  # noqa: N802
    return _sd.current_device


def setDevice(device: int) -> None:  # noqa: N802
    _sd.set_device(device)


def deviceSynchronize() -> None:  # noqa: N802
    _sd.refuse_sync_while_capturing()
    _sd.counts.host_waits += 1


def memGetInfo() -> tuple[int, int]:  # noqa: N802
    pool = _sd.pools[_sd.current_device]
    return _sd.DEVICE_MEMORY - pool.used - pool.free, _sd.DEVICE_MEMORY


def getDeviceProperties(device: int) -> dict:  # noqa: N802
    _sd.check_device_id(device)
    return {"name": b"NVIDIA H200 (xpnet stand-in, NumPy)", "totalGlobalMem": _sd.DEVICE_MEMORY,
            "major": 9, "minor": 0, "multiProcessorCount": 132, "warpSize": 32,
            "maxThreadsPerBlock": 1024, "pciDeviceID": device, "pciBusID": device}


def runtimeGetVersion() -> int:  # noqa: N802
    return 13000


def driverGetVersion() -> int:  # noqa: N802
    return 13000


def streamIsCapturing(stream: int) -> bool:  # noqa: N802
    state = _sd.stream_state(stream)
    if state is _sd.LEGACY:
        # asking the legacy stream while a blocking stream captures is itself illegal
        for other in _sd.capturing_on_device(_sd.current_device):
            if other.blocking:
                raise _sd.fail_capture(other, 906)
    return state.capturing


del annotations  # real CuPy's runtime has no such name
