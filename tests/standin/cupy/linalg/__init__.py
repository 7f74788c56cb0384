"""``cupy.linalg``: the part the stand-in has."""

from __future__ import annotations

import numpy as _numpy

from .._core import launch as _launch


def norm(x, ord=None, axis=None, keepdims=False):
    return _launch(_numpy.linalg.norm, (x,), {"ord": ord, "axis": axis, "keepdims": keepdims})
