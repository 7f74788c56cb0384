"""xpnet's every CUDA path on the CuPy stand-in, in a process where ``import cupy`` is it.

NUMBA_ENABLE_CUDASIM must be set before Numba is imported and this process must never
see the stand-in as ``cupy``: the tests in tests/standin_xpnet run in a fresh
interpreter with PYTHONPATH=tests/standin (as tests/test_standin_process.py does for
the stand-in's own tests).
"""

from __future__ import annotations

import pytest
from support import run_on_standin


@pytest.mark.slow
def test_every_cuda_path_runs_on_the_standin_with_the_cpus_numbers() -> None:
    run_on_standin("standin_xpnet", timeout=540)
