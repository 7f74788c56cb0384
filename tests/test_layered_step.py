"""xpnet.layered_step on NumPy: the step in buffers gives the eager book net's numbers.

The eager reference is ``BookNet._loss_and_gradient`` then ``optimizer.update`` (dropout
by the counter rule); LayeredStep must match it bit for bit in float64, across chunks,
for every layer and optimizer.
"""

from __future__ import annotations

import numpy as np
import pytest
from layered_helpers import batches, data, eager, layered, make, optimizer, params_of

from xpnet.common.optimizer import CLASSES, SLOTS

CASES = [("multi-layer", "sigmoid", 0.1), ("multi-layer", "relu", 0.05),
         ("multi-layer", "relu", 0.0), ("simple-conv", "relu", 0.0)]


def compare(kind, activation, decay, name, iters=7, batch=5, chunk=3, first=0,
            dtype="float64"):
    x, t = data(kind)
    x = x.astype(dtype)
    order = batches(iters, batch, len(x))
    ref, ref_opt = make(kind, activation=activation, decay=decay, dtype=dtype), optimizer(name)
    ref_losses = eager(ref, ref_opt, x, t, order, first)
    net, opt = make(kind, activation=activation, decay=decay, dtype=dtype), optimizer(name)
    losses, _ = layered(net, opt, x, t, order, chunk, first=first)
    got, want = params_of(net), params_of(ref)
    start = params_of(make(kind, activation=activation, decay=decay, dtype=dtype))
    assert not np.array_equal(want["W1"], start["W1"])  # it trained
    return losses, ref_losses, got, want, opt, ref_opt


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize(("kind", "activation", "decay"), CASES)
def test_layered_step_equals_the_eager_book_net(kind, activation, decay, name) -> None:
    losses, ref_losses, got, want, opt, ref_opt = compare(kind, activation, decay, name)
    assert losses == ref_losses
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    for slot in SLOTS[type(opt)]:  # the optimizer's own state, in place
        for key, value in getattr(ref_opt, slot).items():
            np.testing.assert_array_equal(getattr(opt, slot)[key], value, err_msg=slot + key)
    assert getattr(opt, "iter", 7) == getattr(ref_opt, "iter", 7) == 7


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_deep_convnet_with_dropout_equals_the_eager_book_net(name) -> None:
    losses, ref_losses, got, want, _, _ = compare("deep-conv", "relu", 0.0, name, iters=3,
                                                  batch=2, chunk=2)
    assert losses == ref_losses
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_a_run_resumed_mid_chunk_draws_the_masks_and_steps_of_its_iterations() -> None:
    """Iterations 5..7 of a run: the dropout masks and Adam's step sizes of 5, 6, 7."""
    losses, ref_losses, got, want, _, _ = compare("deep-conv", "relu", 0.0, "adam", iters=3,
                                                  batch=2, chunk=4, first=5)
    assert losses == ref_losses
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize("kind", ["multi-layer", "simple-conv", "deep-conv"])
def test_float32_nets_give_the_eager_float32_numbers(kind, name) -> None:
    """float32 params, float64 inside im2col/col2im and wherever the eager step promotes."""
    iters, batch = (3, 2) if kind == "deep-conv" else (7, 5)
    losses, ref_losses, got, want, _, _ = compare(kind, "relu", 0.0, name, iters=iters,
                                                  batch=batch, dtype="float32")
    assert losses == ref_losses
    for key in want:
        assert got[key].dtype == np.float32
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.cuda
@pytest.mark.parametrize(("kind", "name"), [("deep-conv", "adam"), ("multi-layer", "rmsprop")])
def test_on_a_real_gpu_the_replayed_graph_gives_the_cpus_numbers(kind, name) -> None:
    """Real CuPy (skipped without a GPU): cuBLAS and CUDA's exp/log round differently
    from NumPy, so float64 to 1e-12; the graph is captured and replayed across chunks."""
    import cupy

    x, t = data(kind, count=12)
    order = batches(5, 2, len(x))
    cpu_net, net = make(kind), make(kind, "cuda")
    want_losses, _ = layered(cpu_net, optimizer(name), x, t, order, 2)
    losses, step = layered(net, optimizer(name), cupy.asarray(x), cupy.asarray(t), order, 2,
                           graph=True)
    want = params_of(cpu_net)
    assert step.graph is not None
    np.testing.assert_allclose(losses, want_losses, rtol=0, atol=1e-12)
    for key, value in params_of(net).items():
        np.testing.assert_allclose(value, want[key], rtol=0, atol=1e-12, err_msg=key)


def test_a_chunk_feed_gathers_each_steps_batch_from_where_the_chunk_starts() -> None:
    from xpnet.layered_step import ChunkFeed

    rng = np.random.default_rng(41)
    x, t = rng.random((20, 3)), rng.integers(0, 4, 20).astype(np.intp)
    feed = ChunkFeed(np, x, t, batch_size=4, chunk_length=5)
    for offset in (0, 3):  # a new chunk, and a chunk resumed at its fourth step
        chunk = rng.integers(0, 20, size=(5, 4), dtype=np.int64)
        feed.start(chunk, offset)
        for step in range(offset, 5):
            assert int(feed.loss_slot[0]) == step
            feed.gather()
            np.testing.assert_array_equal(feed.xb, x[chunk[step]])
            np.testing.assert_array_equal(feed.tb, t[chunk[step]])
            feed.loss_slot += 1
