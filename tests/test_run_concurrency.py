"""A run folder belongs to one process: real commands started together, one refused at once.

End to end (real processes, a few seconds each): ``slow``. The lock itself is tested
quickly in tests/test_folder_lock.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_toys import toy_dataset

TOY = ("--dataset", "fashion-mnist")
# Long enough (a few seconds) that two commands started together overlap.
LONG = ("--iters", "1500", "--batch-size", "10", "--no-progress", "--seed", "1")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return toy_dataset(tmp_path_factory.mktemp("toy"))


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "xpnet", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "XPNET_DEVICE": "cpu"})


def finish(*procs: subprocess.Popen) -> list[tuple[int, str, str]]:
    return [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]


def busy_line(stderr: str, command: str, folder: Path, pid: int) -> None:
    lines = [s for s in stderr.splitlines() if "warning" not in s]
    assert lines == [f"xpnet {command}: error: {folder} is in use by another xpnet process "
                     f"(pid {pid}): wait for it to end, or use another run folder"], stderr


@pytest.mark.slow
def test_two_trains_into_one_folder_one_runs_the_other_is_refused(toy, tmp_path) -> None:
    out = tmp_path / "X"
    procs = [start("train", *TOY, "--data-dir", str(toy), *LONG, "--out", str(out))
             for _ in range(2)]
    results = finish(*procs)
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    winner = next(p for p, (c, _, _) in zip(procs, results, strict=True) if c == 0)
    loser = next(r for r in results if r[0] == 2)
    busy_line(loser[2], "train", out, winner.pid)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["iterations_done"] == 1500
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy.png", "checkpoint.npz", "loss.png", "metrics.json", "params.npz"]


def interrupted_run(toy: Path, out: Path) -> None:
    proc = start("train", *TOY, "--data-dir", str(toy), "--iters", "3000", "--batch-size", "10",
                 "--no-progress", "--seed", "2", "--out", str(out))
    while not proc.stdout.readline().startswith("train acc"):
        assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(2)
    assert proc.wait(timeout=60) == 130


@pytest.mark.slow
def test_two_resumes_of_one_run_one_continues_the_other_is_refused(toy, tmp_path) -> None:
    out = tmp_path / "R"
    interrupted_run(toy, out)
    procs = [start("train", "--resume", str(out), "--no-progress") for _ in range(2)]
    results = finish(*procs)
    assert sorted(code for code, _, _ in results) == [0, 2], results
    winner = next(p for p, (c, _, _) in zip(procs, results, strict=True) if c == 0)
    busy_line(next(r for r in results if r[0] == 2)[2], "train", out, winner.pid)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "finished" and len(metrics["resumes"]) == 1
    assert metrics["command"][1:3] == ["train", "--dataset"]  # the first command, kept
    assert metrics["resumes"][0]["command"][1:3] == ["train", "--resume"]


@pytest.mark.slow
def test_eval_while_the_run_trains_is_refused_at_once(toy, tmp_path) -> None:
    out = tmp_path / "E"
    train = start("train", *TOY, "--data-dir", str(toy), "--iters", "20000", "--batch-size",
                  "10", "--no-progress", "--out", str(out))
    try:
        while not train.stdout.readline().startswith("train acc"):
            assert train.poll() is None, train.stderr.read()
        t0 = time.monotonic()
        ev = subprocess.run([sys.executable, "-m", "xpnet", "eval", str(out)],
                            capture_output=True, text=True, timeout=120)
        assert ev.returncode == 2 and time.monotonic() - t0 < 30
        busy_line(ev.stderr, "eval", out, train.pid)
        assert not (out / "eval.json").exists()
    finally:
        train.send_signal(2)
        train.wait(timeout=60)
    # Interrupted, it let the folder go: its hint names the way on.
    assert re.search(r"continue with: xpnet train --resume \S+", train.stderr.read())
