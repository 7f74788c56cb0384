"""A picture file as the network's input: the way the MNIST images were made.

``mnist_like(image)`` returns a (784,) float32 vector in [0, 1] (28x28 row-major, light ink
on black, / 255 like ``load_mnist(normalize=True)``). The steps:

1. Read the file with Pillow (any format it reads; the first frame of an animation).
   A picture of more than ``MAX_PIXELS`` pixels is refused from its header, before any
   decoding. The EXIF orientation is applied first (a phone photo stored on its side is
   turned upright). Transparency is laid over white (dark ink on a transparent sheet is
   the usual drawing), then the picture is made 8-bit grayscale: 16-bit grayscale scaled
   down, and a float (mode F) or 32-bit integer (mode I) picture read by its value range:
   values within 0..1 are taken as 0..1 (times 255), within 0..255 as 8-bit levels,
   within 0..65535 as 16-bit levels; NaN, infinities, negative values or values above
   65535 are refused. (An 8-bit-range picture whose values all lie within 0..1 is
   black to the eye anyway, so reading it as 0..1 loses nothing.)
2. Refuse pictures smaller than 28x28 pixels.
3. Background: the median of the outermost ring of pixels. Above mid-gray (127.5), the
   picture is dark ink on light paper, so it is inverted: MNIST has light ink on black.
4. A 28x28 picture that needed no inversion is taken as it is: it already is an MNIST
   image (this keeps the dataset's own images exact).
5. Otherwise the background level is subtracted (grey paper becomes black), and the
   ink, pixels above ``INK`` (of 255), is cropped to its bounding box. No ink: an error.
6. The crop is resized (Lanczos) so its larger side is the dataset's box, keeping its
   aspect ratio, and placed on a black 28x28 canvas:
   - MNIST (LeCun): a 20-pixel box, shifted by whole pixels so that the centre of mass
     of the pixel values is at (14, 14) (row, column; kept inside the canvas);
   - Fashion-MNIST (Xiao et al. 2017): the longest edge resized to 28 and the box
     centred, an odd pixel going to the bottom and right (its test set: longer side
     27-28 pixels in 99% of the images, mean box centre (13.6, 13.7)).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .dataset import normalized
from .inputs import InputError

if TYPE_CHECKING:
    from PIL import Image

SIZE = 28  # the side of an MNIST image, pixels
# A pixel this much (of 255) above the background is ink. On Fashion-MNIST pictures
# scaled up 4x, 16 recovers the images best (8 and 32 cut or keep too much of the rim).
INK = 16
# Pictures above this many pixels are refused before decoding. A 50-megapixel RGBA
# picture takes 200 MB decoded and about 3x that while made gray; phone cameras save 12
# to 50 megapixels; the network sees 784. (Pillow's own guard, Image.MAX_IMAGE_PIXELS,
# 89 megapixels, only warns, and refuses at twice that: a 13000x13000 PNG of 690 KB
# would take 2.7 GB.)
MAX_PIXELS = 50_000_000


class ImageError(InputError):
    """A picture file that cannot be turned into an MNIST-style input."""


@dataclass(frozen=True)
class Layout:
    """How a dataset placed its objects in the 28x28 field."""

    box: int  # the larger side of the object's bounding box, pixels
    centre: str  # "mass": centre of mass at (14, 14); "box": bounding box centred


LAYOUTS = {"mnist": Layout(box=20, centre="mass"), "fashion-mnist": Layout(box=28, centre="box")}


def read_gray(path: str | os.PathLike[str]) -> np.ndarray:
    """The picture in ``path`` as (H, W) uint8 grayscale, transparency laid over white.

    EXIF orientation applied, float pictures read by their value range (step 1 of the
    module docstring). Raises ImageError (one line) for a missing file, a folder, a file
    Pillow cannot read, or a picture of more than ``MAX_PIXELS`` pixels (refused before
    it is decoded, so memory stays bounded).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path} is a folder; pass image files")
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    too_large = (f"; pass a picture of at most {MAX_PIXELS / 1e6:g} megapixels (scale it "
                 f"down: the network sees {SIZE}x{SIZE})")
    try:
        with warnings.catch_warnings():
            # Pillow's decompression-bomb warning: the budget below refuses first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)  # reads the header only
        with img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{path} is {w}x{h} pixels ({w * h / 1e6:.1f} megapixels)"
                                 f"{too_large}")
            ImageOps.exif_transpose(img, in_place=True)  # decodes; upright from here on
            return _gray(img, str(path))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image Pillow can read (PNG, JPEG, ...)") from None
    except Image.DecompressionBombError:  # over twice Pillow's limit: refused at open
        raise ImageError(f"{path} has more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} "
                         f"megapixels{too_large}") from None
    except Exception as err:  # only Pillow's decoders run in this block: bad bytes
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageError(f"{path} cannot be read as an image ({message})") from None


def _gray(img: Image.Image, name: str) -> np.ndarray:
    from PIL import Image

    if img.mode.startswith("I;16"):  # convert("L") would clip 16-bit values at 255
        return np.round(np.asarray(img, dtype=np.float64) / 257.0).astype(np.uint8)
    if img.mode in ("F", "I"):  # convert("L") would clip these too: read by range
        return _by_range(np.asarray(img, dtype=np.float64), name)
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def _by_range(values: np.ndarray, name: str) -> np.ndarray:
    """A float or 32-bit picture as uint8 levels, its scale told by its range (step 1)."""
    if not np.isfinite(values).all():
        raise ImageError(f"{name} holds NaN or infinite values; pass a picture of finite "
                         "levels")
    low, high = float(values.min()), float(values.max())
    scale = next((255.0 / top for top in (1.0, 255.0, 65535.0) if high <= top), None)
    if low < 0 or scale is None:
        raise ImageError(f"{name} holds values from {low:g} to {high:g}; pass levels within "
                         "0..1, 0..255 or 0..65535")
    return np.round(values * scale).astype(np.uint8)


def mnist_like(image: str | os.PathLike[str] | np.ndarray, *,
               dataset: str = "mnist") -> np.ndarray:
    """``image`` (a file, or an (H, W) uint8 array) as a (784,) float32 input in [0, 1].

    ``dataset`` ("mnist" or "fashion-mnist") picks the layout of step 6 of the module
    docstring. Raises ImageError for a picture too small or blank.
    """
    if dataset not in LAYOUTS:
        raise InputError(f"dataset must be one of {', '.join(LAYOUTS)}, got {dataset!r}")
    if isinstance(image, np.ndarray):
        name, gray = "the image", image
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ImageError(f"{name} has shape {gray.shape} and dtype {gray.dtype}; pass a "
                             "2-D uint8 grayscale array")
    else:
        name, gray = str(image), read_gray(image)
    return normalized(canvas(gray, LAYOUTS[dataset], name)).reshape(-1)


def canvas(gray: np.ndarray, layout: Layout, name: str = "the image") -> np.ndarray:
    """Steps 2-6 of the module docstring: (H, W) uint8 in, (28, 28) uint8 out."""
    h, w = gray.shape
    if h < SIZE or w < SIZE:
        raise ImageError(f"{name} is {w}x{h} pixels, smaller than {SIZE}x{SIZE}; pass a "
                         "larger picture of one digit or garment")
    ring = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(ring))
    inverted = background > 127.5
    if inverted:
        gray, background = 255 - gray, 255.0 - background
    ink_only = np.clip(gray.astype(np.int16) - int(background), 0, 255).astype(np.uint8)
    ink = ink_only > INK
    if not ink.any():
        raise ImageError(f"{name} is blank (no pixel differs from the background by more "
                         f"than {INK} of 255); pass a picture with a visible digit or garment")
    if gray.shape == (SIZE, SIZE) and not inverted:
        return gray.copy()
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = ink_only[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    patch = _resize(crop, layout.box)
    ph, pw = patch.shape
    if layout.centre == "mass" and patch.any():
        weights = patch.astype(np.float64)
        total = weights.sum()
        com_r = (weights.sum(axis=1) @ np.arange(ph)) / total
        com_c = (weights.sum(axis=0) @ np.arange(pw)) / total
        # Whole pixels, halves rounded up (Python's round() would go to even).
        top, left = int(np.floor(SIZE / 2 - com_r + 0.5)), int(np.floor(SIZE / 2 - com_c + 0.5))
    else:
        top, left = (SIZE - ph + 1) // 2, (SIZE - pw + 1) // 2
    top, left = min(max(top, 0), SIZE - ph), min(max(left, 0), SIZE - pw)
    out = np.zeros((SIZE, SIZE), dtype=np.uint8)
    out[top: top + ph, left: left + pw] = patch
    return out


def _resize(crop: np.ndarray, box: int) -> np.ndarray:
    """``crop`` resized (Lanczos) so that its larger side is ``box`` pixels."""
    from PIL import Image

    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow wants (w, h)
    return np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))


def save_input(x: np.ndarray, path: str | os.PathLike[str]) -> None:
    """The net's input ``x`` ((784,) floats in [0, 1], as ``mnist_like`` gives) as the
    28x28 grayscale PNG the net saw, written atomically: the answer to "why that class?"."""
    from PIL import Image

    from .dataset.atomic import atomic_write

    levels = np.round(np.clip(np.asarray(x, dtype=np.float64), 0, 1) * 255).astype(np.uint8)
    picture = Image.fromarray(levels.reshape(SIZE, SIZE))  # uint8 (H, W): mode L
    atomic_write(path, lambda f: picture.save(f, format="PNG"))
