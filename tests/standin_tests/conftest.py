"""Tests of the CuPy stand-in itself: collected only where ``import cupy`` is the stand-in.

tests/test_standin_process.py runs them in their own process, with
PYTHONPATH=tests/standin and NUMBA_ENABLE_CUDASIM=1 (set before Numba is imported). The
main run never imports the stand-in as ``cupy``: every cuda-marked test would take it for
CuPy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

STANDIN = Path(__file__).resolve().parent.parent / "standin"


def _standin_is_cupy() -> bool:
    spec = importlib.util.find_spec("cupy")  # finds, never imports
    return spec is not None and spec.origin is not None and Path(spec.origin).is_relative_to(
        STANDIN)


collect_ignore_glob = [] if _standin_is_cupy() else ["*"]


if not collect_ignore_glob:
    import pytest

    @pytest.fixture(autouse=True)
    def _fresh_standin():
        """Each test starts on device 0, legacy streams current, no capture open."""
        yield
        from cupy import _standin

        _standin.set_device(0)
        for stack in _standin.current_streams:
            stack.clear()
        for state in _standin._streams.values():
            state.recording, state.buffers, state.invalidated = None, [], False
