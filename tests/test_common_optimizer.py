"""xpnet.common.optimizer against updates computed by hand, step by step (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xpnet.common.optimizer import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop


@pytest.fixture
def steps(rng):
    """A start point and three gradients, for two parameters of different shapes."""
    start = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(3)]
    return start, grads


def run(opt, start, grads):
    params = {k: v.copy() for k, v in start.items()}
    arrays = dict(params)
    for g in grads:
        opt.update(params, g)
    assert all(params[k] is arrays[k] for k in params)  # updated in place: layers see it
    return params


def by_hand(start, grads, step):
    out = {}
    for key, p in start.items():
        p, state = p.copy(), {}
        for i, g in enumerate(grads, start=1):
            p = step(p, g[key], state, i)
        out[key] = p
    return out


def sgd(p, g, s, i):
    return p - 0.05 * g


def momentum(p, g, s, i):
    s["v"] = 0.8 * s.get("v", 0) - 0.05 * g
    return p + s["v"]


def nesterov(p, g, s, i):
    v = s.get("v", 0)
    p = p + 0.8 * 0.8 * v - (1 + 0.8) * 0.05 * g
    s["v"] = 0.8 * v - 0.05 * g
    return p


def adagrad(p, g, s, i):
    s["h"] = s.get("h", 0) + g * g
    return p - 0.05 * g / (np.sqrt(s["h"]) + 1e-7)


def rmsprop(p, g, s, i):
    s["h"] = 0.9 * s.get("h", 0) + 0.1 * g * g
    return p - 0.05 * g / (np.sqrt(s["h"]) + 1e-7)


def adam(p, g, s, i):
    s["m"] = 0.9 * s.get("m", 0) + 0.1 * g
    s["v"] = 0.99 * s.get("v", 0) + 0.01 * g * g
    m_hat, v_hat = s["m"] / (1 - 0.9**i), s["v"] / (1 - 0.99**i)
    # the book adds eps to sqrt(v), not to sqrt(v_hat): in v_hat's terms it is eps / sqrt(1 - b2^i)
    return p - 0.05 * m_hat / (np.sqrt(v_hat) + 1e-7 / math.sqrt(1 - 0.99**i))


@pytest.mark.parametrize(("opt", "step"), [
    (lambda: SGD(lr=0.05), sgd),
    (lambda: Momentum(lr=0.05, momentum=0.8), momentum),
    (lambda: Nesterov(lr=0.05, momentum=0.8), nesterov),
    (lambda: AdaGrad(lr=0.05), adagrad),
    (lambda: RMSprop(lr=0.05, decay_rate=0.9), rmsprop),
    (lambda: Adam(lr=0.05, beta1=0.9, beta2=0.99), adam),
], ids=["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"])
def test_updates_are_the_hand_computed_ones(steps, opt, step) -> None:
    start, grads = steps
    got = run(opt(), start, grads)
    expected = by_hand(start, grads, step)
    for key in start:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-13, atol=1e-15)


def test_the_books_defaults() -> None:
    assert SGD().lr == 0.01
    assert (Momentum().lr, Momentum().momentum) == (0.01, 0.9)
    assert (Nesterov().lr, Nesterov().momentum) == (0.01, 0.9)
    assert AdaGrad().lr == 0.01
    assert (RMSprop().lr, RMSprop().decay_rate) == (0.01, 0.99)
    assert (Adam().lr, Adam().beta1, Adam().beta2, Adam().iter) == (0.001, 0.9, 0.999, 0)


def test_adam_first_step_moves_every_weight_by_about_lr(steps) -> None:
    # m_hat / sqrt(v_hat) = g / |g| on the first step: each weight moves by lr (eps aside)
    start, grads = steps
    got = run(Adam(lr=0.001), start, grads[:1])
    for key in start:
        np.testing.assert_allclose(start[key] - got[key], 0.001 * np.sign(grads[0][key]),
                                   rtol=1e-4)
