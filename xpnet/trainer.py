"""Mini-batch SGD: the loop of the book's ``train_neuralnet.py``, returning a history."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController
from tqdm import tqdm

from .backend import asnumpy, get_array_module, synchronize, to_device, use_device
from .two_layer_net import PARAM_NAMES, TwoLayerNet

GRAD_METHODS = ("backprop", "numerical")


class DivergenceError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class History:
    """What a run produced: the book's three lists plus when each evaluation happened.

    ``train_loss_list[i]`` is the loss of mini-batch ``i`` in the forward pass that
    gave its gradient (the book runs one more forward pass after the update to get it).
    """

    train_loss_list: list[float] = field(default_factory=list)
    train_acc_list: list[float] = field(default_factory=list)
    test_acc_list: list[float] = field(default_factory=list)
    eval_iterations: list[int] = field(default_factory=list)
    iter_per_epoch: float = 1.0
    wall_time_s: float = 0.0


def iter_per_epoch(train_size: int, batch_size: int) -> float:
    """The book's epoch length in iterations: ``max(train_size / batch_size, 1)``."""
    return max(train_size / batch_size, 1)


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
) -> History:
    """Train ``network`` in place by mini-batch SGD, exactly as the book's loop.

    Each iteration draws ``batch_size`` indices **with replacement**, takes a gradient
    (``grad="backprop"`` or ``"numerical"``, the fused central difference) and steps
    ``W -= learning_rate * g``. At every iteration ``i`` with ``i % iter_per_epoch == 0``
    (``i = 0`` included) it measures train and test accuracy on the full sets and calls
    ``on_epoch(i, train_acc, test_acc)``. Labels may be integers or one-hot.

    The data is moved to the network's device once; batches are drawn there, and the
    GPU is only waited for at evaluations. ``seed`` fixes the batch sequence.
    ``progress``: show a progress bar (``None``: only on a terminal).
    Raises DivergenceError if the loss becomes NaN or infinite.
    """
    if grad not in GRAD_METHODS:
        raise ValueError(f"grad must be one of {', '.join(GRAD_METHODS)}, got {grad!r}")
    for name, value in (("iters_num", iters_num), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")

    device = network.device
    with use_device(device):
        # Labels and images are checked and converted once, on the host, then moved.
        x_train, t_train = _prepare(network, x_train, t_train, "train")
        x_test, t_test = _prepare(network, x_test, t_test, "test")
        train_size = x_train.shape[0]
        per_epoch = iter_per_epoch(train_size, batch_size)
        # All batch indices up front: one host-to-device copy, and the same batches on
        # every device for a seed.
        rng = np.random.default_rng(seed)
        batches = to_device(
            rng.integers(0, train_size, size=(iters_num, batch_size), dtype=np.int64), device
        )
        xp = get_array_module(x_train)
        losses = xp.empty(iters_num, dtype=np.float64)
        history = History(iter_per_epoch=per_epoch)

        start = time.perf_counter()
        checked = 0  # losses[:checked] are known finite
        bar = tqdm(range(iters_num), disable=None if progress is None else not progress,
                   unit="it", leave=False)
        with _blas_quiet(grad == "numerical" and device.kind == "cpu"):
            for i in bar:
                batch_mask = batches[i]
                x_batch = x_train[batch_mask]
                t_batch = t_train[batch_mask]
                if grad == "backprop":
                    loss, grads = network.loss_and_gradient(x_batch, t_batch)
                else:
                    grads = network.numerical_gradient(x_batch, t_batch, method="fused")
                    loss = network.loss(x_batch, t_batch)
                for key in PARAM_NAMES:
                    network.params[key] -= learning_rate * grads[key]
                losses[i] = loss

                if i % per_epoch == 0:
                    checked = _check_finite(losses, checked, i + 1, learning_rate)
                    train_acc = network.accuracy(x_train, t_train)
                    test_acc = network.accuracy(x_test, t_test)
                    history.train_acc_list.append(train_acc)
                    history.test_acc_list.append(test_acc)
                    history.eval_iterations.append(i)
                    if on_epoch is not None:
                        on_epoch(i, train_acc, test_acc)
        _check_finite(losses, checked, iters_num, learning_rate)
        synchronize(device)
        history.wall_time_s = time.perf_counter() - start
        history.train_loss_list = asnumpy(losses).tolist()
    return history


def _blas_quiet(quiet: bool) -> contextlib.AbstractContextManager:
    """One BLAS thread while the parallel Numba gradient trains on the CPU.

    Idle OpenBLAS workers spin for a while after each matrix product and take the cores
    Numba's threads need: the fused gradient then runs ~2.3x slower (measured on 2 cores).
    """
    if not quiet:
        return contextlib.nullcontext()
    return ThreadpoolController().limit(limits=1, user_api="blas")


def _prepare(network: TwoLayerNet, x: Any, t: Any, name: str) -> tuple[Any, Any]:
    """(x, labels) as the net's dtype and integer labels on the net's device."""
    x = asnumpy(x)
    t = asnumpy(t)
    if x.ndim != 2 or x.shape[1] != network.sizes[0]:
        raise ValueError(
            f"x_{name} has shape {x.shape} but the net expects (N, {network.sizes[0]}); "
            "load the data with flatten=True"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"x_{name} contains NaN or infinite values; clean the data first")
    if t.ndim == 2:
        t = t.argmax(axis=1)
    if t.shape != (x.shape[0],):
        raise ValueError(f"t_{name} has shape {t.shape} but x_{name} has {x.shape[0]} samples")
    classes = network.sizes[2]
    if t.size and (t.min() < 0 or t.max() >= classes):
        raise ValueError(f"t_{name} has labels {t.min()}..{t.max()}, expected 0..{classes - 1}")
    return (
        to_device(x.astype(network.dtype, copy=False), network.device),
        to_device(t.astype(np.int64), network.device),
    )


def _check_finite(losses: Any, start: int, stop: int, learning_rate: float) -> int:
    """Raise DivergenceError naming the first non-finite loss in ``losses[start:stop]``."""
    bad = np.flatnonzero(~np.isfinite(asnumpy(losses[start:stop])))
    if bad.size:
        i = start + int(bad[0])
        raise DivergenceError(
            f"the loss became {asnumpy(losses[i])} at iteration {i}: training diverged; "
            f"try a smaller learning rate than {learning_rate:g} (e.g. --lr {learning_rate / 10:g})"
        )
    return stop
