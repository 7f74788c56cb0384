"""Helpers shared by the test modules (imported as `support`: tests/ is on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def require_fashion_mnist() -> Path:
    """The Debian Fashion-MNIST directory; skip without it (CI installs it, so CI fails)."""
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        message = f"Fashion-MNIST not found in {FASHION_DIR}: apt-get install dataset-fashion-mnist"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return FASHION_DIR
