"""kernels.two_layer_numerical_gradient against the book's loop and an 80-bit reference.

The book's code is ``bench/book.py`` (``import book``). The extended reference is the
book's loss evaluated in ``np.longdouble`` (64-bit mantissa on x86-64) with each
parameter moved by exactly +-h: the exact central difference to ~1e-15.
"""

from __future__ import annotations

import gzip

import book
import numba
import numpy as np
import pytest
import xpnet.kernels.numerical_gradient as ng
from xpnet.kernels import two_layer_numerical_gradient

NAMES = ("W1", "b1", "W2", "b2")
LD = np.longdouble


# ---------------------------------------------------------------------- helpers


def make(seed, d_in, hidden, out, batch, dtype=np.float64, zeros=0.6, w_scale=0.5, x_scale=1.0):
    """A random net and batch; a fraction ``zeros`` of the inputs are exactly 0."""
    rng = np.random.default_rng(seed)
    net = {
        "W1": w_scale * rng.standard_normal((d_in, hidden)),
        "b1": 0.1 * rng.standard_normal(hidden),
        "W2": w_scale * rng.standard_normal((hidden, out)),
        "b2": 0.1 * rng.standard_normal(out),
    }
    net = {k: v.astype(dtype) for k, v in net.items()}
    x = x_scale * rng.random((batch, d_in))
    x[rng.random((batch, d_in)) < zeros] = 0.0
    return net, x.astype(dtype), rng.integers(0, out, batch)


def fused(net, x, t, h=1e-4):
    return two_layer_numerical_gradient(*(net[k] for k in NAMES), x, t, h=h)


def book_net(net, dtype=np.float64):
    """The book's TwoLayerNet holding ``net``'s parameters, cast to ``dtype``."""
    d_in, hidden = net["W1"].shape
    ref = book.TwoLayerNet(d_in, hidden, net["W2"].shape[1])
    ref.params = {k: net[k].astype(dtype) for k in NAMES}
    return ref


def book_loop(net, x, t):
    """The book's TwoLayerNet.numerical_gradient (h = 1e-4), in float64."""
    ref = book_net(net)
    onehot = np.eye(net["W2"].shape[1])[t]
    with np.errstate(over="ignore"):
        grads = ref.numerical_gradient(x.astype(np.float64), onehot)
    return [grads[k] for k in NAMES]


def extended(net, x, t, h=1e-4):
    """Central differences of the book's loss in long double, each step exactly h."""
    ref = book_net(net, LD)
    x = x.astype(LD)
    onehot = np.eye(net["W2"].shape[1])[t]
    grads = []
    for k in NAMES:
        p = ref.params[k]
        g = np.empty(p.shape, LD)
        for idx in np.ndindex(p.shape):
            v = p[idx]
            p[idx] = v + LD(h)
            up = ref.loss(x, onehot)
            p[idx] = v - LD(h)
            down = ref.loss(x, onehot)
            p[idx] = v
            g[idx] = (up - down) / (2 * LD(h))
        grads.append(g)
    return grads


def max_error(got, expected):
    return max(float(np.abs(g - e).max()) for g, e in zip(got, expected, strict=True))


def assert_close(got, expected, atol):
    for name, g, e in zip(NAMES, got, expected, strict=True):
        assert g.dtype == np.float64 and g.shape == e.shape, name
        np.testing.assert_allclose(g, e.astype(np.float64), rtol=0, atol=atol, err_msg=name)


# ---------------------------------------------------------- whole gradients


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("dims", "batch"), [((20, 8, 5), 1), ((20, 8, 5), 100), ((30, 10, 10), 100)]
)
def test_matches_book_loop(dims, batch, dtype):
    net, x, t = make(sum(dims) + batch, *dims, batch, dtype)
    assert_close(fused(net, x, t), book_loop(net, x, t), atol=1e-9)


def test_matches_book_backprop():
    net, x, t = make(1, 30, 10, 10, 50)
    grads = book_net(net).gradient(x, np.eye(10)[t])  # no 1e-7 and no h^2 term: looser
    assert_close(fused(net, x, t), [grads[k] for k in NAMES], atol=1e-6)


def test_closer_than_the_book_loop_to_the_80_bit_reference():
    net, x, t = make(12, 8, 5, 3, 4, zeros=0.2)
    exact = extended(net, x, t)
    fused_error = max_error(fused(net, x, t), exact)
    book_error = max_error(book_loop(net, x, t), exact)
    assert fused_error < 1e-14  # the reference's own noise is ~1e-15
    assert book_error > 100 * fused_error


def test_exact_fallback_for_large_inputs_and_weights():
    # |dz| max|W2[j]| reaches ~1e-2 here, well past the series' limit
    net, x, t = make(2, 20, 8, 5, 40, w_scale=0.05, x_scale=40.0)
    net["W2"] *= 400.0
    a1 = x @ net["W1"] + net["b1"]
    dz = book.sigmoid(a1[:, None, :] + 1e-4 * x[:, :, None]) - book.sigmoid(a1[:, None, :])
    y = np.abs(dz) * np.abs(net["W2"]).max(axis=1)
    assert (y > ng.SERIES_MAX).any() and (y[x != 0] < ng.SERIES_MAX).any()
    got = fused(net, x, t)
    assert max(np.abs(g).max() for g in got) > 1e-3  # not all saturated
    assert_close(got, book_loop(net, x, t), atol=1e-9)


@pytest.mark.parametrize("h", [0.5, 1.5, 800.0])
def test_big_steps_take_the_exact_paths(h):
    # h > 1 sends W2/b2 through bumped_loss; h = 800 would overflow expm1 in sigmoid_delta
    net, x, t = make(3, 6, 4, 3, 5)
    with np.errstate(over="ignore"):
        exact = extended(net, x, t, h)
    got = fused(net, x, t, h)
    assert all(np.isfinite(g).all() for g in got)
    assert_close(got, exact, atol=1e-14)


def test_real_fashion_images():
    from support import require_fashion_mnist

    path = require_fashion_mnist() / "train-images-idx3-ubyte.gz"
    with gzip.open(path) as f:
        images = np.frombuffer(f.read(16 + 10 * 784), np.uint8, offset=16)
    x = images.reshape(10, 784).astype(np.float32) / 255
    net, _, t = make(4, 784, 4, 10, 10, w_scale=0.01)
    assert_close(fused(net, x, t), book_loop(net, x, t), atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negative_inputs_move_their_weights(dtype):
    # Standardised inputs (x - mean) are negative as often as positive. Only x == 0 leaves
    # W1[i] out of a sample; a kernel that skipped x < 0 as well would zero these rows.
    net, x, t = make(31, 20, 8, 5, 40, zeros=0.3)
    x = np.where(x != 0, x - 0.6, 0.0)
    x[:, :4] = -np.abs(x[:, :4])  # inputs 0-3 never positive
    x = x.astype(dtype)
    assert (x < 0).mean() > 0.3 and (x > 0).any() and (x == 0).any()
    got = fused(net, x, t)
    assert np.abs(got[0][:4]).min() > 1e-6  # rows of only-negative inputs move the loss
    assert_close(got, book_loop(net, x, t), atol=1e-9)


def test_negative_inputs_match_the_80_bit_reference():
    net, x, t = make(32, 6, 4, 3, 5, zeros=0.3)
    x = np.where(x != 0, x - 0.7, 0.0)
    assert (x < 0).any() and (x > 0).any()
    assert max_error(fused(net, x, t), extended(net, x, t)) < 1e-14


def test_deterministic_across_thread_counts():
    net, x, t = make(6, 40, 10, 10, 30)
    first = fused(net, x, t)
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = fused(net, x, t)
    finally:
        numba.set_num_threads(saved)
    for a, b in zip(first, single, strict=True):
        np.testing.assert_array_equal(a, b)


def test_nan_input_gives_nan_not_an_error():
    # inputs are trusted: a NaN is not reported, but it must not pass for a number
    net, x, t = make(7, 5, 3, 2, 4)
    x[1, 2] = np.nan
    gw1, gb1, gw2, gb2 = fused(net, x, t)
    # sample 1 reaches every b1, W2, b2 entry, and W1 through row 2 (and its other
    # nonzero inputs)
    assert np.isnan(gw1[2]).all() and np.isnan(gb1).all()
    assert np.isnan(gw2).all() and np.isnan(gb2).all()


# ------------------------------------------------- both sides of every cut-off
# DERIVATION.md: on the series side the error is far below one ulp of the loss; on the
# exact side it is the rounding of L(+) and L(-), an ulp or two.

JUST = (1 - 1e-9, 1 + 1e-9)  # just below and just above a cut-off


@pytest.mark.parametrize("side", JUST)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_log1p_small_on_both_sides_of_series_max(side, sign):
    u = sign * ng.SERIES_MAX * side
    got = ng._cpu.log1p_small(u)
    assert abs(got - np.log1p(LD(u))) <= 3e-16 * abs(got)


@pytest.mark.parametrize("e", [1 - 1e-9, 1 + 1e-9, 800.0])
@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("a", [0.7, -25.0])
def test_sigmoid_delta_on_both_sides_of_one(e, sign, a):
    e *= sign
    z, s = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(a))
    with np.errstate(over="ignore"):
        got = ng._cpu.sigmoid_delta(a, z, s, e, np.expm1(-e))
        exact = book.sigmoid(LD(a) + LD(e)) - book.sigmoid(LD(a))
    # an ulp or two of the result, or of 1 past |e| = 1 (the plain difference)
    assert abs(got - exact) <= 3e-16 * (abs(exact) if abs(e) <= 1 else 1.0)


def one_sample(seed=20, w2_scale=3.0):
    """A 3-4-5 net (W2 scaled up) and one input, with the kernels' float64 tables."""
    net, x, t = make(seed, 3, 4, 5, 1, zeros=0.0)
    net["W2"] *= w2_scale
    units = np.empty((8, 1, 4))
    samples = np.empty((3, 1))
    exps = np.empty((1, 5))
    a2 = np.empty((1, 5))
    w2_absmax = np.empty(4)
    ng._forward_tables(x, *(net[k] for k in NAMES), t, units, samples, exps, a2, w2_absmax)
    return net, x, t, (units, samples, exps, a2, w2_absmax)


def sample_loss(net, x, t, da1=None, da2=None):
    """The book's loss of the one sample in long double, a1 or a2 moved by da1 / da2."""
    p = {k: net[k].astype(LD) for k in NAMES}
    a1 = x.astype(LD) @ p["W1"] + p["b1"] + (0 if da1 is None else da1)
    a2 = book.sigmoid(a1) @ p["W2"] + p["b2"] + (0 if da2 is None else da2)
    return book.cross_entropy_error(book.softmax(a2), t)


@pytest.mark.parametrize("side", JUST)
def test_hidden_pair_on_both_sides_of_series_max(side):
    net, x, t, (units, samples, exps, a2, w2_absmax) = one_sample()
    j = 1
    a, z, s = units[ng.A1, 0, j], units[ng.Z1, 0, j], units[ng.S1, 0, j]

    def y_max(e):  # the Y that hidden_pair compares with SERIES_MAX
        dz = [ng._cpu.sigmoid_delta(a, z, s, f, np.expm1(-f)) for f in (e, -e)]
        return max(abs(d) for d in dz) * w2_absmax[j]

    lo, hi = 0.0, 1.0  # bisect for the step e that puts Y at side * SERIES_MAX
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if y_max(mid) < side * ng.SERIES_MAX else (lo, mid)
    e = hi
    assert y_max(e) == pytest.approx(side * ng.SERIES_MAX, rel=1e-12)
    got = ng._cpu.hidden_pair(e, np.expm1(-e), np.expm1(e), 0, j, t[0], units, samples,
                              w2_absmax, a2, net["W2"])
    shift = np.zeros(4, LD)
    shift[j] = e
    exact = sample_loss(net, x, t, da1=shift) - sample_loss(net, x, t, da1=-shift)
    assert abs(exact) > 1e-4  # a real difference, not a rounding
    loss = float(sample_loss(net, x, t))
    ulp = np.spacing(max(loss, 1.0))
    # series side: far below an ulp of the loss; exact side: the rounding of L(+-)
    assert abs(got - exact) <= (ulp / 4 if side < 1 else 4 * ulp)


@pytest.mark.parametrize("side", JUST)
@pytest.mark.parametrize("label_is_k", [True, False])
def test_output_pair_on_both_sides_of_one(side, label_is_k):
    net, x, t, (_, samples, exps, a2, _) = one_sample()
    k = t[0] if label_is_k else (t[0] + 1) % 5
    delta = side * 1.0
    got = ng._cpu.output_pair(delta, 0, k, t[0], samples, exps, a2)
    bump = np.zeros(5, LD)
    bump[k] = delta
    exact = sample_loss(net, x, t, da2=bump) - sample_loss(net, x, t, da2=-bump)
    ulp = np.spacing(max(float(sample_loss(net, x, t)), 1.0))
    assert abs(got - exact) <= 4 * ulp


@pytest.mark.parametrize("side", JUST)
def test_row_test_on_both_sides_of_row_max(side):
    # The worst case of DERIVATION.md 4.5: a1 = 0 (largest sigmoid'), W2 = [w, -w], the
    # label on -w and p_label small, so |u| ~ 4 Y. x puts |e| / 4 * max|W2| at
    # side * ROW_MAX: below, the branch-free series; above, hidden_pair.
    h, w = 1e-4, 2.0
    x = np.array([[side * ng.ROW_MAX / (h * 0.25 * w)]])
    net = {"W1": np.array([[0.3]]), "W2": np.array([[w, -w]]), "b2": np.array([3.0, 0.0])}
    net["b1"] = -(x[0] * net["W1"][0])  # a1 = x W1 + b1 = 0 exactly
    t = np.array([1])
    got = fused(net, x, t)[0]
    exact = extended(net, x, t)[0]
    np.testing.assert_allclose(got, exact.astype(np.float64), rtol=0, atol=1e-13)
    u = np.expm1(2 * h * exact[0, 0])  # L(+) - L(-) = log1p(u), batch 1
    if side < 1:  # the bound that lets the row skip the per-unit tests, nearly reached
        assert 0.9 * ng.SERIES_MAX < abs(u) <= ng.SERIES_MAX
