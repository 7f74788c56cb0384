"""kernels.mlp_numerical_gradient's CUDA kernels on Numba's CUDA simulator, against the CPU's.

Tiny shapes: the simulator runs each thread in Python. Run in a process of its own:
NUMBA_ENABLE_CUDASIM=1 pytest tests/cudasim -p no:cacheprovider
"""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip(
        "needs NUMBA_ENABLE_CUDASIM=1 set before numba is imported", allow_module_level=True
    )

from numba import cuda  # noqa: E402
from xpnet.kernels import mlp_numerical_gradient as mlp  # noqa: E402


def make(seed, sizes, batch, dtype):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((a, b)).astype(dtype)
               for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [(0.3 * rng.standard_normal(b)).astype(dtype) for b in sizes[1:]]
    x = rng.random((batch, sizes[0]))
    x[x < 0.3] = 0.0
    return weights, biases, x.astype(dtype), rng.integers(0, sizes[-1], batch)


@pytest.mark.parametrize(("activation", "sizes", "lam", "dtype"), [
    ("sigmoid", [5, 4, 3], 0.0, np.float64),
    ("relu", [5, 4, 3, 3], 0.1, np.float64),
    ("sigmoid", [4, 3, 4, 3, 2], 0.05, np.float32),
    ("relu", [4, 3], 0.0, np.float32),
])
def test_cuda_matches_cpu(activation, sizes, lam, dtype):
    weights, biases, x, t = make(len(sizes) + int(lam * 100), sizes, 3, dtype)
    cpu_w, cpu_b = mlp.mlp_numerical_gradient(weights, biases, x, t, activation=activation,
                                              weight_decay_lambda=lam)
    gpu_w, gpu_b = mlp.mlp_numerical_gradient_cuda(
        [cuda.to_device(w) for w in weights], [cuda.to_device(b) for b in biases],
        cuda.to_device(x), cuda.to_device(t), activation=activation, weight_decay_lambda=lam)
    for got, expected in zip([*gpu_w, *gpu_b], [*cpu_w, *cpu_b], strict=True):
        host = got.copy_to_host()
        assert host.dtype == np.float64 and host.shape == expected.shape
        np.testing.assert_allclose(host, expected, rtol=0, atol=1e-12)
    assert max(np.abs(g).max() for g in cpu_w) > 1e-2


def test_launches_in_chunks(monkeypatch):
    # A scratch budget of a few rows splits each layer over several launches.
    monkeypatch.setattr(mlp, "SCRATCH_BYTES", 16 * 4 * 3)
    monkeypatch.setattr(mlp, "THREADS", 2)
    weights, biases, x, t = make(9, [4, 3, 4, 2], 2, np.float64)
    cpu = mlp.mlp_numerical_gradient(weights, biases, x, t, activation="sigmoid")
    gpu_w, gpu_b = mlp.mlp_numerical_gradient_cuda(
        [cuda.to_device(w) for w in weights], [cuda.to_device(b) for b in biases],
        cuda.to_device(x), cuda.to_device(t), activation="sigmoid")
    for got, expected in zip([*gpu_w, *gpu_b], [*cpu[0], *cpu[1]], strict=True):
        np.testing.assert_allclose(got.copy_to_host(), expected, rtol=0, atol=1e-12)
