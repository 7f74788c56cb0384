"""Shared test setup: the real Fashion-MNIST files, the `cuda` marker, device isolation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from xpnet import backend

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# The CUDA-simulator tests need NUMBA_ENABLE_CUDASIM=1 before numba is imported, so they
# run in a process of their own (tests/test_cuda_simulator.py starts it).
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cudasim"]


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("cuda" in item.keywords for item in items):
        return
    reason = cuda_unavailable_reason()
    if reason:
        skip = pytest.mark.skip(reason=f"needs CUDA: {reason}")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with XPNET_DEVICE unset and the device not yet resolved."""
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    monkeypatch.setattr(backend, "_current", None)
    monkeypatch.setattr(backend, "_auto_fallback_said", False)


def require_fashion_mnist() -> Path:
    """The Debian Fashion-MNIST directory; skip without it (CI installs it, so CI fails)."""
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        message = f"Fashion-MNIST not found in {FASHION_DIR}: apt-get install dataset-fashion-mnist"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return FASHION_DIR


@pytest.fixture(scope="session")
def fashion() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Real Fashion-MNIST: (x_train, t_train), (x_test, t_test), float32/255, labels."""
    require_fashion_mnist()
    from dataset.fashion_mnist import load_fashion_mnist

    return load_fashion_mnist(normalize=True, flatten=True, one_hot_label=False,
                              data_dir=FASHION_DIR, download=False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261128)
