"""kernels.cuda on a real GPU with CuPy arrays, against the CPU kernels (skips without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
from xpnet.kernels import softmax_cross_entropy, two_layer_numerical_gradient

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 100, 8192])
def test_cross_entropy_on_cupy_equals_cpu(dtype, batch) -> None:
    import cupy
    from xpnet.kernels import cuda as kcuda

    rng = np.random.default_rng(3)
    logits = (30 * rng.standard_normal((batch, 10))).astype(dtype)
    labels = rng.integers(0, 10, batch)
    rows, grad = np.empty(batch), np.empty_like(logits)
    softmax_cross_entropy(logits, labels, rows, grad)
    rows_gpu = cupy.empty(batch, dtype=np.float64)
    dlogits = cupy.empty((batch, 10), dtype=dtype)
    kcuda.softmax_cross_entropy(cupy.asarray(logits), cupy.asarray(labels), rows_gpu, dlogits)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(cupy.asnumpy(rows_gpu), rows, rtol=tol, atol=tol)
    np.testing.assert_allclose(cupy.asnumpy(dlogits), grad, rtol=tol, atol=tol / batch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numerical_gradient_on_cupy_equals_cpu(dtype) -> None:
    import cupy
    from xpnet.kernels import cuda as kcuda

    rng = np.random.default_rng(4)
    x = rng.random((100, 784))
    x[x < 0.5] = 0.0
    labels = rng.integers(0, 10, 100)
    params = (0.1 * rng.standard_normal((784, 50)), 0.1 * rng.standard_normal(50),
              0.1 * rng.standard_normal((50, 10)), 0.1 * rng.standard_normal(10))
    params = tuple(p.astype(dtype) for p in params)
    x = x.astype(dtype)
    cpu = two_layer_numerical_gradient(*params, x, labels)
    gpu = kcuda.two_layer_numerical_gradient(*(cupy.asarray(p) for p in params),
                                             cupy.asarray(x), cupy.asarray(labels))
    for c, g in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(cupy.asnumpy(cupy.asarray(g)), c, rtol=0, atol=1e-12)
