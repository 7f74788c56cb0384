"""Read and validate IDX files (the MNIST file format), gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the items as raw bytes.

Reading is bounded: the header says how many bytes must follow, so a file is never
decompressed beyond that (a small .gz that expands to gigabytes is refused after one
byte too many), and no header may announce more than ``MAX_ITEMS`` items.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np

from .errors import CorruptFileError

IMAGES_MAGIC = 2051  # uint8, 3 dimensions: (N, rows, cols)
LABELS_MAGIC = 2049  # uint8, 1 dimension: (N,)
IMAGE_SHAPE = (28, 28)
PIXELS = 28 * 28
NUM_CLASSES = 10
MAX_ITEMS = 100_000  # MNIST-format files hold 60000 or 10000; refuse absurd headers
REDOWNLOAD = "delete it and run again to re-download it"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class IdxFile:
    """A parsed IDX file and the MD5s that identify it."""

    array: np.ndarray  # uint8, shaped as the header says (images: (N, 784))
    md5: str  # of the file as stored (the .gz bytes for a gzipped file)
    header: bytes  # the IDX header, for content_md5

    @functools.cached_property
    def content_md5(self) -> str:
        """MD5 of the decompressed IDX bytes (== md5 for a plain file).

        Computed on first use only: official files are recognised by ``md5`` alone.
        """
        digest = hashlib.md5(self.header, usedforsecurity=False)
        digest.update(self.array)  # the items, in file order (C-contiguous)
        return digest.hexdigest()


def read(path: str | Path, magic: int, remedy: str = REDOWNLOAD) -> IdxFile:
    """Read, validate and fingerprint one IDX file (gzipped or plain, under any name).

    Images come back as (N, 784), labels as (N,) with values in 0..9.
    """
    path = Path(path)
    largest = _header_size(magic) + MAX_ITEMS * _item_size(magic)
    size = path.stat().st_size
    if size > largest + largest // 100 + 1024:  # gzip never grows data by 1%
        _fail(path, f"{size} bytes, more than any MNIST-format file", remedy)
    raw = path.read_bytes()
    gzipped = raw[:2] == _GZIP_MAGIC
    stream: BinaryIO = gzip.GzipFile(fileobj=io.BytesIO(raw)) if gzipped else io.BytesIO(raw)
    try:
        data = _read_bounded(stream, magic, path, remedy)
    except (OSError, EOFError, zlib.error) as exc:
        _fail(path, f"not a valid gzip file ({exc})", remedy)
    array = parse_idx(data, magic, path, remedy)
    if magic == IMAGES_MAGIC:
        array = array.reshape(len(array), PIXELS)
    else:
        bad = np.flatnonzero(array >= NUM_CLASSES)
        if bad.size:
            i = int(bad[0])
            _fail(path, f"label {array[i]} at index {i} is outside 0..9", remedy)
    return IdxFile(array, _md5(raw), data[:_header_size(magic)])


def parse_idx(data: bytes, magic: int, path: str | Path = "<bytes>",
              remedy: str = REDOWNLOAD) -> np.ndarray:
    """The items of IDX ``data`` as a writable uint8 array shaped as its header says."""
    dims, offset = _parse_header(data, magic, path, remedy)
    kind = _kind(magic)
    size = math.prod(dims)
    body = len(data) - offset
    if body < size:
        _fail(path, f"truncated: header announces {dims[0]} {kind}s ({size} bytes) "
                    f"but only {body} bytes follow", remedy)
    if body > size:
        _fail(path, f"unexpected bytes after the {dims[0]} {kind}s the header announces",
              remedy)
    # Copy: frombuffer over bytes is read-only, and callers (like the book's) may write.
    return np.frombuffer(data, np.uint8, size, offset).reshape(dims).copy()


def _read_bounded(stream: BinaryIO, magic: int, path: Path, remedy: str) -> bytes:
    """The header, then at most one byte more than the items it announces."""
    header = stream.read(_header_size(magic))
    dims, offset = _parse_header(header, magic, path, remedy)
    return header + stream.read(math.prod(dims) + 1)


def _parse_header(data: bytes, magic: int, path: str | Path,
                  remedy: str) -> tuple[tuple[int, ...], int]:
    kind = _kind(magic)
    if len(data) < 4:
        _fail(path, f"only {len(data)} bytes, too short for an IDX header", remedy)
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        _fail(path, f"magic number {found}, expected {magic} for an IDX {kind} file", remedy)
    offset = _header_size(magic)
    if len(data) < offset:
        _fail(path, f"header cut off after {len(data)} bytes", remedy)
    dims = tuple(int.from_bytes(data[i:i + 4], "big") for i in range(4, offset, 4))
    if dims[0] == 0:
        _fail(path, f"holds no {kind}s (the header announces 0)", remedy)
    if dims[0] > MAX_ITEMS:
        _fail(path, f"header announces {dims[0]} {kind}s, more than the {MAX_ITEMS} an "
                    f"MNIST-format file may hold", remedy)
    if magic == IMAGES_MAGIC and dims[1:] != IMAGE_SHAPE:
        _fail(path, f"images are {dims[1]}x{dims[2]}, expected 28x28", remedy)
    return dims, offset


def _header_size(magic: int) -> int:
    return 4 + 4 * (magic & 0xFF)


def _item_size(magic: int) -> int:
    return PIXELS if magic == IMAGES_MAGIC else 1


def _kind(magic: int) -> str:
    return "image" if magic == IMAGES_MAGIC else "label"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()  # integrity, not security


def _fail(path: str | Path, problem: str, remedy: str) -> NoReturn:
    raise CorruptFileError(f"{path}: {problem}; {remedy}", path=path)
