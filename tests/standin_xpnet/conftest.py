"""xpnet's CUDA paths on the CuPy stand-in: collected only where ``import cupy`` is the stand-in.

tests/test_standin_xpnet.py runs this folder in its own process with
PYTHONPATH=tests/standin and NUMBA_ENABLE_CUDASIM=1 (set before Numba is imported); the
main run never imports the stand-in as ``cupy``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from support import reset_standin, standin_is_cupy

TESTS = Path(__file__).resolve().parent.parent

collect_ignore_glob = [] if standin_is_cupy() else ["*"]


if not collect_ignore_glob:
    import numpy as np
    import pytest

    sys.path.insert(0, str(TESTS))  # dataset_helpers

    @pytest.fixture(autouse=True)
    def _fresh_standin():
        """Each test starts on device 0, legacy streams current, no capture open."""
        yield
        reset_standin()

    @pytest.fixture(scope="session")
    def small_data(tmp_path_factory) -> Path:
        """A data folder of small MNIST-format IDX files (60 training, 20 test images)."""
        from dataset_helpers import blobs_for, make_arrays, write_files

        folder = tmp_path_factory.mktemp("idx")
        write_files(folder, blobs_for(make_arrays(0, 60, 20)))
        return folder

    @pytest.fixture
    def rng() -> np.random.Generator:
        return np.random.default_rng(20261130)
