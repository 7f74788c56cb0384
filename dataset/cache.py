"""The parsed-array cache: one uncompressed .npz per dataset and source folder.

Caches live in the user cache folder only, named after the resolved source paths, so two
folders never share one. Each holds the raw uint8 arrays (x_train, t_train, x_test,
t_test), the verification result, and a stamp of the source files' identity from stat()
alone (resolved path, size, mtime_ns, ctime_ns, inode): a cached load reads no source
content. ctime catches a rewrite that kept size and mtime; the inode, a replaced file.

A cache that is not exactly what ``save`` wrote is ignored (and then rebuilt): member
names, dtypes and shapes are checked from the .npy headers before any data is read, so a
damaged or hostile file can neither crash a load nor make it allocate gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from . import npy
from .atomic import atomic_file
from .idx import MAX_ITEMS, NUM_CLASSES, PIXELS

FORMAT = "xpnet-dataset-cache/2"
KEYS = ("x_train", "t_train", "x_test", "t_test")
TEXT_KEYS = ("stamp", "verified")
MAX_TEXT = 1 << 16  # characters in a text member; a stamp is a few hundred


def path_for(root: Path, name: str, sources: Sequence[Path]) -> Path:
    """The cache file of dataset ``name`` read from ``sources``, inside ``root``."""
    where = json.dumps([str(p.resolve()) for p in sources])
    return root / f"{name}-{hashlib.sha256(where.encode()).hexdigest()[:16]}.npz"


def stamp(sources: Sequence[Path], checks: str) -> str:
    """The identity of the source files' current versions, and of the sums checked."""
    files = []
    for path in sources:
        st = path.stat()
        files.append([str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                      st.st_ino])
    return json.dumps([FORMAT, checks, files])


def load(path: Path, stamp: str) -> tuple[dict[str, np.ndarray], str] | None:
    """``(arrays by KEYS, verified)``, or None if the cache is missing, stale or malformed."""
    try:
        with zipfile.ZipFile(path) as zf:
            if not _headers_ok(zf):
                return None
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["stamp"]) != stamp:
                return None
            verified = str(npz["verified"])
            arrays = {key: npz[key] for key in KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    labels_ok = all(int(arrays[t].max()) < NUM_CLASSES for t in ("t_train", "t_test"))
    return (arrays, verified) if labels_ok else None


def save(path: Path, arrays: Mapping[str, np.ndarray], stamp: str, verified: str) -> None:
    """Write the cache atomically, creating its folder; raises OSError if that fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        np.savez(f, stamp=np.array(stamp), verified=np.array(verified),
                 **{key: arrays[key] for key in KEYS})


def _headers_ok(zf: zipfile.ZipFile) -> bool:
    """Whether the members are exactly those ``save`` writes, by .npy header alone."""
    if sorted(zf.namelist()) != sorted(f"{key}.npy" for key in (*KEYS, *TEXT_KEYS)):
        return False
    try:
        found = npy.headers(zf, (*KEYS, *TEXT_KEYS))
    except ValueError:
        return False
    for key in TEXT_KEYS:
        shape, _, dtype = found[key]
        if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_TEXT:
            return False
    for x, t in (("x_train", "t_train"), ("x_test", "t_test")):
        (x_shape, x_fortran, x_dtype), (t_shape, _, t_dtype) = found[x], found[t]
        if x_dtype != np.uint8 or t_dtype != np.uint8 or x_fortran or len(t_shape) != 1:
            return False
        if not 0 < t_shape[0] <= MAX_ITEMS or x_shape != (t_shape[0], PIXELS):
            return False
    return True
