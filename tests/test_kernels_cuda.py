"""kernels.cuda on a real GPU with CuPy arrays, against the CPU kernels (skips without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
from xpnet.kernels import softmax_cross_entropy_with_grad, two_layer_numerical_gradient

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 100, 8192])
def test_cross_entropy_on_cupy_equals_cpu(dtype, batch) -> None:
    import cupy
    from xpnet.kernels import cuda as kcuda

    rng = np.random.default_rng(3)
    logits = (30 * rng.standard_normal((batch, 10))).astype(dtype)
    labels = rng.integers(0, 10, batch)
    loss, grad = softmax_cross_entropy_with_grad(logits, labels)
    rows = cupy.empty(batch, dtype=np.float64)
    dlogits = cupy.empty((batch, 10), dtype=dtype)
    kcuda.softmax_cross_entropy(cupy.asarray(logits), cupy.asarray(labels), rows, dlogits)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert float(rows.sum()) / batch == pytest.approx(loss, rel=tol)
    np.testing.assert_allclose(cupy.asnumpy(dlogits), grad, rtol=tol, atol=tol / batch)


def test_out_of_range_label_poisons_its_row_only() -> None:
    import cupy
    from xpnet.kernels import cuda as kcuda

    logits = cupy.zeros((3, 4))
    rows = cupy.empty(3)
    kcuda.softmax_cross_entropy(logits, cupy.asarray([0, 9, 1]), rows)
    out = cupy.asnumpy(rows)
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()


def test_numerical_gradient_on_cupy_equals_cpu() -> None:
    import cupy
    from xpnet.kernels import cuda as kcuda

    rng = np.random.default_rng(4)
    x = rng.random((100, 784))
    x[x < 0.5] = 0.0
    labels = rng.integers(0, 10, 100)
    params = (0.1 * rng.standard_normal((784, 50)), 0.1 * rng.standard_normal(50),
              0.1 * rng.standard_normal((50, 10)), 0.1 * rng.standard_normal(10))
    cpu = two_layer_numerical_gradient(*params, x, labels)
    gpu = kcuda.two_layer_numerical_gradient(*(cupy.asarray(p) for p in params),
                                             cupy.asarray(x), cupy.asarray(labels))
    for c, g in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(cupy.asnumpy(cupy.asarray(g)), c, rtol=0, atol=1e-12)
