"""xpnet.images: picture files made MNIST-like, checked against real Fashion-MNIST images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support import FASHION_DIR, require_fashion_mnist

from xpnet.images import ImageError, mnist_like, read_gray
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


# ------------------------------------------------ pictures as people take them

# EXIF orientation -> the turn a viewer applies; a picture stored with tag 6 holds the
# upright one turned a quarter anticlockwise, tag 8 a quarter clockwise.
STORED_TURN = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def save_with_orientation(upright: np.ndarray, path, orientation: int, **options):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(upright).transpose(STORED_TURN[orientation]).save(path, exif=exif,
                                                                       **options)
    return path


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_of_a_png_is_applied_first(tmp_path, orientation) -> None:
    upright = triangle_picture()
    path = save_with_orientation(upright, tmp_path / "photo.png", orientation)
    with Image.open(path) as img:  # stored on its side, as a phone does
        assert img.size == upright.shape and img.getexif()[0x0112] == orientation
    np.testing.assert_array_equal(read_gray(path), upright)
    for dataset in ("mnist", "fashion-mnist"):
        np.testing.assert_array_equal(mnist_like(path, dataset=dataset),
                                      mnist_like(upright, dataset=dataset))
    # The test can tell: read as stored, the input would be another picture.
    with Image.open(path) as img:
        sideways = np.asarray(img.convert("L"))
    assert np.abs(mnist_like(sideways) - mnist_like(upright)).max() > 0.5


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_of_a_jpeg_photo_is_applied(test_images, tmp_path,
                                                     orientation) -> None:
    # A garment photographed dark on white at 8x, stored sideways in a JPEG.
    garment = test_images[0]
    upright = np.asarray(Image.fromarray(255 - garment).resize((224, 224),
                                                               Image.Resampling.NEAREST))
    path = save_with_orientation(upright, tmp_path / "photo.jpg", orientation, quality=95)
    np.testing.assert_allclose(read_gray(path), upright, atol=40)  # JPEG's own noise
    x = mnist_like(path, dataset="fashion-mnist")
    expected = mnist_like(upright, dataset="fashion-mnist")
    assert np.abs(x - expected).mean() < 0.01
    assert np.corrcoef(x, garment.reshape(-1))[0, 1] > 0.99


@pytest.mark.parametrize(("scale", "mode"), [(1 / 255, "F"), (1.0, "F"), (257.0, "F"),
                                             (1.0, "I"), (257.0, "I")])
def test_float_and_32_bit_pictures_are_read_by_their_range(test_images, tmp_path, scale,
                                                           mode) -> None:
    image = test_images[3]
    levels = image.astype(np.float32 if mode == "F" else np.int32) * scale
    path = tmp_path / "float.tiff"
    Image.fromarray(levels.astype(np.float32 if mode == "F" else np.int32)).save(path)
    assert Image.open(path).mode == mode
    np.testing.assert_array_equal(read_gray(path), image)
    np.testing.assert_array_equal(mnist_like(path),
                                  image.reshape(-1).astype(np.float32) / 255.0)


def test_float_pictures_out_of_every_range_are_one_line_errors(tmp_path) -> None:
    cases = {"nan": (np.nan, "holds NaN or infinite values"),
             "negative": (-0.5, "holds values from -0.5 to 1; pass levels within 0..1"),
             "huge": (1e6, "holds values from 0 to 1e+06; pass levels within")}
    for name, (value, expected) in cases.items():
        levels = np.zeros((40, 40), dtype=np.float32)
        levels[10:30, 10:30] = 1.0
        levels[0, 0] = value
        path = tmp_path / f"{name}.tiff"
        Image.fromarray(levels).save(path)
        with pytest.raises(ImageError) as err:
            mnist_like(path)
        assert expected in one_line(err)


def huge_png(path, width: int, height: int):
    """A small PNG file whose header claims ``width`` x ``height`` RGBA pixels."""
    import struct
    import zlib

    Image.new("RGBA", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"IHDR")
    data[at + 4: at + 12] = struct.pack(">II", width, height)
    data[at + 17: at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at: at + 17])))
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def decodes(monkeypatch) -> list:
    """The pictures Pillow decodes (its loads), recorded."""
    from PIL import ImageFile

    loads = []
    real = ImageFile.ImageFile.load

    def load(self):
        loads.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return loads


def test_pictures_over_the_pixel_budget_are_refused_before_decoding(tmp_path,
                                                                     decodes) -> None:
    import warnings

    # The picture: 13000x13000 RGBA, 2.7 GB in predict; Pillow only warns.
    path = huge_png(tmp_path / "bomb.png", 13000, 13000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor Pillow's DecompressionBombWarning
        with pytest.raises(ImageError) as err:
            mnist_like(path)
    assert one_line(err) == (f"{path} is 13000x13000 pixels (169.0 megapixels); pass a "
                             "picture of at most 50 megapixels (scale it down: the network "
                             "sees 28x28)")
    assert decodes == []
    # Past twice Pillow's own limit, Pillow refuses at open: the same advice.
    with pytest.raises(ImageError) as err:
        mnist_like(huge_png(tmp_path / "bigger.png", 20000, 20000))
    assert one_line(err).endswith("megapixels; pass a picture of at most 50 megapixels "
                                  "(scale it down: the network sees 28x28)")
    assert decodes == []


def test_the_budget_is_the_pixel_count(tmp_path, decodes, monkeypatch) -> None:
    import xpnet.images

    path = save(triangle_picture(), tmp_path / "t.png")  # 200x300
    monkeypatch.setattr(xpnet.images, "MAX_PIXELS", 200 * 300)
    mnist_like(path)
    assert set(decodes) == {(200, 300)}  # the spy sees decoding when it happens
    decodes.clear()
    monkeypatch.setattr(xpnet.images, "MAX_PIXELS", 200 * 300 - 1)
    with pytest.raises(ImageError, match=r"is 200x300 pixels \(0\.1 megapixels\)"):
        mnist_like(path)
    assert decodes == []
