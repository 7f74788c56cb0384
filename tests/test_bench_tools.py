"""The benchmark tooling: bench/run.py's table and bench/gpu_check.sh on a machine without GPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xpnet.backend import cuda_unavailable_reason

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load_run_module():
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry(name, group, backend, median, dtype="float64", baseline=False, **params):
    return {"name": name, "group": group, "stats": {"median": median},
            "extra_info": {"backend": backend, "dtype": dtype, "baseline": baseline, **params}}


def test_table_divides_the_baseline_of_the_same_run_by_each_entry(tmp_path, capsys) -> None:
    run = load_run_module()
    record = {"benchmarks": [
        entry("a", "ng", "numpy", 20.0, baseline=True),
        entry("b", "ng", "numba-cpu", 0.01),
        entry("c", "step", "numpy", 1e-3, dtype="float32", baseline=True, batch=100),
        entry("d", "step", "xpnet-cpu", 5e-4, dtype="float32", batch=100),
        entry("e", "step", "xpnet-cpu", 5e-4, dtype="float32", batch=8192),  # no baseline
    ]}
    rows = {r["backend"] + str(r["params"]): r for r in run.rows_from(record)}
    assert rows["numba-cpu{}"]["speedup"] == pytest.approx(2000)
    assert rows["xpnet-cpu{'batch': 100}"]["speedup"] == pytest.approx(2)
    assert rows["xpnet-cpu{'batch': 8192}"]["speedup"] is None
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(record))
    assert run.main(["--table-from", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Machine: ")
    assert "| ng | numba-cpu | float64 |  | 10 ms | 2e+03x | numpy float64 |" in out


def test_run_finds_every_suite_and_runs_the_cheap_ones_first(tmp_path) -> None:
    run = load_run_module()
    for name in ("test_bench_zeta.py", "test_bench_training.py", "test_bench_alpha.py",
                 "test_bench_cross_entropy.py", "conftest.py", "benchlib.py"):
        (tmp_path / name).write_text("")
    assert run.all_suites(tmp_path) == ("test_bench_cross_entropy.py", "test_bench_training.py",
                                        "test_bench_alpha.py", "test_bench_zeta.py")
    assert set(run.ORDER) <= set(run.all_suites())  # every named suite exists


@pytest.mark.skipif(cuda_unavailable_reason() is None, reason="this machine has a GPU")
def test_gpu_check_fails_fast_with_one_line_without_a_gpu(tmp_path) -> None:
    out = tmp_path / "out"
    start = time.monotonic()
    result = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), str(out)], capture_output=True,
                            text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=60)
    assert time.monotonic() - start < 30
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no GPU to check: ")
    assert not out.exists()


def test_gpu_model_sets_measured_deep_conv_steps_beside_the_model_of_their_mode() -> None:
    sys.path.insert(0, str(BENCH))
    import gpu_model as gm

    deep = [{"dtype": "float64", "mode": mode, "step_s": step_s}
            for mode, step_s in (("book eager", 0.02), ("eager", 0.01), ("captured", 0.002))]
    record = {"benchmarks": [
        entry("a", gm.DEEP_STEP_GROUP, "layered-step-cuda-graph", 0.004),
        entry("b", gm.DEEP_STEP_GROUP, "xpnet-eager-cuda", 0.01),
        entry("c", gm.DEEP_STEP_GROUP, "book-loop-cpu", 1.5, baseline=True),
    ]}
    text = gm.compare(record, [], deep)
    assert "| layered-step-cuda-graph | LayeredStep, one graph launch | float64 | 4 ms | 2 ms " \
           "| 2x |" in text
    assert "| xpnet-eager-cuda | the book's step, eager (BookNet + Adam.update) | float64 | " \
           "10 ms | 20 ms | 0.5x |" in text
    assert "book-loop-cpu" not in text  # no model of the CPU
    assert "no measured DeepConvNet" in gm.compare({"benchmarks": []}, [], deep)
