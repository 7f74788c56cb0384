"""Mini-batch SGD: the loop of the book's ``train_neuralnet.py``, returning a history.

Memory does not grow with the number of iterations: batch indices are drawn one chunk
at a time, each chunk from its own seed (so a run can resume at any iteration and draw
the same batches), and the loss log keeps at most ``MAX_LOSSES`` values (past that,
neighbouring values are averaged; ``History.loss_stride`` says over how many).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from . import inputs
from .backend import (
    asnumpy,
    device_memory_bytes,
    get_array_module,
    synchronize,
    to_device,
    use_device,
)
from .errors import DivergenceError, InputError
from .inputs import GRAD_METHODS
from .two_layer_net import PARAM_NAMES, TwoLayerNet

INDEX_BUDGET = 1 << 20  # batch indices drawn at a time (8 MiB of int64)
MAX_LOSSES = 1 << 20  # loss values kept in a History (8 MiB of float64)


@dataclass
class History:
    """What a run produced: the book's three lists plus when each evaluation happened.

    ``train_loss_list[k]`` is the loss of mini-batch ``k`` in the forward pass that
    gave its gradient (the book runs one more forward pass after the update to get it);
    for runs of more than ``MAX_LOSSES`` iterations it is the mean over ``loss_stride``
    consecutive batches. ``iterations`` counts the iterations done so far; a stopped run
    has fewer than it asked for and can be continued with ``train(..., history=...)``.
    """

    train_loss_list: list[float] = field(default_factory=list)
    train_acc_list: list[float] = field(default_factory=list)
    test_acc_list: list[float] = field(default_factory=list)
    eval_iterations: list[int] = field(default_factory=list)
    iter_per_epoch: float = 1.0
    wall_time_s: float = 0.0
    iterations: int = 0
    seed: int | None = None
    loss_stride: int = 1
    # the running sum and count of a loss_stride block not yet complete
    loss_pending: tuple[float, int] = (0.0, 0)

    def _add_losses(self, values: np.ndarray) -> None:
        total, count = self.loss_pending
        for value in values.tolist():
            total, count = total + value, count + 1
            if count == self.loss_stride:
                self.train_loss_list.append(total / count)
                total, count = 0.0, 0
                if len(self.train_loss_list) == MAX_LOSSES:
                    pairs = np.asarray(self.train_loss_list).reshape(-1, 2).mean(axis=1)
                    self.train_loss_list = pairs.tolist()
                    self.loss_stride *= 2
        self.loss_pending = (total, count)


def iter_per_epoch(train_size: int, batch_size: int) -> float:
    """The book's epoch length in iterations: ``max(train_size / batch_size, 1)``."""
    return max(train_size / batch_size, 1)


def chunk_length(batch_size: int) -> int:
    """Iterations whose batch indices are drawn together (about INDEX_BUDGET indices)."""
    return max(1, INDEX_BUDGET // batch_size)


def batch_indices(seed: int, chunk: int, batch_size: int, train_size: int) -> np.ndarray:
    """The batch indices of chunk ``chunk`` (iterations ``chunk * L`` to ``(chunk+1) * L``).

    Drawn with replacement, as the book's ``np.random.choice(train_size, batch_size)``,
    from a generator seeded by ``(seed, chunk)`` alone: any chunk can be redrawn.
    Shape ``(L, batch_size)``, int64, with ``L = chunk_length(batch_size)``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
    return rng.integers(0, train_size, size=(chunk_length(batch_size), batch_size),
                        dtype=np.int64)


def train(
    network: TwoLayerNet,
    x_train: Any,
    t_train: Any,
    x_test: Any,
    t_test: Any,
    *,
    iters_num: int = 10000,
    batch_size: int = 100,
    learning_rate: float = 0.1,
    grad: str = "backprop",
    seed: int | None = None,
    progress: bool | None = False,
    on_epoch: Callable[[int, float, float], None] | None = None,
    history: History | None = None,
    stop: Callable[[], bool] | None = None,
    on_checkpoint: Callable[[History], None] | None = None,
    checkpoint_every: int | None = None,
) -> History:
    """Train ``network`` in place by mini-batch SGD, exactly as the book's loop.

    Each iteration draws ``batch_size`` indices **with replacement**, takes a gradient
    (``grad="backprop"`` or ``"numerical"``, the fused central difference) and steps
    ``W -= learning_rate * g``. At every iteration ``i`` with ``i % iter_per_epoch == 0``
    (``i = 0`` included) it measures train and test accuracy on the full sets and calls
    ``on_epoch(i, train_acc, test_acc)``. Labels may be integers or one-hot.

    The data is moved to the network's device once; batches are drawn there, and the
    GPU is only waited for at evaluations. ``seed`` fixes the batch sequence (None: a
    random one, recorded in ``History.seed``). ``progress``: a progress bar (None: only
    on a terminal).

    Stopping and resuming: after each step ``stop()`` is asked; when it says True the
    run returns at once, with ``History.iterations`` telling how far it got. Passing that
    history back (with the network it trained) continues the run: the same seed gives
    the same numbers, bit for bit on the CPU, as a run never stopped. ``on_checkpoint``
    is called with the history after each evaluation and every ``checkpoint_every``
    iterations. Raises DivergenceError if the loss becomes NaN or infinite, InputError
    for bad arguments or a step that cannot fit in memory.
    """
    inputs.choice("grad", grad, GRAD_METHODS)
    iters_num = inputs.positive_int("iters_num", iters_num)
    batch_size = inputs.positive_int("batch_size", batch_size)
    learning_rate = inputs.positive_float("learning_rate", learning_rate)
    if checkpoint_every is not None:
        checkpoint_every = inputs.positive_int("checkpoint_every", checkpoint_every)
    check_step_fits(network, batch_size)

    with use_device(network.device):
        # Labels and images are checked and converted once, on the host, then moved.
        train_set = _prepare(network, x_train, t_train, "train")
        test_set = _prepare(network, x_test, t_test, "test")
        history = _history(history, seed, iter_per_epoch(train_set[0].shape[0], batch_size))
        loop = _Loop(network, train_set, test_set, history, batch_size, learning_rate, grad)
        loop.on_epoch, loop.on_checkpoint = on_epoch, on_checkpoint
        loop.checkpoint_every = checkpoint_every
        start = time.perf_counter()
        bar = tqdm(total=iters_num, initial=history.iterations, unit="it", leave=False,
                   disable=None if progress is None else not progress)
        try:
            loop.run(iters_num, stop, bar.update)
        finally:
            bar.close()
            synchronize(network.device)
            history.wall_time_s += time.perf_counter() - start
    return history


def _history(history: History | None, seed: int | None, per_epoch: float) -> History:
    """A new history for ``seed`` (drawn if None), or the given one if ``seed`` fits it."""
    if history is None:
        seed = inputs.random_seed() if seed is None else int(seed)
        return History(iter_per_epoch=per_epoch, seed=seed)
    if history.seed is None or (seed is not None and seed != history.seed):
        raise InputError(f"history of seed {history.seed} cannot continue with seed {seed}")
    return history


class _LossBuffer:
    """The losses of one chunk of iterations, kept on the device until a flush.

    Reading a loss from the GPU waits for it, so they are read in bulk: at evaluations,
    checkpoints and the end of a chunk.
    """

    def __init__(self, xp: Any, length: int, history: History, learning_rate: float) -> None:
        self.values = xp.empty(length, dtype=np.float64)
        self.history = history
        self.learning_rate = learning_rate
        self.first = 0  # the iteration of values[0]
        self.logged = 0  # iterations before this one are in the history

    def start(self, first: int, logged: int) -> None:
        self.first, self.logged = first, logged

    def put(self, iteration: int, loss: Any) -> None:
        self.values[iteration - self.first] = loss

    def flush(self, upto: int) -> None:
        """Move the losses of iterations ``logged..upto-1`` into the history.

        Raises DivergenceError naming the first non-finite loss.
        """
        if upto > self.logged:
            values = asnumpy(self.values[self.logged - self.first: upto - self.first])
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                lr = self.learning_rate
                raise DivergenceError(
                    f"the loss became {values[bad[0]]} at iteration {self.logged + int(bad[0])}:"
                    f" training diverged; try a smaller learning rate than {lr:g} "
                    f"(e.g. {lr / 10:g})")
            self.history._add_losses(values)
            self.logged = upto
        self.history.iterations = upto


class _Loop:
    """The book's loop as parts: one step, one evaluation, checkpoints, the loss buffer."""

    on_epoch: Callable[[int, float, float], None] | None = None
    on_checkpoint: Callable[[History], None] | None = None
    checkpoint_every: int | None = None

    def __init__(self, network: TwoLayerNet, train_set: tuple[Any, Any],
                 test_set: tuple[Any, Any], history: History, batch_size: int,
                 learning_rate: float, grad: str) -> None:
        self.network = network
        self.train_set, self.test_set = train_set, test_set
        self.history = history
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.gradient = (network._loss_and_gradient if grad == "backprop"
                         else _numerical_step(network))
        self.chunk_length = chunk_length(batch_size)
        self.losses = _LossBuffer(get_array_module(train_set[0]), self.chunk_length, history,
                                  learning_rate)

    def run(self, iters_num: int, stop: Callable[[], bool] | None,
            tick: Callable[[], Any]) -> None:
        """Iterations ``history.iterations`` to ``iters_num``, or until ``stop()``."""
        i = self.history.iterations
        train_size = self.train_set[0].shape[0]
        while i < iters_num:
            chunk = i // self.chunk_length
            first = chunk * self.chunk_length  # the iteration of this chunk's first batch
            self.losses.start(first, logged=i)
            batches = to_device(batch_indices(self.history.seed, chunk, self.batch_size,
                                              train_size), self.network.device)
            end = min(iters_num, first + self.chunk_length)
            while i < end:
                self.step(i, batches[i - first])
                i += 1
                tick()
                is_epoch = (i - 1) % self.history.iter_per_epoch == 0
                if is_epoch:
                    self.evaluate(i)
                stopping = stop is not None and stop()
                due = is_epoch or (self.checkpoint_every is not None
                                   and i % self.checkpoint_every == 0)
                if stopping or (self.on_checkpoint is not None and due):
                    self.losses.flush(i)
                    if self.on_checkpoint is not None and due:
                        self.on_checkpoint(self.history)
                if stopping:
                    return
            self.losses.flush(i)

    def step(self, iteration: int, batch: Any) -> None:
        """One SGD step on the samples ``batch`` (indices on the device)."""
        x, t = self.train_set
        loss, grads = self.gradient(x[batch], t[batch])
        params = self.network.params
        for key in PARAM_NAMES:
            params[key] -= self.learning_rate * grads[key]
        self.losses.put(iteration, loss)

    def evaluate(self, done: int) -> None:
        """Accuracy on both full sets after ``done`` iterations (the book's epoch line)."""
        self.losses.flush(done)
        h = self.history
        train_acc = self.network._accuracy(*self.train_set)
        test_acc = self.network._accuracy(*self.test_set)
        h.train_acc_list.append(train_acc)
        h.test_acc_list.append(test_acc)
        h.eval_iterations.append(done - 1)
        if self.on_epoch is not None:
            self.on_epoch(done - 1, train_acc, test_acc)


def _numerical_step(network: TwoLayerNet) -> Callable[[Any, Any], tuple[Any, dict[str, Any]]]:
    def step(x: Any, labels: Any) -> tuple[Any, dict[str, Any]]:
        grads = network._numerical_gradient(x, labels)
        return network._loss(x, labels), grads

    return step


def check_step_fits(network: TwoLayerNet, batch_size: int) -> None:
    """Refuse a batch whose one step would not fit in the device's memory."""
    d, h, c = network.sizes
    # x batch, hidden activations and their gradient, logits and theirs, indices
    need = batch_size * ((d + 2 * h + 2 * c) * network.dtype.itemsize + 8)
    have = device_memory_bytes(network.device)
    if have and need > have // 2:
        raise InputError(f"batch_size {batch_size} needs about {need / 2**30:.1f} GiB for one "
                         f"step, more than half of the {have / 2**30:.1f} GiB of "
                         f"{network.device}; use a smaller batch size")


def _prepare(network: TwoLayerNet, x: Any, t: Any, name: str) -> tuple[Any, Any]:
    """(x, labels) as the net's dtype and integer labels on the net's device."""
    x = inputs.samples(asnumpy(x), network.sizes[0], name=f"x_{name}")
    if not np.isfinite(x).all():
        raise InputError(f"x_{name} contains NaN or infinite values; clean the data first")
    t = inputs.labels(asnumpy(t), x.shape[0], network.sizes[2], name=f"t_{name}")
    return (
        to_device(np.ascontiguousarray(x, dtype=network.dtype), network.device),
        to_device(t, network.device),
    )
