# ruff: noqa: NPY002  (the nets draw their weights from the book's global generator)
"""What each chapter gains from xpnet.common: the gradient checks of chapters 5 and 6 through
the fused kernel against the book's loop, and a chapter-7 SimpleConvNet training step.

The book's loop is timed as ``numerical_gradient(x, t, method="generic")``: the book's method
(every parameter perturbed in turn, two whole losses each) on xpnet.common's layers, which
compute the book's NumPy operations in the book's order (the same numbers to the bit:
/work/notes/book_check). On the CPU, layers and convolutions are that same NumPy code, so
the chapter-7 step has no CPU speed-up to show: its CPU row is xpnet's time, reported as is,
and the CUDA row (CuPy, on a GPU) is the gain.
"""

from __future__ import annotations

import numpy as np
import pytest
from benchlib import backends, record

from xpnet.backend import asnumpy, synchronize
from xpnet.common.multi_layer_net import MultiLayerNet
from xpnet.common.optimizer import Adam
from xpnet.common.simple_convnet import SimpleConvNet
from xpnet.common.two_layer_net import TwoLayerNet

CH05 = "ch05 gradient check (TwoLayerNet 784-50-10 ReLU, 3 samples)"
CH06 = "ch06 gradient check (MultiLayerNet 784-100-100-10 ReLU, weight decay 0.1, 3 samples)"
CH07 = "ch07 SimpleConvNet training step (1x28x28, 30 5x5 filters, 100-10, Adam, batch 100)"
LAMBDA = 0.1


def gradient_check_run(net, x, t, backend):
    """The function to time: the net's numerical gradient the way ``backend`` computes it."""
    device = "cuda" if backend.endswith("cuda") else "cpu"
    method = "generic" if backend == "numpy" else "fused"

    def run():
        grads = net.numerical_gradient(x, t, method=method)
        synchronize(device)
        return grads

    return run, ((1, 0) if backend == "numpy" else (5, 1))


def check_against_backprop(grads, net, x, t, atol):
    """What was timed is the gradient: the net's backprop, to the central difference's error
    and the book's 1e-7 inside the log (up to ~1e-7 / p for a class of probability p)."""
    backprop = net.gradient(x, t)
    assert list(grads) == list(backprop)
    for key in grads:
        assert np.abs(asnumpy(grads[key]) - asnumpy(backprop[key])).max() < atol, key


@pytest.mark.parametrize("backend", backends("numpy", "numba-cpu", "numba-cuda"))
def test_ch05_gradient_check(benchmark, backend, batch100) -> None:
    # Timing: the book's gradient_check.py (784-50-10, 3 images, one-hot labels). The
    # correctness pass (--benchmark-disable) runs 784-5-10.
    hidden = 50 if benchmark.enabled else 5
    device = "cuda" if backend.endswith("cuda") else "cpu"
    np.random.seed(0)
    net = TwoLayerNet(784, hidden, 10, device=device)
    x, t = batch100[0][:3], np.eye(10)[batch100[1][:3]]
    run, (rounds, warmup) = gradient_check_run(net, x, t, backend)
    record(benchmark, CH05, backend, baseline=backend == "numpy", dtype="float64")
    grads = benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup, iterations=1)
    check_against_backprop(grads, net, x, t, atol=1e-5)


@pytest.mark.parametrize("backend", backends("numpy", "numba-cpu", "numba-cuda"))
def test_ch06_gradient_check_with_weight_decay(benchmark, backend, batch100) -> None:
    # Timing: 784-100-100-10, He init (the book's ReLU default), lambda 0.1, 3 images. The
    # correctness pass runs 784-8-6-10.
    hidden = [100, 100] if benchmark.enabled else [8, 6]
    device = "cuda" if backend.endswith("cuda") else "cpu"
    np.random.seed(0)
    net = MultiLayerNet(784, hidden, 10, weight_decay_lambda=LAMBDA, device=device)
    x, t = batch100[0][:3], batch100[1][:3]
    run, (rounds, warmup) = gradient_check_run(net, x, t, backend)
    record(benchmark, CH06, backend, baseline=backend == "numpy", dtype="float64")
    grads = benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup, iterations=1)
    check_against_backprop(grads, net, x, t, atol=1e-5)


@pytest.mark.parametrize("backend", backends("numpy", "cupy"))
def test_ch07_simple_convnet_step(benchmark, backend, fashion) -> None:
    # Timing: the book's train_convnet.py net and step (gradient, Adam update) on 100 real
    # images. The correctness pass runs 5 filters on 10 images.
    filters, size = (30, 100) if benchmark.enabled else (5, 10)
    device = "cuda" if backend == "cupy" else "cpu"
    (x_train, t_train), _ = fashion
    x = x_train[:size].reshape(size, 1, 28, 28)  # NumPy batches, as the book's loop passes
    t = t_train[:size]
    np.random.seed(0)
    net = SimpleConvNet((1, 28, 28), {"filter_num": filters, "filter_size": 5, "pad": 0,
                                      "stride": 1}, 100, 10, 0.01, device=device)
    optimizer = Adam(lr=0.001)
    before = float(net.loss(x, t))

    def step():
        grads = net.gradient(x, t)
        optimizer.update(net.params, grads)
        synchronize(device)

    record(benchmark, CH07, backend, baseline=backend == "numpy", dtype="float64")
    benchmark.pedantic(step, rounds=10 if benchmark.enabled else 3, warmup_rounds=1,
                       iterations=1)
    assert float(net.loss(x, t)) < before  # Adam steps on one batch lower its loss
