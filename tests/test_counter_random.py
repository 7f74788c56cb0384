"""xpnet.counter_random against SplitMix64 written out in plain Python integers."""

from __future__ import annotations

import numpy as np

from xpnet.counter_random import Draw, stream_start

MASK = 2**64 - 1


def splitmix64(seed: int, count: int) -> list[int]:
    """The first ``count`` outputs of SplitMix64 seeded with ``seed`` (Steele et al. 2014)."""
    state, out = seed, []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def uniforms(outputs: list[int]) -> list[float]:
    return [(z >> 11) * 2.0**-53 for z in outputs]


def test_the_reference_is_splitmix64() -> None:
    assert splitmix64(0, 1) == [0xE220A8397B1DCDAF]  # the published first output of seed 0


def test_number_i_of_a_draw_is_splitmix64_output_start_plus_i() -> None:
    draw = Draw(np.zeros(1), 5, 0)
    assert draw.uniform().tolist() == uniforms(splitmix64(0, 5))
    assert draw.uniform().tolist() == uniforms(splitmix64(0, 10)[5:])  # advanced by 5
    draw.seek(3)
    assert draw.uniform().tolist() == uniforms(splitmix64(0, 8)[3:])
    assert draw.start.dtype == np.uint64 and int(draw.start[0]) == 8


def test_the_counter_wraps_around_at_two_to_the_64() -> None:
    """Counter c gives output c of seed 0, i.e. the first output from state c * gamma."""
    counters = [2**64 - 2, 2**64 - 1, 0, 1]
    want = [splitmix64((c * 0x9E3779B97F4A7C15) & MASK, 1)[0] for c in counters]
    assert want[2:] == splitmix64(0, 2)
    assert Draw(np.zeros(1), 4, counters[0]).uniform().tolist() == uniforms(want)


def test_a_draw_allocates_nothing_and_overwrites_its_buffer() -> None:
    draw = Draw(np.zeros(1), 7, 11)
    first = draw.uniform()
    kept = first.copy()
    second = draw.uniform()
    assert second is first  # the same buffer, refilled
    assert second.tolist() != kept.tolist()


def test_streams_of_a_seed_start_far_apart_and_iterations_follow_each_other() -> None:
    starts = [stream_start(7, k, 0, 100) for k in range(8)]
    gaps = [abs(a - b) for i, a in enumerate(starts) for b in starts[i + 1:]]
    assert min(gaps) > 2**40  # a run would need 2**40 numbers to reach the next stream
    assert stream_start(7, 2, 9, 100) == (starts[2] + 900) % 2**64
    assert stream_start(8, 2, 0, 100) != starts[2]  # another seed, other streams
    assert stream_start(7, 2, 0, 100) == starts[2]  # a pure function
    a = Draw(np.zeros(1), 100, stream_start(7, 0, 3, 100)).uniform().copy()
    b = Draw(np.zeros(1), 100, stream_start(7, 1, 3, 100)).uniform()
    assert not np.array_equal(a, b)
