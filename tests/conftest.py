"""Shared test setup: the real Fashion-MNIST files, the `cuda` marker, device isolation."""

from __future__ import annotations

import os

import numpy as np
import pytest
from support import cuda_missing, load_fashion

from xpnet import backend

# The CUDA-simulator tests need NUMBA_ENABLE_CUDASIM=1 before numba is imported, so they
# run in a process of their own (tests/test_cuda_simulator.py starts it).
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cudasim"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("cuda" in item.keywords for item in items):
        return
    reason = cuda_missing()
    if reason:
        skip = pytest.mark.skip(reason=f"needs CUDA: {reason}")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _private_caches(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every cache and download of the run (and its subprocesses) out of the home dir."""
    root = tmp_path_factory.mktemp("xpnet-home")
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")
    os.environ["XPNET_DATA_DIR"] = str(root / "data")


@pytest.fixture(autouse=True)
def _fresh_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with XPNET_DEVICE unset and the device not yet resolved."""
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    monkeypatch.setattr(backend, "_current", None)
    monkeypatch.setattr(backend, "_auto_fallback_said", False)


@pytest.fixture(scope="session")
def fashion() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Real Fashion-MNIST: (x_train, t_train), (x_test, t_test), float32/255, labels."""
    return load_fashion()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261128)
