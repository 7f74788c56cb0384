"""The stand-in CuPy's own API, for tests and benchmarks (``import cupy_standin``).

``counters()`` returns a snapshot of what the host asked of the devices since the last
``reset_counters()``; ``counting()`` measures a block::

    with cupy_standin.counting() as c:
        net.gradient(x, t)
    assert c.host_waits == 0 and c.h2d_bytes == 0

``Counters`` fields are documented on the class; ``StandinRuleError`` is raised for the
stand-in's two rules stricter than CuPy (no allocation while a stream captures; no launch
of a graph whose buffers were freed). Importing this module imports the stand-in ``cupy``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from cupy import _standin

Counters = _standin.Counters
StandinRuleError = _standin.StandinRuleError
DEVICE_COUNT = _standin.DEVICE_COUNT

__all__ = ["Counters", "StandinRuleError", "DEVICE_COUNT", "counters", "reset_counters",
           "counting"]


def counters() -> Counters:
    """A snapshot of the counts since the last reset."""
    return dataclasses.replace(_standin.counts)


def reset_counters() -> None:
    """Set every count to zero."""
    _standin.reset_counters()


@contextlib.contextmanager
def counting() -> Iterator[Counters]:
    """The counts of the block, filled in when it ends (also when it raises)."""
    result = Counters()
    before = counters()
    try:
        yield result
    finally:
        for field, value in dataclasses.asdict(counters() - before).items():
            setattr(result, field, value)
