"""Every `--device cuda` command on the stand-in, against the same command on the CPU.

Each command runs as a user runs it (``python -m xpnet``, a process of its own, with this
process's PYTHONPATH and NUMBA_ENABLE_CUDASIM) on a folder of small IDX files.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

STANDIN = Path(__file__).resolve().parent.parent / "standin"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (str(STANDIN), os.environ.get("PYTHONPATH")) if p), "NUMBA_ENABLE_CUDASIM": "1"}
DATA = ("--dataset", "fashion-mnist", "--no-progress")
SMALL = ("--hidden", "3", "--batch-size", "5", "--seed", "5")


def xpnet(*args: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "xpnet", *args], capture_output=True,
                            text=True, timeout=240, cwd=cwd, env=ENV)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def params(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "params.npz", allow_pickle=False) as f:
        return {k: f[k] for k in ("W1", "b1", "W2", "b2")}


def accuracy_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("train acc, test acc")]


def numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", text)]


def train(tmp: Path, name: str, data: Path, *args: str) -> tuple[Path, str]:
    out = tmp / name
    stdout = xpnet("train", *DATA, "--data-dir", str(data), *SMALL, "--out", str(out), *args,
                   cwd=tmp)
    return out, stdout


@pytest.mark.parametrize(("grad", "dtype", "iters", "gpus"), [
    ("backprop", "float64", "30", ("cuda", "cuda:1 --no-cuda-graph")),
    ("backprop", "float32", "30", ("cuda:1",)),
    ("numerical", "float64", "2", ("cuda:1",)),
    ("numerical", "float32", "1", ("cuda",)),
])
def test_train_on_a_gpu_gives_the_cpus_runs(small_data, tmp_path, grad, dtype, iters,
                                            gpus) -> None:
    args = ("--grad", grad, "--dtype", dtype, "--iters", iters,
            *(("--hidden", "2") if grad == "numerical" else ()))  # the simulator is slow
    cpu, cpu_out = train(tmp_path, "cpu", small_data, "--device", "cpu", *args)
    for gpu in gpus:
        device, *more = gpu.split()
        run, out = train(tmp_path, device, small_data, "--device", device, *more, *args)
        assert f"device {device if ':' in device else device + ':0'}" in out
        assert accuracy_lines(out) == accuracy_lines(cpu_out) and accuracy_lines(out)
        tol = 1e-12 if dtype == "float64" else 1e-6
        for k, v in params(cpu).items():
            np.testing.assert_allclose(params(run)[k], v, rtol=0, atol=tol, err_msg=k)


def test_stop_then_resume_on_a_gpu_gives_the_uninterrupted_cpu_run(small_data, tmp_path) -> None:
    from xpnet.run import run
    from xpnet.run_config import RunConfig

    whole, whole_out = train(tmp_path, "whole", small_data, "--device", "cpu", "--iters", "25")
    config = RunConfig(dataset="fashion-mnist", data_dir=str(small_data), hidden=3,
                       batch_size=5, seed=5, iters=25, device="cuda:1")
    steps = iter(range(1000))
    (tmp_path / "stopped").mkdir()
    result = run(config, out=tmp_path / "stopped", stop=lambda: next(steps) == 10)
    assert result.status == "interrupted"
    resumed = xpnet("train", "--resume", str(tmp_path / "stopped"), "--device", "cuda",
                    "--no-progress", cwd=tmp_path)
    assert accuracy_lines(resumed) == accuracy_lines(whole_out)[1:]  # from epoch 12 on
    for k, v in params(whole).items():
        np.testing.assert_allclose(params(tmp_path / "stopped")[k], v, rtol=0, atol=1e-12)


def test_eval_predict_and_gradcheck_on_a_gpu_say_what_the_cpu_says(small_data,
                                                                     tmp_path) -> None:
    from PIL import Image

    run, _ = train(tmp_path, "run", small_data, "--device", "cpu", "--iters", "20")
    picture = tmp_path / "shirt.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(
        picture)

    def say(eval_on: str, predict_on: str, check_on: str) -> tuple[str, str, str]:
        return (
            xpnet("eval", str(run), "--device", eval_on, "--data-dir", str(small_data),
                  "--out", str(tmp_path / f"confusion-{eval_on}.png"), cwd=tmp_path),
            xpnet("predict", str(run), str(picture), "--device", predict_on, cwd=tmp_path),
            xpnet("gradcheck", "--device", check_on, *DATA[:2], "--data-dir", str(small_data),
                  "--hidden", "2", "--samples", "2", "--seed", "1", cwd=tmp_path),
        )

    def same_words(text: str) -> str:
        return re.sub(r"device \S+|confusion-\S+\.png", "", text)

    eval_cpu, predict_cpu, check_cpu = say("cpu", "cpu", "cpu")
    eval_gpu, predict_gpu, check_gpu = say("cuda:1", "cuda", "cuda:1")
    assert same_words(eval_gpu) == same_words(eval_cpu) and "test accuracy" in eval_gpu
    assert numbers(predict_gpu) == numbers(predict_cpu) and numbers(predict_cpu)
    np.testing.assert_allclose(numbers(check_gpu), numbers(check_cpu), rtol=1e-6, atol=1e-12)
    assert len(numbers(check_cpu)) >= 4


def test_a_sweep_on_a_gpu_on_the_local_cluster_gives_the_cpus_table(small_data,
                                                                    tmp_path) -> None:
    tables = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"sweep-{device}"
        xpnet("sweep", "--device", device, *DATA, "--data-dir", str(small_data), "--iters", "8",
              "--hidden", "2,3", "--batch-size", "5", "--seed", "3", "--workers", "1",
              "--out", str(out), cwd=tmp_path)
        with open(out / "results.csv", newline="") as f:
            tables[device] = {row["hidden"]: row for row in csv.DictReader(f)}
    assert sorted(tables["cuda"]) == ["2", "3"]
    for hidden, row in tables["cpu"].items():
        gpu = tables["cuda"][hidden]
        assert gpu["status"] == row["status"] == "finished"
        for column in ("final_train_acc", "final_test_acc"):
            assert gpu[column] == row[column], column
