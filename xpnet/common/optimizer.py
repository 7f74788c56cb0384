"""The book's optimizers (chapter 6): ``update(params, grads)`` changes ``params`` in place.

State (velocities, squared-gradient sums, moments) is created on the first update with
the shape and device of each parameter. The formulas and their order of operations are
the book's, so float64 updates are the book's to the bit. The star import also hands on
``np``, as the book's does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np

from xpnet.backend import asnumpy, get_array_module
from xpnet.inputs import OPTIMIZERS, InputError, choice

from .util import onto_device_of

__all__ = ["np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]

EPS = 1e-7  # keeps the adaptive steps finite where a gradient has been zero so far

Params = MutableMapping[str, Any]
Grads = Mapping[str, Any]


def _zeros_like(params: Params) -> dict[str, Any]:
    return {key: get_array_module(value).zeros_like(value) for key, value in params.items()}


def _sqrt(a: Any) -> Any:
    return get_array_module(a).sqrt(a)


class SGD:
    """Plain stochastic gradient descent: ``p -= lr * g``."""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(self, params: Params, grads: Grads) -> None:
        for key in params:
            params[key] -= self.lr * grads[key]


class Momentum:
    """SGD with momentum: ``v = momentum * v - lr * g``, then ``p += v``."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def update(self, params: Params, grads: Grads) -> None:
        if self.v is None:
            self.v = _zeros_like(params)
        for key in params:
            v = self.v[key]
            # In place (a captured CUDA step and a restored state keep the same array),
            # with the book's roundings: momentum * v, lr * g, then their difference.
            v *= self.momentum
            v -= self.lr * grads[key]
            params[key] += v


class Nesterov:
    """Nesterov's accelerated gradient in Bengio et al.'s form (arXiv:1212.0901)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def update(self, params: Params, grads: Grads) -> None:
        if self.v is None:
            self.v = _zeros_like(params)
        mu, lr = self.momentum, self.lr
        for key in params:
            g, v = grads[key], self.v[key]
            params[key] += mu * mu * v
            params[key] -= (1 + mu) * lr * g
            v *= mu
            v -= lr * g


class AdaGrad:
    """Per-element steps shrinking with the sum of squared gradients ``h``."""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr
        self.h = None

    def update(self, params: Params, grads: Grads) -> None:
        if self.h is None:
            self.h = _zeros_like(params)
        for key in params:
            g, h = grads[key], self.h[key]
            h += g * g
            params[key] -= self.lr * g / (_sqrt(h) + EPS)


class RMSprop:
    """AdaGrad with a decaying average of squared gradients (``decay_rate`` per step)."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        self.lr = lr
        self.decay_rate = decay_rate
        self.h = None

    def update(self, params: Params, grads: Grads) -> None:
        if self.h is None:
            self.h = _zeros_like(params)
        for key in params:
            g, h = grads[key], self.h[key]
            h *= self.decay_rate
            h += (1 - self.decay_rate) * g * g
            params[key] -= self.lr * g / (_sqrt(h) + EPS)


class Adam:
    """Kingma and Ba's Adam (arXiv:1412.6980), bias correction folded into the step size.

    ``iter`` counts updates; ``m`` and ``v`` are the first and second moments.
    """

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.iter = 0
        self.m = None
        self.v = None

    def update(self, params: Params, grads: Grads) -> None:
        if self.m is None:
            self.m, self.v = _zeros_like(params), _zeros_like(params)
        self.iter += 1
        b1, b2 = self.beta1, self.beta2
        step = self.lr * math.sqrt(1.0 - b2**self.iter) / (1.0 - b1**self.iter)
        for key in params:
            g, m, v = grads[key], self.m[key], self.v[key]
            m += (1 - b1) * (g - m)
            v += (1 - b2) * (g**2 - v)
            params[key] -= step * m / (_sqrt(v) + EPS)


# -- for runs that stop and resume (xpnet train): not part of the book's API -------------

# Keyed by xpnet.inputs.OPTIMIZERS, in its order (tests/test_nets.py holds them equal).
CLASSES = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
           "rmsprop": RMSprop, "adam": Adam}
# The per-parameter state arrays of each optimizer, by attribute name.
SLOTS = {SGD: (), Momentum: ("v",), Nesterov: ("v",), AdaGrad: ("h",), RMSprop: ("h",),
         Adam: ("m", "v")}

Optimizer = SGD | Momentum | Nesterov | AdaGrad | RMSprop | Adam


def make(name: str, lr: float) -> Optimizer:
    """The optimizer called ``name`` (``xpnet.inputs.OPTIMIZERS``) with learning rate
    ``lr`` and the book's other settings."""
    return CLASSES[choice("optimizer", name, OPTIMIZERS)](lr=lr)


def state_copies(opt: Any) -> int:
    """How many arrays the size of the parameters ``opt`` keeps (its ``SLOTS``: Adam 2,
    SGD 0); None (no optimizer yet) 0; an optimizer not of the book's six, Adam's 2, the
    most any of them keeps."""
    if opt is None:
        return 0
    return len(SLOTS.get(type(opt), ("m", "v")))


def state(opt: Optimizer) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """``(arrays, scalars)``: host copies of ``opt``'s state, named ``"<slot>.<param>"``
    (``"v.W1"``, ``"h.b2"``, ``"m.W1"``), and its counters (Adam: ``{"iter": n}``).

    Before the first update there are no arrays.
    """
    arrays = {}
    for slot in SLOTS[type(opt)]:
        for key, value in (getattr(opt, slot) or {}).items():
            arrays[f"{slot}.{key}"] = asnumpy(value).copy()
    scalars = {"iter": int(opt.iter)} if isinstance(opt, Adam) else {}
    return arrays, scalars


def restore(opt: Optimizer, arrays: Mapping[str, np.ndarray], scalars: Mapping[str, Any],
            params: Mapping[str, Any]) -> None:
    """Give ``opt`` the state ``state`` saved, for the parameters ``params``.

    Each array goes onto its parameter's device in its dtype. No arrays: a fresh state
    (saved before the first update). Names, shapes or counters that do not fit
    ``params`` and ``opt``, or a value that is NaN or infinite (a damaged file: a run's
    state is always finite), raise InputError.
    """
    slots = SLOTS[type(opt)]
    expected = {f"{slot}.{key}" for slot in slots for key in params}
    given = set(arrays)
    if given and given != expected:
        raise InputError(
            f"optimizer state does not fit {type(opt).__name__} for these parameters: "
            f"missing {sorted(expected - given)}, unexpected {sorted(given - expected)}")
    restored = {}
    for slot in slots if given else ():
        restored[slot] = {}
        for key, p in params.items():
            a = np.asarray(arrays[f"{slot}.{key}"])
            if a.shape != p.shape or not np.issubdtype(a.dtype, np.floating):
                raise InputError(f"optimizer state {slot}.{key} is {a.dtype} {a.shape}; "
                                 f"its parameter is {p.dtype} {p.shape}")
            with np.errstate(over="ignore"):  # a value too big for the dtype: refused next
                host = np.array(a, dtype=p.dtype)
            if not np.isfinite(host).all():
                raise InputError(f"optimizer state {slot}.{key} holds NaN or infinity (in "
                                 f"{np.dtype(p.dtype).name}): the saved state is damaged")
            restored[slot][key] = onto_device_of(host, p)
    if isinstance(opt, Adam):
        count = scalars.get("iter")
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0 \
                or (count == 0) != (not given):
            raise InputError(f"Adam's saved iteration count {count!r} does not fit its "
                             f"{'saved' if given else 'missing'} moments")
        opt.iter = int(count)
    for slot in slots:
        setattr(opt, slot, restored.get(slot))
