"""Helpers for the benchmark suites (imported as `benchlib`: bench/ is on sys.path).

Each benchmark records ``extra_info["backend"]`` and, for the one every other entry of its
group is compared to, ``extra_info["baseline"] = True``; ``bench/run.py`` builds its
table from those.

Two modes, one body: with ``--benchmark-enable`` (``bench/run.py``) a benchmark times the
sizes its group names; with ``--benchmark-disable`` (plain ``pytest``) ``benchmark.enabled``
is false and the body runs once, as a correctness pass, on shapes that take a second or
less, with the same assertions.
"""

from __future__ import annotations

import importlib.util

import pytest
from support import FASHION_DIR, cuda_missing  # noqa: F401  (FASHION_DIR re-exported for the suites)

CUDA_REASON = cuda_missing()
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def needs(backend: str) -> list[pytest.MarkDecorator]:
    """Marks that skip ``backend`` where it cannot run (CUDA ones also get the cuda mark)."""
    marks = []
    if "cuda" in backend or backend.startswith("cupy"):
        marks.append(pytest.mark.cuda)
        if CUDA_REASON:
            marks.append(pytest.mark.skip(reason=f"needs CUDA: {CUDA_REASON}"))
    if backend.startswith("torch") and not HAVE_TORCH:
        marks.append(pytest.mark.skip(reason="PyTorch is not installed (pip install torch)"))
    return marks


def backends(*names: str) -> list:
    """``pytest.param`` for each backend name, with its skip marks."""
    return [pytest.param(name, marks=needs(name), id=name) for name in names]


def record(benchmark, group: str, backend: str, *, baseline: bool = False, **info) -> None:
    """Name the benchmark's group and backend for the summary table."""
    benchmark.group = group
    benchmark.extra_info.update(backend=backend, baseline=baseline, **info)
