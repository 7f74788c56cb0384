"""kernels.cuda on Numba's CUDA simulator, against the CPU kernels (tiny shapes: it is slow).

Run in a process of its own: NUMBA_ENABLE_CUDASIM=1 pytest tests/cudasim -p no:cacheprovider
"""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip(
        "needs NUMBA_ENABLE_CUDASIM=1 set before numba is imported", allow_module_level=True
    )

import numba  # noqa: E402
from numba import cuda  # noqa: E402
from xpnet.kernels import cuda as kcuda  # noqa: E402
from xpnet.kernels import softmax_cross_entropy, two_layer_numerical_gradient  # noqa: E402

NAMES = ("W1", "b1", "W2", "b2")


def test_really_simulated():
    assert numba.config.ENABLE_CUDASIM
    assert "simulator" in type(cuda.to_device(np.zeros(1))).__module__


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("want_grad", [True, False])
def test_cross_entropy_matches_cpu(dtype, want_grad):
    rng = np.random.default_rng(1)
    logits = (50 * rng.standard_normal((5, 4))).astype(dtype)
    t = rng.integers(0, 4, 5)
    rows, grad = np.empty(5), np.empty_like(logits)
    softmax_cross_entropy(logits, t, rows, grad)
    rows_gpu = cuda.device_array(5, np.float64)
    dlogits = cuda.device_array((5, 4), dtype) if want_grad else None
    kcuda.softmax_cross_entropy(cuda.to_device(logits), cuda.to_device(t), rows_gpu, dlogits)
    np.testing.assert_allclose(rows_gpu.copy_to_host(), rows, rtol=1e-15, atol=0)
    if want_grad:
        np.testing.assert_allclose(dlogits.copy_to_host(), grad, rtol=0, atol=1e-15)


def make(seed, dtype=np.float64, w2_scale=1.0, batch=4):
    rng = np.random.default_rng(seed)
    net = {
        "W1": rng.standard_normal((6, 4)),
        "b1": 0.1 * rng.standard_normal(4),
        "W2": w2_scale * rng.standard_normal((4, 3)),
        "b2": 0.1 * rng.standard_normal(3),
    }
    x = rng.random((batch, 6))
    x[x < 0.4] = 0.0
    return {k: v.astype(dtype) for k, v in net.items()}, x.astype(dtype), rng.integers(0, 3, batch)


def both(net, x, t, h=1e-4):
    args = [net[k] for k in NAMES] + [x, t]
    gpu = kcuda.two_layer_numerical_gradient(*(cuda.to_device(a) for a in args), h=h)
    return [g.copy_to_host() for g in gpu], two_layer_numerical_gradient(*args, h=h)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numerical_gradient_matches_cpu(dtype):
    gpu, cpu = both(*make(2, dtype))
    for name, g, c in zip(NAMES, gpu, cpu, strict=True):
        assert g.dtype == np.float64 and g.shape == c.shape, name
        np.testing.assert_allclose(g, c, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(("w2_scale", "h"), [(300.0, 1e-4), (1.0, 1.5)])
def test_numerical_gradient_exact_paths_match_cpu(w2_scale, h):
    gpu, cpu = both(*make(3, w2_scale=w2_scale), h=h)
    for name, g, c in zip(NAMES, gpu, cpu, strict=True):
        np.testing.assert_allclose(g, c, rtol=0, atol=1e-12, err_msg=name)


def test_numerical_gradient_with_negative_inputs_matches_cpu():
    """Standardised x is half negative: the CUDA kernel's zero-skip must skip only zeros."""
    net, x, t = make(4)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-3)
    x[0, 2] = 0.0  # and a real zero, which the skip may drop
    assert (x < 0).sum() >= x.size // 3 and (x[:, 1] < 0).sum() == 2
    gpu, cpu = both(net, x, t)
    for name, g, c in zip(NAMES, gpu, cpu, strict=True):
        np.testing.assert_allclose(g, c, rtol=0, atol=1e-12, err_msg=name)
    assert np.abs(gpu[0][1]).max() > 1e-3  # W1's row of an input half negative


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numerical_gradient_into_given_outputs_and_workspace_allocates_nothing(dtype):
    net, x, t = make(5, dtype)
    args = [cuda.to_device(a) for a in [net[k] for k in NAMES] + [x, t]]
    out = tuple(cuda.device_array(net[k].shape, np.float64) for k in NAMES)
    workspace = kcuda.NumericalWorkspace(*x.shape, 4, 3, dtype)
    made = []
    real = cuda.device_array
    try:
        cuda.device_array = lambda *a, **k: made.append(a) or real(*a, **k)
        got = kcuda.two_layer_numerical_gradient(*args, out=out, workspace=workspace)
    finally:
        cuda.device_array = real
    assert got is out and made == []
    expected = two_layer_numerical_gradient(*[net[k] for k in NAMES], x, t)
    for name, g, c in zip(NAMES, out, expected, strict=True):
        np.testing.assert_allclose(g.copy_to_host(), c, rtol=0, atol=1e-12, err_msg=name)
