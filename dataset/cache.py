"""The parsed-array cache: one uncompressed .npz per dataset, tied to its source files.

The cache holds the raw uint8 arrays (x_train, t_train, x_test, t_test) and a fingerprint
of the source files: resolved path, size and mtime_ns of each. That is a stat() per file,
far cheaper than hashing 30 MB, and it changes whenever a file is replaced or rewritten.
A missing, unreadable, malformed or stale cache is simply rebuilt from the sources.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

FORMAT = "xpnet-dataset-cache/1"
KEYS = ("x_train", "t_train", "x_test", "t_test")


def fingerprint(paths: Sequence[Path]) -> str:
    """A JSON string identifying the source files' current versions."""
    files = []
    for path in paths:
        st = path.stat()
        files.append([str(path.resolve()), st.st_size, st.st_mtime_ns])
    return json.dumps([FORMAT, files])


def load(path: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    """The cached uint8 arrays by KEYS, or None if the cache is missing, unreadable or stale."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["fingerprint"]) != fingerprint:
                return None
            arrays = {key: npz[key] for key in KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return arrays if _well_formed(arrays) else None


def save(path: Path, arrays: Mapping[str, np.ndarray], fingerprint: str) -> bool:
    """Write the cache atomically; return False, leaving nothing behind, if that fails."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".part-", suffix=".npz",
                                         delete=False) as tmp:
            np.savez(tmp, fingerprint=np.array(fingerprint), **{k: arrays[k] for k in KEYS})
        os.chmod(tmp.name, 0o644)  # NamedTemporaryFile creates 0600; this is an ordinary file
        os.replace(tmp.name, path)
        return True
    except OSError:
        return False  # only a speed-up: loading goes on without it
    finally:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


def _well_formed(a: Mapping[str, np.ndarray]) -> bool:
    # Cheap checks, so a cache edited or damaged by hand cannot feed bad arrays downstream.
    for x, t in ((a["x_train"], a["t_train"]), (a["x_test"], a["t_test"])):
        if x.dtype != np.uint8 or t.dtype != np.uint8 or x.ndim != 2 or t.ndim != 1:
            return False
        if x.shape != (len(t), 784) or (t.size and t.max() > 9):
            return False
    return True
