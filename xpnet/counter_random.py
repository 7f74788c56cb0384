"""Uniform random numbers from a counter: the same on NumPy and CuPy, and replayable.

A run's dropout masks must be the same whether the step runs on the CPU, on a GPU, or
as a CUDA graph replayed thousands of times, and a resumed run must draw the masks the
run never stopped would have. A generator with hidden state gives none of that: a
graph would replay its first draw forever, and NumPy and cuRAND draw different numbers.
So number ``i`` of a draw is a pure function of ``start + i``: the SplitMix64 output
function (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
OOPSLA 2014) of that 64-bit counter. ``start`` lives in an array, so a captured step
reads it from device memory and advances it in place.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .backend import get_array_module

# SplitMix64's increment and mixing constants (Steele, Lea and Flood, 2014)
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
TO_UNIT = 2.0**-53  # 53 random bits to a float64 in [0, 1)


def stream_start(seed: int, stream: int, iteration: int, size: int) -> int:
    """The counter of draw ``iteration`` (``size`` numbers each) of stream ``stream``.

    Streams of one seed start far apart (a hash), so two dropout layers never share
    numbers; draw ``iteration`` of a stream starts ``iteration * size`` after draw 0.
    """
    digest = hashlib.sha256(f"xpnet counter_random {seed} {stream}".encode()).digest()
    return (int.from_bytes(digest[:8], "little") + iteration * size) % 2**64


class Draw:
    """Buffers for drawing ``size`` uniforms at a time without allocating.

    ``start`` (a 1-element uint64 array on the device of ``like``) is the counter of the
    next draw; each ``uniform()`` fills ``out`` with numbers ``start .. start + size - 1``
    and advances ``start`` by ``size``, all on the device.
    """

    def __init__(self, like: Any, size: int, start: int) -> None:
        xp = get_array_module(like)
        self.xp, self.size = xp, int(size)
        self.start = xp.asarray(np.array([start], dtype=np.uint64))
        self.lanes = xp.arange(self.size, dtype=np.uint64)
        self.bits = xp.empty(self.size, dtype=np.uint64)
        self.shifted = xp.empty(self.size, dtype=np.uint64)
        self.out = xp.empty(self.size, dtype=np.float64)

    def seek(self, start: int) -> None:
        """Make the next draw start at counter ``start`` (a resume's, or a new chunk's)."""
        self.start.fill(np.uint64(start))

    def uniform(self) -> Any:
        """The next ``size`` uniforms in [0, 1), float64, in ``out`` (overwritten next time)."""
        xp, z, s = self.xp, self.bits, self.shifted
        xp.add(self.lanes, self.start, out=z)
        xp.multiply(z, GOLDEN_GAMMA, out=z)  # counter i -> SplitMix64's state after i+1 steps
        xp.add(z, GOLDEN_GAMMA, out=z)
        xp.right_shift(z, np.uint64(30), out=s)
        xp.bitwise_xor(z, s, out=z)
        xp.multiply(z, MIX_1, out=z)
        xp.right_shift(z, np.uint64(27), out=s)
        xp.bitwise_xor(z, s, out=z)
        xp.multiply(z, MIX_2, out=z)
        xp.right_shift(z, np.uint64(31), out=s)
        xp.bitwise_xor(z, s, out=z)
        xp.right_shift(z, np.uint64(11), out=z)
        xp.multiply(z, TO_UNIT, out=self.out)
        self.start += np.uint64(self.size)
        return self.out
