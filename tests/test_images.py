"""xpnet.images: picture files made MNIST-like, checked against real Fashion-MNIST images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support import FASHION_DIR, require_fashion_mnist

from xpnet.images import ImageError, mnist_like
from xpnet.inputs import InputError


@pytest.fixture(scope="module")
def test_images() -> np.ndarray:
    """The first 20 Fashion-MNIST test images, (20, 28, 28) uint8."""
    require_fashion_mnist()
    from xpnet.dataset import load_dataset

    data = load_dataset("fashion-mnist", data_dir=FASHION_DIR, download=False)
    return data.x_test[:20].reshape(-1, 28, 28)


def save(array: np.ndarray, path, mode: str | None = None):
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(path)
    return path


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_a_28x28_png_on_black_is_used_as_is(test_images, tmp_path, dataset) -> None:
    for k, image in enumerate(test_images):
        x = mnist_like(save(image, tmp_path / f"{k}.png"), dataset=dataset)
        assert x.dtype == np.float32 and x.shape == (784,)
        np.testing.assert_array_equal(x, image.reshape(-1).astype(np.float32) / 255.0)


def test_scaled_up_inverted_rgb_picture_is_recovered(test_images, tmp_path) -> None:
    correlations = []
    for k, image in enumerate(test_images):
        big = Image.fromarray(255 - image).resize((112, 112), Image.Resampling.NEAREST)
        path = tmp_path / f"{k}.png"
        big.convert("RGB").save(path)  # dark garment on white, in colour
        x = mnist_like(path, dataset="fashion-mnist")
        assert x.min() >= 0 and x.max() <= 1
        correlations.append(np.corrcoef(x, image.reshape(-1))[0, 1])
    # Most come back to within rounding; where the dataset placed a garment half a pixel
    # off its own centring, one pixel of shift remains (image 17: 0.79).
    assert np.median(correlations) > 0.99, correlations
    assert min(correlations) > 0.75, correlations


def ink_box(x: np.ndarray) -> tuple[int, int, float, float]:
    """(height, width, row, column of the centre of mass) of the ink of a (784,) input."""
    img = x.reshape(28, 28).astype(np.float64)
    rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
    com_r = img.sum(axis=1) @ np.arange(28) / img.sum()
    com_c = img.sum(axis=0) @ np.arange(28) / img.sum()
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1, com_r, com_c


def triangle_picture() -> np.ndarray:
    """Black right triangle, 120 tall and 60 wide, off-centre on white 300x200."""
    picture = np.full((300, 200), 255, dtype=np.uint8)
    r, c = np.mgrid[0:120, 0:60]
    picture[150:270, 20:80][c <= r / 2] = 0
    return picture


def test_mnist_layout_is_a_20_pixel_box_centred_by_mass(tmp_path) -> None:
    x = mnist_like(save(triangle_picture(), tmp_path / "t.png"), dataset="mnist")
    height, width, com_r, com_c = ink_box(x)
    assert (height, width) == (20, 10)
    assert abs(com_r - 14) <= 0.5 and abs(com_c - 14) <= 0.5, (com_r, com_c)
    # The triangle's mass is low and left in its box, so the box sits high and right
    # (a centred box would span rows 4..23 and columns 9..18).
    img = x.reshape(28, 28)
    rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (1, 20, 11, 20)


def test_fashion_layout_fills_28_pixels_and_centres_the_box(tmp_path) -> None:
    x = mnist_like(save(triangle_picture(), tmp_path / "t.png"), dataset="fashion-mnist")
    img = x.reshape(28, 28)
    assert ink_box(x)[:2] == (28, 14)
    cols = np.flatnonzero(img.any(axis=0))
    assert (cols[0], cols[-1]) == (7, 20)  # (28 - 14) / 2 on each side


def test_transparency_is_laid_over_white(tmp_path) -> None:
    picture = triangle_picture()
    rgba = np.zeros((*picture.shape, 4), dtype=np.uint8)  # transparent black...
    rgba[..., 3] = 255 - picture  # ...with the triangle opaque
    x_alpha = mnist_like(save(rgba, tmp_path / "a.png"))
    np.testing.assert_array_equal(x_alpha, mnist_like(save(picture, tmp_path / "w.png")))


def test_grey_paper_is_the_background(tmp_path) -> None:
    # Ink 40 on paper 200 is ink 95 on white shifted by the paper's grey: same input.
    picture = triangle_picture()
    grey = np.where(picture == 255, 200, 40).astype(np.uint8)
    white = np.where(picture == 255, 255, 95).astype(np.uint8)
    x_grey = mnist_like(save(grey, tmp_path / "g.png"))
    np.testing.assert_array_equal(x_grey, mnist_like(save(white, tmp_path / "w.png")))
    # The ink keeps its contrast (160 of 255), not stretched to 1 (Lanczos rings a little).
    assert np.median(x_grey[x_grey > 0.3]) == pytest.approx(160 / 255, abs=0.01)
    assert x_grey.max() < 0.7


def test_16_bit_grayscale_is_scaled_not_clipped(test_images, tmp_path) -> None:
    image = test_images[0]
    Image.fromarray(image.astype(np.uint16) * 257).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I;16")
    np.testing.assert_array_equal(mnist_like(tmp_path / "16.png"),
                                  image.reshape(-1).astype(np.float32) / 255.0)


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and isinstance(err.value, InputError)
    return text


def test_bad_pictures_are_one_line_image_errors(test_images, tmp_path) -> None:
    cases = {
        "blank.png": (np.full((64, 64), 250, dtype=np.uint8), "is blank"),
        "black.png": (np.zeros((28, 28), dtype=np.uint8), "is blank"),
        "tiny.png": (np.full((10, 30), 255, dtype=np.uint8), "is 30x10 pixels, smaller"),
    }
    for name, (array, expected) in cases.items():
        with pytest.raises(ImageError) as err:
            mnist_like(save(array, tmp_path / name))
        assert expected in one_line(err)
    (tmp_path / "notes.txt").write_text("not a picture\n")
    with pytest.raises(ImageError) as err:
        mnist_like(tmp_path / "notes.txt")
    assert "is not an image Pillow can read" in one_line(err)
    whole = save(test_images[0], tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageError) as err:
        mnist_like(tmp_path / "cut.png")
    assert "cannot be read as an image" in one_line(err)
    with pytest.raises(ImageError) as err:
        mnist_like(tmp_path / "missing.png")
    assert "no such file" in one_line(err)
    with pytest.raises(ImageError) as err:
        mnist_like(tmp_path)
    assert "is a folder" in one_line(err)


def test_arrays_and_datasets_are_checked() -> None:
    with pytest.raises(ImageError, match="2-D uint8"):
        mnist_like(np.zeros((28, 28), dtype=np.float32))
    with pytest.raises(InputError, match="dataset must be one of"):
        mnist_like(np.zeros((28, 28), dtype=np.uint8), dataset="cifar")
