"""A training step of the book's nets (chapters 6 to 8) three ways, and DeepConvNet's on a GPU.

- the book's loop: the book-API net of ``xpnet.common`` as the book's scripts drive it
  (``x_batch = x_train[mask]``, ``grads = net.gradient(x_batch, t_batch)``,
  ``optimizer.update(net.params, grads)``, then the book Trainer's extra
  ``net.loss(x_batch, t_batch)`` forward pass);
- what ``xpnet train --net`` runs on the CPU: ``BookNet._loss_and_gradient`` on the batch
  gathered from the training set, then ``optimizer.update`` (the trainer's eager step);
- ``xpnet.layered_step.LayeredStep``, the step in buffers that the trainer captures as one
  CUDA graph, here on NumPy (as the trainer would drive it: chunks of batch indices).

Every way starts from the same weights (``nets.build``'s, drawn from the seed) and trains on
one fixed batch of 100 real Fashion-MNIST images gathered from a training set at every step,
so each benchmark can check that its steps lower that batch's loss. The CUDA group
(DeepConvNet, Adam) adds the same steps on CuPy, LayeredStep eager and replayed as a graph,
with a synchronize in every timed round, beside the book's loop on the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from benchlib import CUDA_REASON, record
from gpu_model import DEEP_MEASURED_MODES, DEEP_STEP_GROUP

from xpnet import nets
from xpnet.backend import asnumpy, synchronize, to_device, use_device
from xpnet.common import optimizer as optimizers
from xpnet.common.deep_convnet import DeepConvNet
from xpnet.common.multi_layer_net import MultiLayerNet
from xpnet.common.simple_convnet import CONV_PARAM, SimpleConvNet
from xpnet.layered_step import LayeredStep
from xpnet.trainer import chunk_length

SEED = 0
TRAIN_SIZE = 10000  # the training set a step gathers its batch from
# The book's settings: ch06 optimizer_compare_mnist.py (784-100x4-10 ReLU, He weights, SGD
# 0.01), ch07 train_convnet.py (30 5x5 filters, 100, 0.01, Adam 0.001), ch08
# train_deepnet.py (hidden 50, Adam 0.001); all at batch 100, float64.
NETS = {
    "multi-layer": {"hidden": (100, 100, 100, 100), "std": "he", "optimizer": ("sgd", 0.01),
                    "group": "ch06 MultiLayerNet 784-100x4-10 ReLU training step (SGD, "
                             "batch 100), CPU"},
    "simple-conv": {"hidden": 100, "std": 0.01, "optimizer": ("adam", 0.001),
                    "group": "ch07 SimpleConvNet training step (30 5x5 filters, 100-10, Adam, "
                             "batch 100), CPU"},
    "deep-conv": {"hidden": 50, "std": "he", "optimizer": ("adam", 0.001),
                  "group": "ch08 DeepConvNet training step (hidden 50, Adam, batch 100), CPU"},
}
CPU_WAYS = ("book-loop-cpu", "eager-step-cpu", "layered-step-cpu")
# the book's loop on the CPU (the baseline) and on CuPy, then the ways the GPU cost model
# predicts (bench/gpu_model.py sets each measured median beside its model row)
CUDA_WAYS = ("book-loop-cpu", "book-loop-cupy", *DEEP_MEASURED_MODES)


def book_net(kind: str, device: str, hidden: Any) -> Any:
    """The book-API net of ``kind`` with ``nets.build``'s weights (the same seeded draw)."""
    rng = np.random.default_rng(SEED)
    if kind == "multi-layer":
        return MultiLayerNet(784, list(hidden), 10, "relu", "relu", 0, device=device, rng=rng)
    if kind == "simple-conv":
        return SimpleConvNet((1, 28, 28), CONV_PARAM, hidden, 10, 0.01, device=device, rng=rng)
    return DeepConvNet((1, 28, 28), hidden_size=hidden, output_size=10, device=device, rng=rng)


def cross_entropy(scores: Any, t: np.ndarray) -> float:
    """Mean softmax cross-entropy of host scores: the probe of what training did."""
    z = asnumpy(scores).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(t)), t]))


def step_and_probe(kind: str, way: str, x_train: np.ndarray, t_train: np.ndarray,
                   batch: np.ndarray, hidden: Any) -> tuple[Any, Any]:
    """(step, probe): one training step of ``kind`` done ``way``, and the dropout-free loss
    of the batch ``batch`` (indices into the training set) under the current weights."""
    device = "cuda" if way.endswith(("cuda", "cupy", "graph")) else "cpu"
    name, lr = NETS[kind]["optimizer"]
    optimizer = optimizers.make(name, lr)
    t_batch = t_train[batch]
    if way.startswith("book-loop"):  # NumPy batches, as the book's loop slices them
        net = book_net(kind, device, hidden)
        images = x_train if kind == "multi-layer" else x_train.reshape(-1, 1, 28, 28)

        def step():
            x_batch, t_b = images[batch], t_train[batch]
            grads = net.gradient(x_batch, t_b)
            optimizer.update(net.params, grads)
            loss = net.loss(x_batch, t_b)
            synchronize(device)
            return loss

        return step, lambda: cross_entropy(net.predict(images[batch]), t_batch)
    net = nets.build(kind, features=784, classes=10, hidden=hidden, activation="relu",
                     weight_init_std=NETS[kind]["std"], weight_decay=0.0, dtype="float64",
                     device=device, seed=SEED)
    net.start_iteration(0)
    x, t = to_device(x_train, device), to_device(t_train.astype(np.intp), device)
    rows = to_device(batch, device)

    def probe():
        return cross_entropy(net.predict(x_train[batch]), t_batch)

    if way in ("eager-step-cpu", "xpnet-eager-cuda"):  # BookNet's eager step
        def step():
            loss, grads = net._loss_and_gradient(x[rows], t[rows])
            optimizer.update(net.params, grads)
            synchronize(device)
            return loss

        return step, probe
    length = chunk_length(len(batch))
    with use_device(device):
        losses = to_device(np.zeros(length), device)
    layered = LayeredStep(net, optimizer, x, t, batch_size=len(batch), chunk_length=length,
                          losses=losses, graph=way.endswith("graph"))
    chunk = np.tile(batch, (length, 1))
    done = [0]

    def step():
        # the trainer's loop: a chunk's batch indices uploaded once, then its steps
        if done[0] % length == 0:
            with use_device(device):
                layered.start_chunk(chunk, 0, done[0])
        with use_device(device), layered.stream:
            layered()
        done[0] += 1
        synchronize(device)
        return losses[(done[0] - 1) % length]

    step.layered = layered  # type: ignore[attr-defined]
    return step, probe


@pytest.fixture(scope="module")
def training_set(fashion):
    """The first TRAIN_SIZE Fashion-MNIST training images (float64, flat) and labels, and
    the fixed batch of 100 indices every step trains on."""
    (x_train, t_train), _ = fashion
    x = x_train[:TRAIN_SIZE].astype(np.float64)
    batch = np.random.default_rng(SEED).integers(0, TRAIN_SIZE, size=100)
    return x, t_train[:TRAIN_SIZE].astype(np.int64), batch


def run_step(benchmark, kind: str, way: str, training_set, rounds: int) -> None:
    x, t, batch = training_set
    hidden = NETS[kind]["hidden"]
    if not benchmark.enabled:  # the correctness pass: 10 images, smaller layers
        batch = batch[:10]
        hidden = (8, 8, 8, 8) if kind == "multi-layer" else 8
        rounds = min(rounds, 2)
    step, probe = step_and_probe(kind, way, x, t, batch, hidden)
    before = probe()
    step()  # the first step runs eagerly everywhere (lazy set-up: CuPy's kernels, handles)
    # on CUDA the warm-up round is LayeredStep's capture; the correctness pass (one call)
    # is the capture there
    warmup = 1 if benchmark.enabled and not way.endswith("cpu") else 0
    loss = benchmark.pedantic(step, rounds=rounds, warmup_rounds=warmup, iterations=1)
    after = probe()
    assert np.isfinite(float(loss))
    assert after < before, (before, after)  # steps on one batch lower its loss
    if way.endswith("graph"):  # from the second step on, one launch of the captured graph
        assert step.layered.graph is not None


@pytest.mark.parametrize("way", CPU_WAYS)
@pytest.mark.parametrize("kind", list(NETS))
def test_book_net_step(benchmark, kind, way, training_set) -> None:
    # DeepConvNet takes about a second a step on a 2-core CPU: one timed round.
    rounds = {"multi-layer": 100, "simple-conv": 10, "deep-conv": 1}[kind]
    record(benchmark, NETS[kind]["group"], way, baseline=way == "book-loop-cpu",
           dtype="float64")
    run_step(benchmark, kind, way, training_set, rounds)


@pytest.mark.skipif(CUDA_REASON is not None, reason=f"needs CUDA: {CUDA_REASON}")
@pytest.mark.cuda
@pytest.mark.parametrize("way", CUDA_WAYS)
def test_deep_conv_step_cuda(benchmark, way, training_set) -> None:
    # the CPU's book loop is the baseline; a GPU step takes milliseconds
    rounds = 1 if way.endswith("cpu") else 30
    record(benchmark, DEEP_STEP_GROUP, way, baseline=way == "book-loop-cpu", dtype="float64")
    run_step(benchmark, "deep-conv", way, training_set, rounds)
