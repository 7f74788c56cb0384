"""The gradient check of the book's MultiLayerNet (ReLU, weight decay): its loop vs the kernels."""

from __future__ import annotations

import book
import numpy as np
import pytest
from benchlib import backends, record
from xpnet.kernels import mlp_numerical_gradient as mlp

GROUP = "MultiLayerNet numerical gradient (784-100-100-10 ReLU, weight decay, batch 10)"
LAMBDA = 0.1


def net_and_batch(batch100, hidden, size):
    """He-initialised weights (the book's default for ReLU), zero biases, real images."""
    rng = np.random.default_rng(0)
    sizes = [784, *hidden, 10]
    weights = [np.sqrt(2.0 / a) * rng.standard_normal((a, b))
               for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [np.zeros(b) for b in sizes[1:]]
    return weights, biases, batch100[0][:size], batch100[1][:size]


def loop_gradient(weights, biases, x, t):
    """The book's MultiLayerNet.numerical_gradient: every parameter through the whole loss."""
    def loss(_):
        z = x
        for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
            a = np.dot(z, w) + b
            z = book.relu(a) if layer < len(weights) - 1 else a
        decay = 0
        for w in weights:
            decay += 0.5 * LAMBDA * np.sum(w**2)
        return book.softmax_loss(z, t) + decay

    return ([book.numerical_gradient(loss, w) for w in weights],
            [book.numerical_gradient(loss, b) for b in biases])


@pytest.mark.parametrize("backend", backends("numpy", "numba-cpu", "numba-cuda"))
def test_mlp_numerical_gradient(benchmark, backend, batch100) -> None:
    # Timing: the group's net on 10 images. The correctness pass (--benchmark-disable)
    # runs 784-8-6-10 on 3 images (the book's gradient-check batch).
    hidden, size = ((100, 100), 10) if benchmark.enabled else ((8, 6), 3)
    weights, biases, x, t = net_and_batch(batch100, hidden, size)
    options = {"activation": "relu", "weight_decay_lambda": LAMBDA}

    if backend == "numpy":
        def run():
            return loop_gradient(weights, biases, x, t)

        rounds, warmup = 1, 0
    elif backend == "numba-cpu":
        def run():
            return mlp.mlp_numerical_gradient(weights, biases, x, t, **options)

        rounds, warmup = 5, 1
    else:
        from numba import cuda

        dev = [[cuda.to_device(a) for a in group] for group in (weights, biases)]
        xd, td = cuda.to_device(x), cuda.to_device(t)

        def run():
            grads = mlp.mlp_numerical_gradient_cuda(*dev, xd, td, **options)
            cuda.synchronize()
            return grads

        rounds, warmup = 5, 1

    record(benchmark, GROUP, backend, baseline=backend == "numpy", dtype="float64")
    got_w, got_b = benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup, iterations=1)
    if backend == "numba-cuda":
        got_w, got_b = [g.copy_to_host() for g in got_w], [g.copy_to_host() for g in got_b]
    # What was timed is checked against the CPU kernel (for "numpy": the loop vs the kernel).
    ref_w, ref_b = mlp.mlp_numerical_gradient(weights, biases, x, t, **options)
    for g, r in zip([*got_w, *got_b], [*ref_w, *ref_b], strict=True):
        assert np.abs(g - r).max() < 1e-9
