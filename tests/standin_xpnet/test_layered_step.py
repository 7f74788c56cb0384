"""xpnet.layered_step on the CuPy stand-in: eager, captured and replayed steps give the
CPU's numbers, and a replayed step is one graph launch that asks nothing of the host."""

from __future__ import annotations

import cupy
import cupy_standin
import numpy as np
import pytest
from layered_helpers import batches, data, layered, make, optimizer, params_of

CASES = [("multi-layer", "sigmoid", 0.1, "momentum", "cuda"),
         ("multi-layer", "relu", 0.05, "adagrad", "cuda:1"),
         ("simple-conv", "relu", 0.0, "nesterov", "cuda"),
         ("simple-conv", "relu", 0.0, "rmsprop", "cuda"),
         ("deep-conv", "relu", 0.0, "adam", "cuda"),
         ("deep-conv", "relu", 0.0, "sgd", "cuda:1")]


def run(kind, activation, decay, name, device, graph, iters, batch=2, chunk=3, **options):
    x, t = data(kind, count=12)
    order = batches(iters, batch, len(x))
    net, opt = make(kind, device, activation, decay), optimizer(name)
    if device != "cpu":
        with cupy.cuda.Device(int(device[-1]) if ":" in device else 0):
            x, t = cupy.asarray(x), cupy.asarray(t)
    losses, step = layered(net, opt, x, t, order, chunk, graph=graph, **options)
    return losses, params_of(net), step


@pytest.mark.parametrize(("kind", "activation", "decay", "name", "device"), CASES)
def test_eager_captured_and_replayed_steps_give_the_cpus_numbers(kind, activation, decay,
                                                                 name, device) -> None:
    iters = 4 if kind == "deep-conv" else 7  # three chunks of 3 (deep-conv: two)
    cpu_losses, cpu, _ = run(kind, activation, decay, name, "cpu", False, iters)
    for graph in (False, True):
        losses, params, step = run(kind, activation, decay, name, device, graph, iters)
        assert (step.graph is not None) == graph
        assert losses == cpu_losses  # the stand-in computes with NumPy: bit for bit
        for key, want in cpu.items():
            np.testing.assert_array_equal(params[key], want, err_msg=key)


def counted_steps(kind, name, graph, iters=5):
    counts = []

    def step_counted(i, step):
        with cupy_standin.counting() as c:
            step()
        counts.append(c)

    run(kind, "relu", 0.0, name, "cuda", graph, iters, chunk=2, on_step=step_counted)
    return counts


@pytest.mark.parametrize("kind", ["deep-conv", "multi-layer"])
def test_a_replayed_step_is_one_graph_launch_and_asks_nothing_of_the_host(kind) -> None:
    counts = counted_steps(kind, "adam", graph=True)
    for i, c in enumerate(counts):
        assert (c.allocations, c.foreign_allocations, c.h2d_copies, c.d2h_copies,
                c.host_waits) == (0, 0, 0, 0, 0), (i, c)
    assert counts[0].graph_launches == 0 and counts[0].kernel_launches > 50  # eager
    for c in counts[1:]:  # captured at step 1, then replayed; chunks change under it
        assert (c.graph_launches, c.kernel_launches) == (1, 0), c
        assert c.graph_kernels == counts[0].kernel_launches


def test_without_a_graph_every_step_launches_its_kernels_and_allocates_nothing() -> None:
    counts = counted_steps("deep-conv", "momentum", graph=False, iters=3)
    kernels = {c.kernel_launches for c in counts}
    assert len(kernels) == 1 and kernels.pop() > 200
    for c in counts:
        assert (c.graph_launches, c.allocations, c.host_waits, c.h2d_copies) == (0, 0, 0, 0)
