"""Runs tests/cudasim in a process of its own under Numba's CUDA simulator.

NUMBA_ENABLE_CUDASIM must be set before numba is first imported, which this process
has already done, so the simulated tests get a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CUDASIM = Path(__file__).parent / "cudasim"


@pytest.mark.slow
def test_cuda_kernels_match_the_cpu_kernels_under_the_simulator() -> None:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(CUDASIM), "-q", "-p", "no:cacheprovider",
         "-o", "addopts="],
        capture_output=True, text=True, env=env, timeout=600, cwd=CUDASIM.parent.parent,
    )
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, summary
