"""kernels.mlp_numerical_gradient against a float64 central-difference loop of our own.

The reference is the book's MultiLayerNet gradient check written plainly: perturb one
parameter in place by +-h, evaluate the whole loss (batch-mean cross-entropy with 1e-7
inside the log, plus lambda / 2 * sum(W**2) over all weights), difference, restore.
"""

from __future__ import annotations

import numpy as np
import pytest
from xpnet.kernels import mlp_numerical_gradient as mlp

H = 1e-4


def forward_logits(weights, biases, x, activation):
    z = x
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        a = z @ w + b
        if layer < len(weights) - 1:
            z = 1 / (1 + np.exp(-a)) if activation == "sigmoid" else np.maximum(a, 0)
    return a


def reference_loss(weights, biases, x, t, activation, lam):
    a = forward_logits(weights, biases, x, activation)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.sum(np.log(p[np.arange(len(t)), t] + 1e-7)) / len(t)
    decay = 0.0
    for w in weights:
        decay += 0.5 * lam * np.sum(w**2)
    return loss + decay


def reference_gradient(weights, biases, x, t, activation, lam):
    """One parameter at a time, two whole losses each (the book's loop)."""
    grads = []
    for p in [*weights, *biases]:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            v = p[idx]
            p[idx] = v + H
            up = reference_loss(weights, biases, x, t, activation, lam)
            p[idx] = v - H
            down = reference_loss(weights, biases, x, t, activation, lam)
            p[idx] = v
            g[idx] = (up - down) / (2 * H)
        grads.append(g)
    return grads[: len(weights)], grads[len(weights):]


def make(seed, sizes, batch, zeros=0.3, scale=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    weights = [(scale * rng.standard_normal((a, b))).astype(dtype)
               for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [(0.3 * rng.standard_normal(b)).astype(dtype) for b in sizes[1:]]
    x = rng.random((batch, sizes[0]))
    x[x < zeros] = 0.0
    return weights, biases, x.astype(dtype), rng.integers(0, sizes[-1], batch)


def assert_close(got, expected, atol):
    for g, e in zip([*got[0], *got[1]], [*expected[0], *expected[1]], strict=True):
        assert g.dtype == np.float64 and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=0, atol=atol)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("hidden_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_matches_the_books_loop(activation, hidden_layers, lam):
    sizes = [7] + [5, 6, 4, 5][:hidden_layers] + [4]
    weights, biases, x, t = make(10 * hidden_layers + len(activation), sizes, batch=6)
    got = mlp.mlp_numerical_gradient(weights, biases, x, t, activation=activation,
                                     weight_decay_lambda=lam)
    expected = reference_gradient(weights, biases, x, t, activation, lam)
    assert_close(got, expected, atol=1e-9)
    assert max(np.abs(g).max() for g in got[0]) > 1e-2  # not a vanishing gradient


def test_one_layer_is_softmax_regression():
    weights, biases, x, t = make(3, [6, 5], batch=4)
    got = mlp.mlp_numerical_gradient(weights, biases, x, t, activation="sigmoid")
    assert_close(got, reference_gradient(weights, biases, x, t, "sigmoid", 0.0), atol=1e-9)


def test_float32_inputs_are_computed_in_float64():
    weights, biases, x, t = make(4, [8, 6, 6, 3], batch=5, dtype=np.float32)
    got = mlp.mlp_numerical_gradient(weights, biases, x, t, activation="relu",
                                     weight_decay_lambda=0.05)
    wide = ([w.astype(np.float64) for w in weights], [b.astype(np.float64) for b in biases])
    expected = reference_gradient(*wide, x.astype(np.float64), t, "relu", 0.05)
    assert_close(got, expected, atol=1e-9)


def test_relu_units_that_cross_zero_within_the_step():
    # Pre-activations within h of 0: the step switches a ReLU unit on one side only.
    weights, biases, x, t = make(5, [4, 3, 3, 2], batch=3, zeros=0.0)
    a1 = x @ weights[0] + biases[0]
    biases[0] = biases[0] - a1[0] + np.array([3e-5, -2e-5, 0.0])  # sample 0 sits at the kink
    got = mlp.mlp_numerical_gradient(weights, biases, x, t, activation="relu")
    assert_close(got, reference_gradient(weights, biases, x, t, "relu", 0.0), atol=1e-9)


def test_agrees_with_backprop_on_a_book_sized_net():
    # 784-30-20-10 on sparse inputs: the central difference is backprop to ~h^2 and 1e-7.
    weights, biases, x, t = make(6, [784, 30, 20, 10], batch=8, zeros=0.5, scale=0.1)
    gw, gb = mlp.mlp_numerical_gradient(weights, biases, x, t, activation="sigmoid",
                                        weight_decay_lambda=0.01)
    zs, z = [x], x
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        a = z @ w + b
        z = 1 / (1 + np.exp(-a)) if layer < 2 else a
        zs.append(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    d = e / e.sum(axis=1, keepdims=True)
    d[np.arange(8), t] -= 1
    d /= 8
    for layer in (2, 1, 0):
        np.testing.assert_allclose(gw[layer], zs[layer].T @ d + 0.01 * weights[layer],
                                   rtol=0, atol=1e-6)
        np.testing.assert_allclose(gb[layer], d.sum(axis=0), rtol=0, atol=1e-6)
        d = (d @ weights[layer].T) * zs[layer] * (1 - zs[layer])
