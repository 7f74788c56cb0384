"""Helpers shared by tests/ and bench/ (imported as `support`: both put tests/ on sys.path).

The one definition of where the real Fashion-MNIST files are and when to skip without them,
and of what a skip for want of CUDA says.
"""

from __future__ import annotations

import os
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
