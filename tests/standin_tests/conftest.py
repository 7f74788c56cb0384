"""Tests of the CuPy stand-in itself: collected only where ``import cupy`` is the stand-in.

tests/test_standin_process.py runs them in their own process, with
PYTHONPATH=tests/standin and NUMBA_ENABLE_CUDASIM=1 (set before Numba is imported). The
main run never imports the stand-in as ``cupy``: every cuda-marked test would take it for
CuPy.
"""

from __future__ import annotations

from support import reset_standin, standin_is_cupy

collect_ignore_glob = [] if standin_is_cupy() else ["*"]


if not collect_ignore_glob:
    import pytest

    @pytest.fixture(autouse=True)
    def _fresh_standin():
        """Each test starts on device 0, legacy streams current, no capture open."""
        yield
        reset_standin()
