"""Numerical gradient of the 784-50-10 net on 100 real images: the book's loop vs fused."""

from __future__ import annotations

import book
import numpy as np
import pytest
from benchlib import backends, needs, record

from xpnet.backend import asnumpy, synchronize, to_device
from xpnet.two_layer_net import PARAM_NAMES, TwoLayerNet

GROUP = "numerical gradient (784-50-10, batch 100)"

# One element at a time through CuPy is launch-bound: bounded so a slow GPU run fails this
# entry instead of the rest of its suite in the one-shot GPU check.
CUPY = pytest.param("cupy", marks=[*needs("cupy"), pytest.mark.timeout(150)], id="cupy")


@pytest.mark.parametrize("backend", [*backends("numpy", "numba-cpu", "numba-cuda"), CUPY])
def test_numerical_gradient(benchmark, backend, batch100) -> None:
    # Timing: the group's 784-50-10 net on the 100 images. The correctness pass
    # (--benchmark-disable) checks the same code on 784-5-10 and 10 images: the book's loop
    # then makes 8,000 forward passes instead of 80,000, each a tenth of the work.
    hidden, size = (50, 100) if benchmark.enabled else (5, 10)
    x, t = batch100[0][:size], batch100[1][:size]
    device = "cpu" if backend in ("numpy", "numba-cpu") else "cuda"
    net = TwoLayerNet(784, hidden, 10, seed=0, device=device)
    reference = net.gradient(x, t)  # backprop, to check what was timed

    if backend == "numpy":  # the book's code: nditer over every element, one-hot labels
        book_net = book.TwoLayerNet(784, hidden, 10, seed=0)
        one_hot = np.eye(10)[t]

        def run():
            return book_net.numerical_gradient(x, one_hot)

        rounds, warmup = 1, 0
    else:  # xpnet: the generic loop on CuPy arrays (the book's method), else the fused kernels
        method = "generic" if backend == "cupy" else "fused"
        xd, td = to_device(x, device), to_device(t, device)

        def run():
            grads = net.numerical_gradient(xd, td, method=method)
            synchronize(device)
            return grads

        rounds, warmup = (1, 0) if method == "generic" else (10, 1)

    record(benchmark, GROUP, backend, baseline=backend == "numpy", dtype="float64")
    grads = benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup, iterations=1)
    for key in PARAM_NAMES:
        diff = np.abs(asnumpy(grads[key]) - asnumpy(reference[key])).max()
        assert diff < 1e-6, (key, diff)


def test_numerical_gradient_in_the_books_loop(benchmark, batch100, fashion) -> None:
    """One step of the book's loop on the CPU: numerical gradient, update, then the loss.

    The loss's matrix products between gradients used to leave BLAS workers spinning on
    the cores Numba needs; next to the kernel-only row of the same run, this row shows
    what a reader's own loop gets.
    """
    hidden, size = (50, 100) if benchmark.enabled else (5, 10)
    (x_train, t_train), _ = fashion
    net = TwoLayerNet(784, hidden, 10, seed=0)
    rng = np.random.default_rng(0)

    def step():
        idx = rng.choice(x_train.shape[0], size)
        x, t = x_train[idx].astype(np.float64), t_train[idx]
        grads = net.numerical_gradient(x, t)
        for key in PARAM_NAMES:
            net.params[key] -= 0.1 * grads[key]
        return net.loss(x, t)

    record(benchmark, GROUP, "numba-cpu, a step of the book's loop", dtype="float64")
    loss = benchmark.pedantic(step, rounds=20 if benchmark.enabled else 3, warmup_rounds=1,
                              iterations=1)
    assert np.isfinite(loss) and loss < np.log(10) + 0.1  # chance level is log(10)
