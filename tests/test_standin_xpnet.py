"""xpnet's every CUDA path on the CuPy stand-in, in a process where ``import cupy`` is it.

NUMBA_ENABLE_CUDASIM must be set before Numba is imported and this process must never
see the stand-in as ``cupy``: the tests in tests/standin_xpnet run in a fresh
interpreter with PYTHONPATH=tests/standin (as tests/test_standin_process.py does for
the stand-in's own tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
STANDIN = TESTS / "standin"


@pytest.mark.slow
def test_every_cuda_path_runs_on_the_standin_with_the_cpus_numbers() -> None:
    path = os.pathsep.join(p for p in (str(STANDIN), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "NUMBA_ENABLE_CUDASIM": "1"}
    env.pop("XPNET_DEVICE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(TESTS / "standin_xpnet"), "-q",
         "-p", "no:cacheprovider", "-o", "addopts="],
        capture_output=True, text=True, env=env, timeout=540, cwd=TESTS.parent,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary
