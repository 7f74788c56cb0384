"""xpnet.common.util: im2col/col2im against direct loops, smoothing, shuffling, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.common.util import col2im, conv_output_size, im2col, shuffle_dataset, smooth_curve

CASES = [((2, 3, 7, 7), 3, 3, 1, 0), ((2, 3, 7, 6), 3, 2, 2, 1), ((1, 2, 9, 9), 4, 4, 3, 2),
         ((3, 1, 5, 5), 1, 1, 1, 0), ((1, 1, 6, 6), 2, 2, 2, 0)]


def im2col_loop(x: np.ndarray, fh: int, fw: int, stride: int, pad: int) -> np.ndarray:
    """Row (n, i, j) = the zero-padded patch under the filter at output (i, j), (c, y, x)."""
    n, c, h, w = x.shape
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    padded[:, :, pad:pad + h, pad:pad + w] = x
    out_h, out_w = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    rows = []
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                top, left = i * stride, j * stride
                rows.append(padded[b, :, top:top + fh, left:left + fw].reshape(-1))
    return np.array(rows)


def col2im_loop(col: np.ndarray, shape: tuple[int, ...], fh: int, fw: int, stride: int,
                pad: int) -> np.ndarray:
    n, c, h, w = shape
    out_h, out_w = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    row = 0
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                top, left = i * stride, j * stride
                padded[b, :, top:top + fh, left:left + fw] += col[row].reshape(c, fh, fw)
                row += 1
    return padded[:, :, pad:pad + h, pad:pad + w]


@pytest.mark.parametrize(("shape", "fh", "fw", "stride", "pad"), CASES)
def test_im2col_is_the_direct_loop(rng, shape, fh, fw, stride, pad) -> None:
    x = rng.standard_normal(shape)
    col = im2col(x, fh, fw, stride, pad)
    assert col.dtype == np.float64
    np.testing.assert_array_equal(col, im2col_loop(x, fh, fw, stride, pad))


@pytest.mark.parametrize(("shape", "fh", "fw", "stride", "pad"), CASES)
def test_col2im_sums_patches_back_like_the_direct_loop(rng, shape, fh, fw, stride, pad) -> None:
    rows = im2col_loop(np.zeros(shape), fh, fw, stride, pad).shape[0]
    col = rng.standard_normal((rows, shape[1] * fh * fw))
    np.testing.assert_allclose(col2im(col, shape, fh, fw, stride, pad),
                               col2im_loop(col, shape, fh, fw, stride, pad), rtol=0, atol=1e-13)


def test_col2im_is_the_adjoint_of_im2col(rng) -> None:
    x = rng.standard_normal((2, 3, 8, 7))
    col = im2col(x, 3, 2, 2, 1)
    c = rng.standard_normal(col.shape)
    assert np.sum(col * c) == pytest.approx(np.sum(x * col2im(c, x.shape, 3, 2, 2, 1)),
                                            rel=1e-12)


def test_float32_images_give_float64_columns(rng) -> None:
    x = rng.random((1, 1, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(im2col(x, 2, 2), im2col_loop(x.astype(np.float64), 2, 2, 1, 0))


def test_conv_output_size_is_the_books_float() -> None:
    assert conv_output_size(28, 5) == 24.0
    assert conv_output_size(7, 3, stride=2, pad=1) == 4.0
    assert conv_output_size(6, 3, stride=2) == 2.5


def test_smooth_curve_is_a_mirrored_kaiser_window_average(rng) -> None:
    x = rng.random(40)
    w = np.kaiser(11, 2)
    w = w / w.sum()
    mirrored = np.concatenate([x[10:0:-1], x, x[-1:-11:-1]])
    expected = [np.dot(w[::-1], mirrored[i:i + 11]) for i in range(len(mirrored) - 10)][5:-5]
    got = smooth_curve(list(x))  # a list of losses, as a training loop collects them
    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    const = smooth_curve(np.full(30, 0.25))
    np.testing.assert_allclose(const, 0.25, rtol=1e-14)


def test_shuffle_dataset_follows_the_global_generator(rng) -> None:
    x = rng.random((12, 1, 3, 3))
    t = np.arange(12)
    np.random.seed(4)  # noqa: NPY002
    order = np.random.permutation(12)  # noqa: NPY002
    np.random.seed(4)  # noqa: NPY002
    xs, ts = shuffle_dataset(x, t)
    np.testing.assert_array_equal(ts, order)
    np.testing.assert_array_equal(xs, x[order])
    flat_x, flat_t = shuffle_dataset(x.reshape(12, -1), t)
    np.testing.assert_array_equal(flat_x, x.reshape(12, -1)[flat_t])
