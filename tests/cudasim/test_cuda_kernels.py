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
from xpnet.kernels import softmax_cross_entropy_with_grad, two_layer_numerical_gradient  # noqa: E402
from xpnet.kernels.cuda import softmax_cross_entropy as softmax_cross_entropy_cuda  # noqa: E402
from xpnet.kernels.cuda import (  # noqa: E402
    two_layer_numerical_gradient as two_layer_numerical_gradient_cuda,
)

NAMES = ("W1", "b1", "W2", "b2")


def test_really_simulated():
    assert numba.config.ENABLE_CUDASIM
    assert "simulator" in type(cuda.to_device(np.zeros(1))).__module__


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_cross_entropy_matches_cpu(dtype, label_dtype):
    rng = np.random.default_rng(1)
    logits = (50 * rng.standard_normal((5, 4))).astype(dtype)
    t = rng.integers(0, 4, 5).astype(label_dtype)
    losses = cuda.device_array(5, np.float64)
    dlogits = cuda.device_array((5, 4), dtype)
    softmax_cross_entropy_cuda(cuda.to_device(logits), cuda.to_device(t), losses, dlogits)
    loss, grad = softmax_cross_entropy_with_grad(logits, t)
    assert losses.copy_to_host().sum() / 5 == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(dlogits.copy_to_host(), grad, rtol=0, atol=1e-15)


def test_cross_entropy_without_gradient_and_bad_label():
    logits = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
    losses = cuda.device_array(2, np.float64)
    softmax_cross_entropy_cuda(cuda.to_device(logits), cuda.to_device(np.array([2, 3])), losses)
    got = losses.copy_to_host()
    assert got[0] == pytest.approx(softmax_cross_entropy_with_grad(logits[:1], [2])[0], rel=1e-15)
    assert np.isnan(got[1])


def test_cross_entropy_validation():
    logits = cuda.to_device(np.zeros((2, 3)))
    labels = cuda.to_device(np.zeros(2, np.int64))
    with pytest.raises(TypeError, match="^logits: expected a device array"):
        softmax_cross_entropy_cuda(np.zeros((2, 3)), labels, cuda.device_array(2))
    with pytest.raises(ValueError, match="^row_losses_out: expected a float64 array of shape"):
        softmax_cross_entropy_cuda(logits, labels, cuda.device_array(2, np.float32))
    with pytest.raises(ValueError, match="^dlogits_out: expected a float64 array of shape"):
        softmax_cross_entropy_cuda(logits, labels, cuda.device_array(2), cuda.device_array(2))
    with pytest.raises(TypeError, match="^labels: expected an integer array"):
        softmax_cross_entropy_cuda(logits, cuda.to_device(np.zeros(2)), cuda.device_array(2))


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
    gpu = two_layer_numerical_gradient_cuda(*(cuda.to_device(a) for a in args), h=h)
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


def test_numerical_gradient_validation():
    net, x, t = make(4)
    dev = {k: cuda.to_device(v) for k, v in {**net, "x": x, "t": t}.items()}
    bad_w2 = net["W2"].copy()
    bad_w2[1, 2] = np.inf
    cases = [
        ({"W2": cuda.to_device(bad_w2)}, ValueError, "^W2: expected finite values"),
        (
            {"t": cuda.to_device(np.array([0, 1, 3, 0]))},
            ValueError,
            r"^labels: expected .* \[0, 2\]",
        ),
        ({"b1": cuda.to_device(np.zeros(5))}, ValueError, r"^b1: expected .* shape \(4,\)"),
        ({"x": net["W1"]}, TypeError, "^x: expected a device array"),
    ]
    for change, error, pattern in cases:
        args = {**dev, **change}
        with pytest.raises(error, match=pattern):
            two_layer_numerical_gradient_cuda(*(args[k] for k in (*NAMES, "x", "t")))
