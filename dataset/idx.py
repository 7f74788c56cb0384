"""Read and validate IDX files (the MNIST file format), gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the items as raw bytes.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import NoReturn

import numpy as np

from .errors import CorruptFileError

IMAGES_MAGIC = 2051  # uint8, 3 dimensions: (N, rows, cols)
LABELS_MAGIC = 2049  # uint8, 1 dimension: (N,)
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
REDOWNLOAD = "delete it and run again to re-download it"


def read_images(path: str | Path, remedy: str = REDOWNLOAD) -> np.ndarray:
    """Images of an IDX3 file as a writable uint8 array of shape (N, 784)."""
    images = _read(Path(path), IMAGES_MAGIC, remedy)
    if images.shape[1:] != IMAGE_SHAPE:
        rows, cols = images.shape[1:]
        _fail(path, f"images are {rows}x{cols}, expected 28x28", remedy)
    return images.reshape(len(images), -1)


def read_labels(path: str | Path, remedy: str = REDOWNLOAD) -> np.ndarray:
    """Labels of an IDX1 file as a writable uint8 array of shape (N,), values in 0..9."""
    labels = _read(Path(path), LABELS_MAGIC, remedy)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        i = int(bad[0])
        _fail(path, f"label {labels[i]} at index {i} is outside 0..9", remedy)
    return labels


def _read(path: Path, magic: int, remedy: str) -> np.ndarray:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic: accept .gz and plain IDX under any name
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            _fail(path, f"not a valid gzip file ({exc})", remedy)
    return parse_idx(data, magic, path, remedy)


def parse_idx(data: bytes, magic: int, path: str | Path = "<bytes>",
              remedy: str = REDOWNLOAD) -> np.ndarray:
    """The items of IDX ``data`` as a writable uint8 array shaped as its header says."""
    kind = "image" if magic == IMAGES_MAGIC else "label"
    if len(data) < 4:
        _fail(path, f"only {len(data)} bytes, too short for an IDX header", remedy)
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        _fail(path, f"magic number {found}, expected {magic} for an IDX {kind} file", remedy)
    ndim = data[3]
    offset = 4 + 4 * ndim
    if len(data) < offset:
        _fail(path, f"header cut off after {len(data)} bytes", remedy)
    dims = tuple(int.from_bytes(data[i:i + 4], "big") for i in range(4, offset, 4))
    size = math.prod(dims)
    body = len(data) - offset
    if body < size:
        _fail(path, f"truncated: header announces {dims[0]} {kind}s ({size} bytes) "
                    f"but only {body} bytes follow", remedy)
    if body > size:
        _fail(path, f"{body - size} unexpected bytes after the {dims[0]} {kind}s "
                    f"the header announces", remedy)
    # Copy: frombuffer over bytes is read-only, and callers (like the book's) may write.
    return np.frombuffer(data, np.uint8, size, offset).reshape(dims).copy()


def _fail(path: str | Path, problem: str, remedy: str) -> NoReturn:
    raise CorruptFileError(f"{path}: {problem}; {remedy}", path=path)
