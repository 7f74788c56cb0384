"""The book's own loop on a GPU net, the data moved to the device once (a reader's script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).parent / "scripts" / "train_neuralnet_gpu.py"
STANDIN = Path(__file__).resolve().parent.parent / "standin"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (str(STANDIN), os.environ.get("PYTHONPATH")) if p), "NUMBA_ENABLE_CUDASIM": "1"}


def run(tmp: Path, data: Path, device: str) -> tuple[list[str], dict[str, np.ndarray]]:
    folder = tmp / device.replace(":", "-")
    folder.mkdir()
    result = subprocess.run([sys.executable, str(SCRIPT), str(data), device, "13"],
                            capture_output=True, text=True, timeout=120, cwd=folder, env=ENV)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    with np.load(folder / "params.npz", allow_pickle=False) as f:
        return result.stdout.splitlines(), {k: f[k] for k in ("W1", "b1", "W2", "b2")}


def test_the_readers_loop_on_a_gpu_prints_and_learns_what_the_cpu_does(small_data,
                                                                        tmp_path) -> None:
    cpu_lines, cpu = run(tmp_path, small_data, "cpu")
    for device in ("cuda", "cuda:1"):
        lines, params = run(tmp_path, small_data, device)
        accuracy = [line for line in lines if line.startswith("train acc")]
        assert accuracy == [line for line in cpu_lines if line.startswith("train acc")]
        assert len(accuracy) == 3  # iterations 0, 6 and 12 of 13 (60 images, batch 10)
        losses = np.array(lines[-1].removeprefix("losses | ").split(), dtype=float)
        cpu_losses = np.array(cpu_lines[-1].removeprefix("losses | ").split(), dtype=float)
        np.testing.assert_allclose(losses, cpu_losses, rtol=0, atol=1e-12)
        for k, v in cpu.items():
            np.testing.assert_allclose(params[k], v, rtol=0, atol=1e-12, err_msg=k)
