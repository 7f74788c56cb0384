"""Tiny book nets and the two loops, shared by the CPU and stand-in tests of
xpnet.layered_step: the eager one (``BookNet._loss_and_gradient`` + ``optimizer.update``)
and the one through ``LayeredStep``, chunk by chunk as the trainer drives it."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet import nets
from xpnet.backend import get_array_module, use_device
from xpnet.common import optimizer as optimizers
from xpnet.layered_step import LayeredStep

CLASSES = 4
FEATURES = {"multi-layer": 16, "simple-conv": 36, "deep-conv": 784}  # 6x6, 28x28 images
LEARNING_RATES = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.05, "adagrad": 0.1,
                  "rmsprop": 0.01, "adam": 0.01}


def make(kind: str, device: str = "cpu", activation: str = "relu", decay: float = 0.0,
         dtype: str = "float64") -> nets.BookNet:
    """A tiny net of ``kind``: the same weights on every device (seeded)."""
    hidden = (7, 6) if kind == "multi-layer" else 5
    std = activation if kind != "simple-conv" else 0.3
    return nets.build(kind, features=FEATURES[kind], classes=CLASSES, hidden=hidden,
                      activation=activation, weight_init_std=std, weight_decay=decay,
                      dtype=dtype, device=device, seed=5)


def optimizer(name: str) -> Any:
    return optimizers.make(name, LEARNING_RATES[name])


def data(kind: str, count: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(23)
    return rng.random((count, FEATURES[kind])), rng.integers(0, CLASSES, count).astype(np.intp)


def batches(iters: int, batch: int, count: int) -> np.ndarray:
    return np.random.default_rng(31).integers(0, count, size=(iters, batch), dtype=np.int64)


def host(a: Any) -> np.ndarray:
    return a.get() if get_array_module(a) is not np else np.asarray(a)


def eager(net: nets.BookNet, opt: Any, x: Any, t: Any, order: np.ndarray,
          first: int = 0) -> list[float]:
    """Iterations ``first``, ... the eager way; their losses."""
    net.start_iteration(first)
    losses = []
    for batch in order:
        loss, grads = net._loss_and_gradient(x[batch], t[batch])
        opt.update(net.params, grads)
        losses.append(float(loss))
    return losses


def layered(net: nets.BookNet, opt: Any, x: Any, t: Any, order: np.ndarray, chunk: int,
            graph: bool = False, first: int = 0,
            on_step: Any = None) -> tuple[list[float], LayeredStep]:
    """The same iterations through LayeredStep, chunks of ``chunk`` iterations (the first
    chunk starts at ``first``, mid-chunk if ``first % chunk``, as a resumed run does).
    ``on_step(i, step)`` runs step i instead of ``step()``."""
    xp = get_array_module(x)
    with use_device(net.device):
        losses_buffer = xp.zeros(chunk, dtype=np.float64)
    step = LayeredStep(net, opt, x, t, batch_size=order.shape[1], chunk_length=chunk,
                       losses=losses_buffer, graph=graph)
    losses, i = [], first
    with use_device(net.device), step.stream:
        while i < first + len(order):
            start = i // chunk * chunk
            rows = np.zeros((chunk, order.shape[1]), dtype=np.int64)
            part = order[max(start, first) - first:start + chunk - first]
            rows[max(start, first) - start:][:len(part)] = part
            step.start_chunk(rows, i - start, i)
            offset = i - start
            for _ in range(len(part)):
                if on_step is not None:
                    on_step(i, step)
                else:
                    step()
                i += 1
            losses += host(losses_buffer)[offset:offset + len(part)].tolist()
    return losses, step


def params_of(net: nets.BookNet) -> dict[str, np.ndarray]:
    return {k: host(v) for k, v in net.params.items()}
