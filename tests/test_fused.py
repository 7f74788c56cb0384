"""xpnet.fused on the CPU: the book's numbers through the kernels, BLAS quiet meanwhile."""

from __future__ import annotations

import book
import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from xpnet import fused


def make(seed=5, batch=6, dims=(7, 4, 3)):
    rng = np.random.default_rng(seed)
    d_in, hidden, out = dims
    params = (0.5 * rng.standard_normal((d_in, hidden)), 0.1 * rng.standard_normal(hidden),
              0.5 * rng.standard_normal((hidden, out)), 0.1 * rng.standard_normal(out))
    x = rng.random((batch, d_in))
    return params, x, rng.integers(0, out, batch).astype(np.intp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_the_books(dtype):
    rng = np.random.default_rng(1)
    logits = (3 * rng.standard_normal((9, 5))).astype(dtype)
    t = rng.integers(0, 5, 9).astype(np.intp)
    y = book.softmax(logits.astype(np.float64))
    expected = book.cross_entropy_error(y, t)
    loss = fused.cross_entropy(logits, t)
    assert type(loss) is np.float64 and loss == pytest.approx(expected, rel=1e-14)
    loss2, dlogits = fused.cross_entropy_with_grad(logits, t)
    assert loss2 == loss and dlogits.dtype == dtype
    atol = 1e-16 if dtype == np.float64 else 1e-8
    np.testing.assert_allclose(dlogits, (y - np.eye(5)[t]) / 9, rtol=0, atol=atol)


def test_numerical_gradient_is_the_books():
    params, x, t = make()
    net = book.TwoLayerNet(7, 4, 3)
    net.params = dict(zip(("W1", "b1", "W2", "b2"), (p.copy() for p in params), strict=True))
    expected = net.numerical_gradient(x, np.eye(3)[t])
    got = fused.two_layer_numerical_gradient(*params, x, t)
    assert isinstance(got, tuple) and len(got) == 4
    for g, k in zip(got, ("W1", "b1", "W2", "b2"), strict=True):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, expected[k], rtol=0, atol=1e-9, err_msg=k)


def blas_threads():
    blas = ThreadpoolController().select(user_api="blas")
    return [lib.num_threads for lib in blas.lib_controllers]


def test_numerical_gradient_quiets_blas_from_its_first_call_on(monkeypatch):
    # One BLAS thread from then on: BLAS workers spinning after the reader's own matrix
    # products (the loss between steps) would otherwise take the cores Numba needs.
    if not blas_threads():
        pytest.skip("no BLAS library loaded that threadpoolctl can see")
    seen = []
    kernel = fused.kernels.two_layer_numerical_gradient

    def spy(*args):
        seen.append(blas_threads())
        return kernel(*args)

    monkeypatch.setattr(fused.kernels, "two_layer_numerical_gradient", spy)
    monkeypatch.setattr(fused, "_blas_quieted", False)
    params, x, t = make()
    with ThreadpoolController().limit(limits=2, user_api="blas"):  # as on a 2-core machine
        before = blas_threads()
        fused.two_layer_numerical_gradient(*params, x, t)
        np.dot(x, params[0])  # the reader's own product between steps
        after = blas_threads()
        fused.two_layer_numerical_gradient(*params, x, t)
    assert before == [2] * len(before)
    assert seen == [[1] * len(before)] * 2
    assert after == [1] * len(before)
