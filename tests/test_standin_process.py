"""The CuPy stand-in's own tests, in a process where ``import cupy`` is the stand-in.

This process must not import the stand-in as ``cupy`` (every cuda-marked test would take
it for CuPy), and NUMBA_ENABLE_CUDASIM must be set before Numba is imported: so the
tests in tests/standin_tests run in a fresh interpreter with PYTHONPATH=tests/standin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import STANDIN, run_on_standin

REAL_CUPY_PYTHON = os.environ.get("XPNET_REAL_CUPY_PYTHON", "/tmp/cupyenv/bin/python")


def test_the_standins_strictness_tests_pass_in_their_own_process() -> None:
    run_on_standin("standin_tests", timeout=300)


def test_the_main_run_does_not_see_the_standin() -> None:
    assert "cupy" not in sys.modules or "standin" not in str(sys.modules["cupy"].__file__)


def test_the_name_list_is_what_real_cupy_has() -> None:
    """make_names.py run on real CuPy (installed apart, with no GPU) gives the kept list."""
    python = shutil.which(REAL_CUPY_PYTHON) or (
        REAL_CUPY_PYTHON if Path(REAL_CUPY_PYTHON).exists() else None)
    if python is None:
        pytest.skip(f"no interpreter with real CuPy at {REAL_CUPY_PYTHON} (set "
                    "XPNET_REAL_CUPY_PYTHON; see tests/standin/make_names.py)")
    probe = subprocess.run([python, "-c", "import cupy"], capture_output=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"{python} cannot import real CuPy")
    result = subprocess.run([python, str(STANDIN / "make_names.py")], capture_output=True,
                            text=True, timeout=300, check=True)
    kept = json.loads((STANDIN / "cupy" / "_names.json").read_text())
    made = json.loads(result.stdout)
    if made["cupy_version"] != kept["cupy_version"]:
        pytest.skip(f"real CuPy {made['cupy_version']} is not the kept list's "
                    f"{kept['cupy_version']}")
    assert made["scopes"] == kept["scopes"]
