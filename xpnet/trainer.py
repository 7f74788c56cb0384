"""Mini-batch SGD: the loop of the book's ``train_neuralnet.py``, returning a history.

Memory does not grow with the number of iterations: batch indices are drawn one chunk
at a time, each chunk from its own seed (so a run can resume at any iteration and draw
the same batches), and the loss log keeps at most ``MAX_LOSSES`` values (past that,
neighbouring values are averaged; ``History.loss_stride`` says over how many).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from . import fused, inputs
from .backend import (
    GraphedStep,
    asnumpy,
    device_memory_bytes,
    get_array_module,
    is_cupy_array,
    new_stream,
    synchronize,
    to_device,
    use_device,
)
from .common import optimizer as optimizers
from .errors import DivergenceError, InputError
from .inputs import GRAD_METHODS
from .layered_step import ChunkFeed, LayeredStep
from .two_layer_net import TwoLayerNet


class Updater(Protocol):
    """What ``train`` needs of an optimizer: the book's ``update``, in place. The six of
    ``xpnet.common.optimizer`` have it; so may a reader's own class."""

    def update(self, params: dict[str, Any], grads: dict[str, Any]) -> None: ...


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
    network: Any,
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
    cuda_graph: bool | None = None,
    optimizer: Updater | None = None,
    eval_samples: int | None = None,
) -> History:
    """Train ``network`` in place by mini-batch gradient descent, exactly as the book's loop.

    ``network``: a TwoLayerNet or an ``xpnet.nets`` net (anything with the net face:
    ``params``, ``param_names``, ``features``, ``classes``, ``_loss_and_gradient`` ...).
    Each iteration draws ``batch_size`` indices **with replacement**, takes a gradient
    (``grad="backprop"`` or ``"numerical"``, the fused central difference) and updates
    the parameters with ``optimizer``, an ``xpnet.common.optimizer`` object whose state
    (Momentum's ``v``, Adam's ``m``, ``v``, ``iter`` ...) carries over a stop and resume
    when the same object is passed back; None is ``SGD(learning_rate)``, chapter 4's
    ``W -= learning_rate * g`` (``learning_rate`` is not used otherwise). At every
    iteration ``i`` with ``i % iter_per_epoch == 0`` (``i = 0`` included) it measures
    train and test accuracy and calls ``on_epoch(i, train_acc, test_acc)``: on the full
    sets, or with ``eval_samples`` N on the first N images of each (the book's Trainer's
    ``evaluate_sample_num_per_epoch``; None or 0: every image). Labels may be integers or
    one-hot.

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

    On CUDA a step asks nothing of the host: the batch indices of a chunk are uploaded
    once and gathered on the device, and every step writes into buffers made before the
    first one, on one stream. ``cuda_graph`` (None: on for CUDA; ignored on the CPU)
    captures that step once as a CUDA graph and replays it every iteration: one launch a
    step. Captured and eager runs give the same numbers bit for bit. That step is the
    TwoLayerNet's by SGD here, and ``xpnet.layered_step.LayeredStep`` for the book's other
    nets trained by backprop with one of the six optimizers (those very classes; a subclass
    or a reader's own ``update`` is not known to it); anything else runs the eager step on
    a stream of its own.
    """
    inputs.choice("grad", grad, GRAD_METHODS)
    iters_num = inputs.positive_int("iters_num", iters_num)
    batch_size = inputs.positive_int("batch_size", batch_size)
    learning_rate = inputs.positive_float("learning_rate", learning_rate)
    if optimizer is None:
        optimizer = optimizers.SGD(learning_rate)
    elif not callable(getattr(optimizer, "update", None)):
        raise InputError(f"optimizer must be an xpnet.common.optimizer object (SGD, Adam, "
                         f"...), got {type(optimizer).__name__}")
    if checkpoint_every is not None:
        checkpoint_every = inputs.positive_int("checkpoint_every", checkpoint_every)
    if eval_samples is not None:
        eval_samples = inputs.non_negative_int("eval_samples", eval_samples)
    if cuda_graph not in (None, True, False):
        raise InputError(f"cuda_graph must be True, False or None (on for CUDA), got "
                         f"{cuda_graph!r}")
    check_step_fits(network, batch_size, optimizer)

    with use_device(network.device):
        # Labels and images are checked and converted once, then live on the device.
        train_set = _prepare(network, x_train, t_train, "train")
        test_set = _prepare(network, x_test, t_test, "test")
        history = _history(history, seed, iter_per_epoch(train_set[0].shape[0], batch_size))
        loop = _Loop(network, train_set, test_set, history, batch_size, optimizer, grad)
        loop.on_epoch, loop.on_checkpoint = on_epoch, on_checkpoint
        loop.checkpoint_every = checkpoint_every
        if eval_samples:  # views of the first rows: nothing copied
            loop.eval_sets = tuple((x[:eval_samples], t[:eval_samples])
                                   for x, t in (train_set, test_set))
        stream: Any = contextlib.nullcontext()
        if is_cupy_array(train_set[0]):
            synchronize(network.device)  # the uploads, before work on a stream of its own
            loop.device_step = _device_step(loop, graph=cuda_graph is not False)
            stream = (new_stream(network.device) if loop.device_step is None
                      else loop.device_step.stream)
        elif grad == "backprop" and not isinstance(network, TwoLayerNet):
            # The step in buffers made once gives the eager step's numbers bit for bit, and
            # on the CPU too it is faster (bench/test_bench_layered_step.py: 10-17%).
            loop.device_step = _device_step(loop, graph=False)
        start = time.perf_counter()
        bar = _progress_bar(iters_num, history.iterations, progress)
        loop.bar = bar
        try:
            with stream:
                loop.run(iters_num, stop, bar.update)
        finally:
            bar.close()
            synchronize(network.device)
            history.wall_time_s += time.perf_counter() - start
    return history


def _progress_bar(total: int, initial: int, progress: bool | None) -> tqdm:
    """tqdm on stderr; None: only on a terminal. Into a file it writes rarely (a log, not
    an animation)."""
    terminal = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit="it", leave=False,
                disable=None if progress is None else not progress,
                mininterval=0.1 if terminal else 30.0)


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

    def __init__(self, xp: Any, length: int, history: History,
                 learning_rate: float | None) -> None:
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
                    " training diverged; try a smaller learning rate"
                    + (f" than {lr:g} (e.g. {lr / 10:g})" if lr is not None else ""))
            self.history._add_losses(values)
            self.logged = upto
        self.history.iterations = upto


class _Loop:
    """The book's loop as parts: one step, one evaluation, checkpoints, the loss buffer."""

    on_epoch: Callable[[int, float, float], None] | None = None
    on_checkpoint: Callable[[History], None] | None = None
    checkpoint_every: int | None = None
    # the step in buffers (on CUDA with its graph; on the CPU the book nets' LayeredStep);
    # None: the eager step (on a stream of its own on CUDA)
    device_step: Any = None
    bar: tqdm | None = None

    def __init__(self, network: Any, train_set: tuple[Any, Any],
                 test_set: tuple[Any, Any], history: History, batch_size: int,
                 optimizer: Updater, grad: str) -> None:
        self.network = network
        self.grad = grad
        self.train_set, self.test_set = train_set, test_set
        self.eval_sets = train_set, test_set  # what evaluations score
        self.history = history
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.gradient = (network._loss_and_gradient if grad == "backprop"
                         else _numerical_step(network))
        self.chunk_length = chunk_length(batch_size)
        self.xp = get_array_module(train_set[0])
        # a reader's own optimizer need not have an lr: the hint then names no number
        self.losses = _LossBuffer(self.xp, self.chunk_length, history,
                                  getattr(optimizer, "lr", None))

    def run(self, iters_num: int, stop: Callable[[], bool] | None,
            tick: Callable[[], Any]) -> None:
        """Iterations ``history.iterations`` to ``iters_num``, or until ``stop()``."""
        i = self.history.iterations
        train_size = self.train_set[0].shape[0]
        self.network.start_iteration(i)
        while i < iters_num:
            chunk = i // self.chunk_length
            first = chunk * self.chunk_length  # the iteration of this chunk's first batch
            self.losses.start(first, logged=i)
            batches = batch_indices(self.history.seed, chunk, self.batch_size, train_size)
            if self.device_step is not None:
                self.device_step.start_chunk(batches, i - first, i)
            elif self.xp is not np:  # the eager step on a GPU: the chunk's indices there
                batches = to_device(batches, self.network.device)
            end = min(iters_num, first + self.chunk_length)
            while i < end:
                if self.device_step is not None:
                    self.device_step()
                else:
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
        """One step on the samples ``batch`` (indices on the device)."""
        x, t = self.train_set
        loss, grads = self.gradient(x[batch], t[batch])
        self.optimizer.update(self.network.params, grads)
        self.losses.put(iteration, loss)

    def evaluate(self, done: int) -> None:
        """Accuracy on both sets (or their first ``eval_samples``) after ``done``
        iterations: the book's epoch line."""
        self.losses.flush(done)
        h = self.history
        train_acc, test_acc = (self.network._accuracy(*s) for s in self.eval_sets)
        h.train_acc_list.append(train_acc)
        h.test_acc_list.append(test_acc)
        h.eval_iterations.append(done - 1)
        if self.on_epoch is not None:
            # a print from on_epoch gets a line of its own, not the progress bar's
            with tqdm.external_write_mode() if self.bar is not None else contextlib.nullcontext():
                self.on_epoch(done - 1, train_acc, test_acc)


def _numerical_step(network: Any) -> Callable[[Any, Any], tuple[Any, dict[str, Any]]]:
    def step(x: Any, labels: Any) -> tuple[Any, dict[str, Any]]:
        grads = network._numerical_gradient(x, labels)
        return network._loss(x, labels), grads

    return step


def check_step_fits(network: Any, batch_size: int, optimizer: Any = None) -> None:
    """Refuse a batch whose one step (``optimizer``'s state included) would not fit in the
    device's memory."""
    need = network.step_bytes(batch_size, optimizer)
    have = device_memory_bytes(network.device)
    if have and need > have // 2:
        raise InputError(f"batch_size {batch_size} needs about {need / 2**30:.1f} GiB for one "
                         f"step, more than half of the {have / 2**30:.1f} GiB of "
                         f"{network.device}; use a smaller batch size")


def _prepare(network: Any, x: Any, t: Any, name: str) -> tuple[Any, Any]:
    """(x, labels) as the net's dtype and integer labels on the net's device.

    Host data is checked on the host and uploaded once, already in the net's dtype; data
    already on a GPU is checked there (a wait or two per call of ``train``, never a copy).
    """
    if is_cupy_array(x):  # on the net's GPU first: another GPU's arrays are copied across
        x = to_device(x, network.device)
    else:
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise InputError(f"x_{name} is not an array of numbers ({err}); pass a "
                             "(samples, features) array") from None
    x = inputs.samples(x, network.features, name=f"x_{name}")
    xp = get_array_module(x)
    if not bool(xp.isfinite(x).all()):
        raise InputError(f"x_{name} contains NaN or infinite values; clean the data first")
    if xp is np:
        x = np.ascontiguousarray(x, dtype=network.dtype)
        t = inputs.labels(np.asarray(t) if not is_cupy_array(t) else asnumpy(t), x.shape[0],
                          network.classes, name=f"t_{name}")
    else:
        t = inputs.labels(to_device(t, network.device), x.shape[0], network.classes,
                          name=f"t_{name}")
    x, t = to_device(x, network.device), to_device(t, network.device)
    return get_array_module(x).ascontiguousarray(x, dtype=network.dtype), t


def _device_step(loop: _Loop, *, graph: bool) -> Any:
    """The step in buffers for ``loop``'s net and optimizer; None: the eager step.

    The TwoLayerNet trained by SGD has its own step here, the book's other nets trained
    by backprop with one of the six optimizers ``LayeredStep``; the rest (the TwoLayerNet
    with another optimizer, a numerical gradient of another net, a subclass or a reader's
    own optimizer, whose ``update`` only its own code knows) run the eager step.
    """
    net, optimizer = loop.network, loop.optimizer
    if isinstance(net, TwoLayerNet):
        return _DeviceStep(loop, graph=graph) if type(optimizer) is optimizers.SGD else None
    if loop.grad != "backprop" or type(optimizer) not in optimizers.SLOTS:
        return None
    x, labels = loop.train_set
    return LayeredStep(net, optimizer, x, labels, batch_size=loop.batch_size,
                       chunk_length=loop.chunk_length, losses=loop.losses.values, graph=graph)


class _DeviceStep:
    """The CUDA training step written for graph capture, and its graph.

    Every array a step touches is made here, once: the chunk's batch indices (uploaded
    once per chunk) and a step counter live on the device, so a step gathers its batch
    there, runs forward, the fused cross-entropy, backward (or the fused numerical
    gradient) and the update with ``out=`` and in place, and puts its loss into the loss
    buffer; nothing is allocated, read or copied. The work goes to one stream of its own.
    With ``graph``, the first step of a run runs eagerly (Numba compiles, CuPy makes its
    handles and kernels), the second is captured and every step from then on is one
    launch of that graph; the same kernels on the same buffers give the same numbers.
    """

    def __init__(self, loop: _Loop, *, graph: bool) -> None:
        net, (x, labels) = loop.network, loop.train_set
        xp = get_array_module(x)
        self.loop, self.xp = loop, xp
        self.stream = new_stream(net.device)
        self.replay = GraphedStep(self.stream, self.step, graph=graph)
        b, (_, h, c), dt = loop.batch_size, net.sizes, net.dtype
        names = self.names = net.param_names
        self.batch_size = b
        self.feed = ChunkFeed(xp, x, labels, batch_size=b, chunk_length=loop.chunk_length)
        self.xb, self.tb = self.feed.xb, self.feed.tb
        self.z1, self.a2 = xp.empty((b, h), dtype=dt), xp.empty((b, c), dtype=dt)
        self.rows, self.loss = xp.empty(b, dtype=np.float64), xp.empty((), dtype=np.float64)
        self.numerical = loop.grad == "numerical"
        if self.numerical:  # float64, as the fused kernel gives them
            self.grads = {k: xp.empty(net.params[k].shape, dtype=np.float64)
                          for k in names}
            self.workspace = fused.numerical_workspace(self.xb, h, c)
            self.dy = None
        else:
            self.grads = {k: xp.empty_like(net.params[k]) for k in names}
            self.dy, self.da1 = xp.empty((b, c), dtype=dt), xp.empty((b, h), dtype=dt)
            self.slope = xp.empty((b, h), dtype=dt)

    def start_chunk(self, batches: np.ndarray, offset: int, iteration: int) -> None:
        """Upload a chunk's indices (one copy) and point the counters at step ``offset``
        (the run's ``iteration``; this step draws nothing of it)."""
        with self.stream:
            self.feed.start(batches, offset)

    def __call__(self) -> None:
        """One step: eager, captured after the first, then replayed."""
        self.replay()

    @property
    def graph(self) -> Any:
        return self.replay.graph

    def step(self) -> None:
        """The step's kernels, written into the buffers (what a capture records)."""
        xp, lr, b, names = self.xp, self.loop.optimizer.lr, self.batch_size, self.names
        p, g = self.loop.network.params, self.grads
        self.feed.gather()
        # the forward pass of TwoLayerNet._logits, the same operations in place
        xp.matmul(self.xb, p["W1"], out=self.z1)
        self.z1 += p["b1"]
        xp.negative(self.z1, out=self.z1)
        xp.exp(self.z1, out=self.z1)
        self.z1 += 1
        xp.true_divide(1, self.z1, out=self.z1)
        xp.matmul(self.z1, p["W2"], out=self.a2)
        self.a2 += p["b2"]
        fused.cross_entropy_rows(self.a2, self.tb, self.rows, self.dy)
        xp.sum(self.rows, out=self.loss)
        self.loss /= b
        self.loop.losses.values.put(self.feed.loss_slot, self.loss)
        self.feed.loss_slot += 1
        if self.numerical:
            fused.two_layer_numerical_gradient(
                *(p[k] for k in names), self.xb, self.tb,
                out=tuple(g[k] for k in names), workspace=self.workspace)
        else:  # TwoLayerNet._loss_and_gradient, in place
            xp.matmul(self.dy, p["W2"].T, out=self.da1)
            xp.subtract(1.0, self.z1, out=self.slope)
            self.slope *= self.z1
            self.da1 *= self.slope
            xp.matmul(self.xb.T, self.da1, out=g["W1"])
            xp.sum(self.da1, axis=0, out=g["b1"])
            xp.matmul(self.z1.T, self.dy, out=g["W2"])
            xp.sum(self.dy, axis=0, out=g["b2"])
        for key in names:  # in place: a replayed graph updates the addresses it captured
            g[key] *= lr
            xp.subtract(p[key], g[key], out=p[key])
