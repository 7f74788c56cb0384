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
