"""Helpers shared by tests/ and bench/ (imported as `support`: both put tests/ on sys.path).

The one definition of where the real Fashion-MNIST files are and when to skip without them,
of what a skip for want of CUDA says, and of how a folder of tests runs on the CuPy
stand-in (in a process of its own).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Debian's dataset-fashion-mnist package; .ci/run installs it.
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MISSING = f"Fashion-MNIST not in {FASHION_DIR}: apt-get install dataset-fashion-mnist"


def have_fashion_mnist() -> bool:
    """Whether all four files of the Debian package are there."""
    return all((FASHION_DIR / name).is_file() for name in FASHION_FILES)


def require_fashion_mnist() -> Path:
    """The Fashion-MNIST directory; skip without it, but fail in CI, which installs it."""
    if not have_fashion_mnist():
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return FASHION_DIR


def load_fashion() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Real Fashion-MNIST: (x_train, t_train), (x_test, t_test), float32 / 255, uint8 labels."""
    require_fashion_mnist()
    from xpnet.dataset.fashion_mnist import load_fashion_mnist

    return load_fashion_mnist(normalize=True, flatten=True, one_hot_label=False,
                              data_dir=FASHION_DIR, download=False)


def cuda_missing() -> str | None:
    """What keeps CUDA from this machine, short ("CuPy is not installed"); None if usable.

    A skip line is one of many: it names what is missing (DeviceError.reason without its
    parenthesised detail), not the error's whole sentence with its install advice.
    """
    from xpnet.backend import DeviceError, parse_device

    try:
        parse_device("cuda")
    except DeviceError as err:
        return err.reason.split(" (")[0]
    return None


TESTS = Path(__file__).resolve().parent
STANDIN = TESTS / "standin"


def standin_is_cupy() -> bool:
    """Whether ``import cupy`` would give the stand-in (found, never imported)."""
    spec = importlib.util.find_spec("cupy")
    return spec is not None and spec.origin is not None and Path(spec.origin).is_relative_to(
        STANDIN)


def reset_standin() -> None:
    """Device 0 current, the legacy streams current, no capture left open by a test."""
    from cupy import _standin

    _standin.set_device(0)
    for stack in _standin.current_streams:
        stack.clear()
    for state in _standin._streams.values():
        state.recording, state.buffers, state.invalidated = None, [], False


def run_on_standin(folder: str, timeout: int) -> None:
    """Run tests/<folder> where ``import cupy`` is the stand-in; fail with its report.

    A fresh interpreter: NUMBA_ENABLE_CUDASIM must be set before Numba is imported, and
    the main run must never see the stand-in as ``cupy`` (every cuda-marked test would
    take it for CuPy). Every test there must pass: none skipped.
    """
    path = os.pathsep.join(p for p in (str(STANDIN), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "NUMBA_ENABLE_CUDASIM": "1"}
    env.pop("XPNET_DEVICE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(TESTS / folder), "-q", "-p", "no:cacheprovider",
         "-o", "addopts="],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=TESTS.parent,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary


DASK = Path(sys.executable).with_name("dask")  # the dask command of this environment


def start_logged(command: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """Start ``command`` (a Dask scheduler or worker) in its own session, its output to
    ``log``: a file, not a pipe nobody reads, which would block the process when full."""
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=cwd,
                            start_new_session=True)


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each, then wait (30 s each at most) and kill what is left."""
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
