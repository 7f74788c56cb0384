"""``cupy.random`` for the stand-in: one NumPy generator per device (not CuPy's numbers)."""

from __future__ import annotations

import numpy as _numpy

from .. import _standin as _sd
from .._core import launch as _launch
from .._core import new_array as _new_array

_states: dict[int, _numpy.random.Generator] = {}


def _rng() -> _numpy.random.Generator:
    device = _sd.current_device
    if device not in _states:
        _states[device] = _numpy.random.default_rng()
    return _states[device]


def seed(seed=None):
    _states[_sd.current_device] = _numpy.random.default_rng(seed)


def _draw(make):
    result = _new_array(make())
    _sd.submit(lambda: None)  # the generator's kernel
    return result


def rand(*size, dtype=float):
    return _draw(lambda: _rng().random(size).astype(dtype))


def randn(*size, dtype=float):
    return _draw(lambda: _rng().standard_normal(size).astype(dtype))


def random_sample(size=None, dtype=float):
    return _draw(lambda: _rng().random(size).astype(dtype))


random = random_sample


def standard_normal(size=None, dtype=float):
    return _draw(lambda: _rng().standard_normal(size).astype(dtype))


def normal(loc=0.0, scale=1.0, size=None, dtype=float):
    return _draw(lambda: _rng().normal(loc, scale, size).astype(dtype))


def uniform(low=0.0, high=1.0, size=None, dtype=float):
    return _draw(lambda: _rng().uniform(low, high, size).astype(dtype))


def randint(low, high=None, size=None, dtype=int):
    if high is None:
        low, high = 0, low
    return _draw(lambda: _numpy.asarray(_rng().integers(low, high, size), dtype=dtype))


def choice(a, size=None, replace=True, p=None):
    if not isinstance(a, int):
        raise NotImplementedError("the stand-in's choice takes an int population")
    return _draw(lambda: _numpy.asarray(_rng().choice(a, size, replace=replace)))


def permutation(num):
    if not isinstance(num, int):
        raise NotImplementedError("the stand-in's permutation takes an int")
    return _draw(lambda: _rng().permutation(num))


class Generator:
    """``cupy.random.default_rng()``: draws on the device; ``random(out=)`` writes in place
    (so a captured draw gives new numbers at every replay, as a device-side state does)."""

    def __init__(self, bit_generator=None):
        self._rng = _numpy.random.default_rng(bit_generator)

    def random(self, size=None, dtype=_numpy.float64, out=None):
        rng = self._rng
        if out is not None:
            return _launch(lambda out: rng.random(out.shape, dtype=out.dtype, out=out), (),
                           out=out)
        return _draw(lambda: rng.random(size, dtype=dtype))

    def standard_normal(self, size=None, dtype=_numpy.float64, out=None):
        rng = self._rng
        if out is not None:
            return _launch(lambda out: rng.standard_normal(out.shape, dtype=out.dtype, out=out),
                           (), out=out)
        return _draw(lambda: rng.standard_normal(size, dtype=dtype))

    def integers(self, low, high=None, size=None, dtype=_numpy.int64, endpoint=False):
        rng = self._rng
        return _draw(lambda: rng.integers(low, high, size, dtype=dtype, endpoint=endpoint))


def default_rng(seed=None):
    return Generator(seed)
