"""Helpers shared by the test modules (imported as `support`: tests/ is on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def cuda_unavailable_reason() -> str | None:
    """Why CUDA tests cannot run here, or None when CuPy sees a device."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
    except Exception as err:
        return f"no usable CUDA device ({type(err).__name__})"
    return None


def require_fashion_mnist() -> Path:
    """The Debian Fashion-MNIST directory; skip without it (CI installs it, so CI fails)."""
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        message = f"Fashion-MNIST not found in {FASHION_DIR}: apt-get install dataset-fashion-mnist"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return FASHION_DIR
