"""Softmax + cross-entropy, forward and backward, from logits."""

from __future__ import annotations

import numpy as np
import pytest
from benchlib import backends, record

from xpnet import fused
from xpnet.backend import asnumpy, get_array_module, synchronize, to_device
from xpnet.functions import cross_entropy_error, softmax

GROUP = "cross-entropy forward+backward"


def book_ce(logits, labels):
    """The book's way, on any array module: softmax, CEE, then (y - onehot) / B."""
    xp = get_array_module(logits)
    y = softmax(logits)
    loss = cross_entropy_error(y, labels)
    dy = y.copy()
    dy[xp.arange(y.shape[0]), labels] -= 1
    return loss, dy / y.shape[0]


@pytest.mark.parametrize("batch", [100, 8192])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", backends("numpy", "numba-cpu", "numba-cuda", "cupy"))
def test_cross_entropy(benchmark, backend, dtype, batch) -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=4, size=(batch, 10)).astype(dtype)
    labels = rng.integers(0, 10, size=batch)
    expected_loss, expected_grad = book_ce(logits.astype(np.float64), labels)
    device = "cpu" if backend in ("numpy", "numba-cpu") else "cuda"
    x, t = to_device(logits, device), to_device(labels, device)
    fn = book_ce if backend in ("numpy", "cupy") else fused.cross_entropy_with_grad

    def run():
        out = fn(x, t)
        synchronize(device)
        return out

    record(benchmark, GROUP, backend, baseline=backend == "numpy", dtype=dtype, batch=batch)
    loss, grad = benchmark.pedantic(run, rounds=50, warmup_rounds=2, iterations=10)
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert float(loss) == pytest.approx(expected_loss, rel=tol)
    np.testing.assert_allclose(asnumpy(grad), expected_grad, atol=tol)
