"""The `cuda` marker's skip line: short, because a run without CUDA prints one per test."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cuda_skips_say_what_is_missing_in_a_few_words() -> None:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-m", "cuda",
                        "-p", "no:cacheprovider", str(HERE / "test_two_layer_net.py"),
                        str(HERE.parent / "bench" / "test_bench_cross_entropy.py")],
                       capture_output=True, text=True, cwd=HERE.parent, timeout=300)
    skipped = [line for line in r.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped, r.stdout + r.stderr
    assert any("bench/" in line for line in skipped), r.stdout  # the benchmarks' too
    for line in skipped:
        assert line.endswith(": needs CUDA: CuPy is not installed"), line
