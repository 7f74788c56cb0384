"""`xpnet` end to end, as a user runs it: files written, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import FASHION_DIR

from xpnet.backend import cuda_unavailable_reason


def xpnet(*args: str, env: dict | None = None, cwd: Path | None = None):
    full_env = {**os.environ, "XPNET_DEVICE": "cpu", **(env or {})}
    return subprocess.run([sys.executable, "-m", "xpnet", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=600)


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.slow
def test_train_writes_the_four_files(fashion, tmp_path) -> None:
    out = tmp_path / "run"
    r = xpnet("train", "--dataset", "fashion-mnist", "--data-dir", str(FASHION_DIR),
              "--iters", "1200", "--seed", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    epoch_lines = [ln for ln in r.stdout.splitlines() if ln.startswith("train acc, test acc | ")]
    assert len(epoch_lines) == 2  # iterations 0 and 600
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["iters"] == 1200 and metrics["config"]["seed"] == 1
    assert metrics["device"] == "cpu"
    assert [e["iteration"] for e in metrics["epochs"]] == [0, 600]
    assert len(metrics["train_loss_list"]) == 1200
    assert 0.70 <= metrics["final_test_acc"] <= 1.0  # after the last iteration
    assert metrics["final_test_acc"] >= metrics["epochs"][-1]["test_acc"] - 0.05
    assert metrics["epochs"][0]["test_acc"] < 0.3  # before training: chance
    assert metrics["wall_time_s"] > 0
    for png in ("accuracy.png", "loss.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with np.load(out / "params.npz", allow_pickle=False) as params:
        assert {k: params[k].shape for k in params.files} == {
            "W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files


@pytest.mark.slow
def test_training_with_the_numerical_gradient_matches_backprop(fashion, tmp_path) -> None:
    accuracy = {}
    for grad in ("numerical", "backprop"):
        out = tmp_path / grad
        r = xpnet("train", "--dataset", "fashion-mnist", "--grad", grad, "--iters", "300",
                  "--seed", "3", "--out", str(out), "--no-progress")
        assert r.returncode == 0, r.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["config"]["grad"] == grad
        accuracy[grad] = metrics["final_test_acc"]
    assert accuracy["backprop"] > 0.5
    assert abs(accuracy["numerical"] - accuracy["backprop"]) <= 0.01, accuracy


@pytest.mark.slow
def test_gradcheck_prints_the_books_four_small_differences(fashion) -> None:
    r = xpnet("gradcheck", "--dataset", "fashion-mnist", "--data-dir", str(FASHION_DIR),
              "--seed", "0")
    assert r.returncode == 0, r.stderr
    diffs = dict(line.split(":") for line in r.stdout.splitlines()[1:])
    assert set(diffs) == {"W1", "b1", "W2", "b2"}
    # The hidden layer agrees to ~1e-10. The output layer differs by ~1e-7 because the
    # book's loss has log(y + 1e-7), which backprop's (y - t) / B leaves out.
    assert float(diffs["W1"]) < 1e-8 and float(diffs["b1"]) < 1e-8, diffs
    assert float(diffs["W2"]) < 1e-6 and float(diffs["b2"]) < 1e-6, diffs


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--lr", "abc"], "argument --lr: expected a positive number, got 'abc'"),
        (["train", "--iters", "0"], "argument --iters: expected a positive integer"),
        (["train", "--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["fly"], "invalid choice: 'fly'"),
        (["train", "--device", "tpu"], "unknown device 'tpu': valid values are cpu, cuda"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args, expected, tmp_path) -> None:
    line = one_line_error(xpnet(*args, "--out", str(tmp_path)) if args[0] == "train"
                          else xpnet(*args))
    assert expected in line


@pytest.mark.skipif(cuda_unavailable_reason() is None, reason="this machine has CUDA")
def test_cuda_requested_without_cuda_exits_2_with_one_line(tmp_path) -> None:
    line = one_line_error(xpnet("train", "--out", str(tmp_path), env={"XPNET_DEVICE": "cuda"}))
    assert "CUDA was requested" in line


def test_an_output_path_that_is_a_file_is_refused_before_training(tmp_path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    line = one_line_error(xpnet("train", "--out", str(not_a_dir / "run")))
    assert "is not a writable directory" in line


def test_no_data_offline_exits_2_naming_the_ways_out(tmp_path) -> None:
    env = {"XPNET_MNIST_MIRRORS": "http://127.0.0.1:9/", "XDG_CACHE_HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path), "XPNET_DATA_DIR": str(tmp_path / "data")}
    line = one_line_error(xpnet("train", "--dataset", "mnist", "--out", str(tmp_path / "o"),
                                env=env))
    assert "train-images-idx3-ubyte.gz" in line
    for way_out in ("--data-dir", "XPNET_DATA_DIR", "apt-get install dataset-fashion-mnist"):
        assert way_out in line
    assert not (tmp_path / "o").exists()  # a failed run leaves no empty output folder


def test_version_and_help() -> None:
    r = xpnet("--version")
    assert r.returncode == 0 and r.stdout.startswith("xpnet ")
    r = xpnet("train", "--help")
    assert r.returncode == 0
    for flag in ("--device", "--dataset", "--data-dir", "--iters", "--batch-size", "--lr",
                 "--hidden", "--seed", "--dtype", "--grad", "--out"):
        assert flag in r.stdout
