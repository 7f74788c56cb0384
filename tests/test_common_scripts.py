"""Reader-style chapter scripts (tests/common_scripts/) on real Fashion-MNIST: they run with
xpnet.common as a reader's would, print the book's kind of lines, and learn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import require_fashion_mnist

SCRIPTS = Path(__file__).resolve().parent / "common_scripts"


def run_script(name: str, *args: str, cwd: Path) -> list[str]:
    require_fashion_mnist()
    r = subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True,
                       text=True, cwd=cwd, timeout=600,
                       env={**os.environ, "XPNET_DEVICE": "cpu", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.splitlines()


@pytest.mark.slow
def test_ch05_gradient_check_and_training(tmp_path: Path) -> None:
    lines = run_script("ch05_backprop.py", "1200", cwd=tmp_path)
    diffs = {k: float(v) for k, v in (line.split() for line in lines[:4])}
    assert set(diffs) == {"W1", "b1", "W2", "b2"}
    # float64 backprop against the book's differences: the 1e-7 in the log dominates
    assert max(diffs.values()) < 1e-6, diffs
    accs = [tuple(map(float, line.split())) for line in lines[4:]]
    assert len(accs) == 3  # iterations 0, 600 and the last
    assert accs[0][1] < 0.3 and accs[-1][1] > 0.75, accs  # Fashion-MNIST test accuracy


@pytest.mark.slow
def test_ch06_optimizers_and_batchnorm(tmp_path: Path) -> None:
    lines = run_script("ch06_optimizers.py", "300", cwd=tmp_path)
    losses: dict[str, list[float]] = {}
    for line in lines[:-1]:
        name, value = line.split()
        losses.setdefault(name, []).append(float(value))
    assert list(losses) == ["SGD", "Momentum", "AdaGrad", "Adam"]
    for name, curve in losses.items():
        assert curve[-1] < curve[0], (name, curve)
    # the book's picture: the adaptive methods and momentum get far below plain SGD
    assert max(losses[n][-1] for n in ("Momentum", "AdaGrad", "Adam")) < losses["SGD"][-1]
    label, plain, normed = lines[-1].split()
    assert label == "batchnorm" and float(normed) > float(plain) and float(normed) > 0.6


@pytest.mark.slow
def test_ch07_convnet_trains_saves_and_reloads(tmp_path: Path) -> None:
    lines = run_script("ch07_convnet.py", "2000", "2", str(tmp_path), cwd=tmp_path)
    epochs = [line for line in lines if line.startswith("=== epoch:")]
    assert len(epochs) == 2 and all("train loss:" in line for line in lines[:40:20])
    final = float(lines[lines.index("=============== Final Test Accuracy ===============") + 1]
                  .removeprefix("test acc:"))
    assert final > 0.5  # 0.579 measured: 40 Adam steps on 2000 images, 10 classes
    assert lines[-1] == f"reloaded {final}"
    assert (tmp_path / "params.npz").is_file() and not (tmp_path / "params.pkl").exists()
