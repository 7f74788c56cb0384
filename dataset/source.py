"""Find, download, validate, cache and convert an MNIST-format dataset.

Directories searched, in order; the first holding all four files wins:

1. the ``data_dir`` argument (the files directly in it);
2. ``$XPNET_DATA_DIR/<name>``;
3. the user cache, ``$XDG_CACHE_HOME/xpnet/<name>`` (default ``~/.cache/xpnet/<name>``);
4. read-only system directories (``SYSTEM_DIRS``), read in place.

Each file may be gzipped (official name) or plain IDX (name without ``.gz``). When none has
them all, missing files are downloaded into the first of 1-3, MD5-checked against the
official sums. The parsed arrays are cached as ``<name>.npz`` next to the files, or in the
user cache when the files sit in a system or read-only directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cache, idx
from .download import download as fetch
from .errors import CorruptFileError, DataNotFoundError, DownloadError

DATA_DIR_ENV = "XPNET_DATA_DIR"

# Directories filled by distribution packages: read in place, never written, and validated
# structurally only (Debian recompressed the .gz files, so official MD5s do not apply).
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),  # apt: dataset-fashion-mnist
}

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and how to check it."""

    name: str  # names directories and the cache file, e.g. "mnist"
    title: str  # for messages, e.g. "MNIST"
    # (file name, MD5 of the official file) for train images, train labels,
    # test images, test labels, in that order.
    resources: tuple[tuple[str, str], ...]
    mirrors: tuple[str, ...]  # base URLs, tried in order
    mirrors_env: str  # environment variable overriding ``mirrors`` (comma-separated)


def load(spec: DatasetSpec, normalize: bool = True, flatten: bool = True,
         one_hot_label: bool = False, *, data_dir: str | Path | None = None,
         download: bool = True, mirrors: Sequence[str] | str | None = None,
         ) -> tuple[Split, Split]:
    """``(x_train, t_train), (x_test, t_test)`` converted as the book's ``load_mnist``."""
    raw = load_raw(spec, data_dir=data_dir, download=download, mirrors=mirrors)
    return (_convert(raw["x_train"], raw["t_train"], normalize, flatten, one_hot_label),
            _convert(raw["x_test"], raw["t_test"], normalize, flatten, one_hot_label))


def load_raw(spec: DatasetSpec, *, data_dir: str | Path | None = None, download: bool = True,
             mirrors: Sequence[str] | str | None = None) -> dict[str, np.ndarray]:
    """Validated uint8 arrays: x_train/x_test of shape (N, 784), t_train/t_test of shape (N,)."""
    dirs = search_dirs(spec, data_dir)
    names = [name for name, _ in spec.resources]
    for directory in dirs:
        found = [_find(directory, name) for name in names]
        if all(found):
            paths = [p for p in found if p is not None]
            break
    else:
        if not download:
            raise DataNotFoundError(_not_found(spec, dirs))
        directory = dirs[0]
        try:
            paths = _download_missing(spec, directory, _mirrors(spec, mirrors))
        except DownloadError as exc:
            # Offline is the usual cause: say where we looked and every way out.
            raise DownloadError(f"{exc}; {_not_found(spec, dirs, offline=True)}") from exc

    system = directory in SYSTEM_DIRS.get(spec.name, ())
    own = not system and os.access(directory, os.W_OK)
    cache_path = (directory if own else user_cache_dir(spec.name)) / f"{spec.name}.npz"
    stamp = cache.fingerprint(paths)
    arrays = cache.load(cache_path, stamp)
    if arrays is None:
        remedy = ("reinstall the system package that provides it (dpkg -S names it)" if system
                  else idx.REDOWNLOAD)
        arrays = _parse(paths, remedy)
        cache.save(cache_path, arrays, stamp)
    return arrays


def search_dirs(spec: DatasetSpec, data_dir: str | Path | None = None) -> list[Path]:
    """The directories searched for ``spec``'s files, in order (see the module docstring)."""
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    if dirs and dirs[0].exists() and not dirs[0].is_dir():
        # An explicit choice that cannot hold the files must not fall through to others.
        raise DataNotFoundError(f"data_dir {dirs[0]} is a file, not a directory; pass the "
                                f"directory that holds (or should receive) the IDX files")
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(Path(os.environ[DATA_DIR_ENV]).expanduser() / spec.name)
    dirs.append(user_cache_dir(spec.name))
    dirs.extend(SYSTEM_DIRS.get(spec.name, ()))
    return list(dict.fromkeys(dirs))


def user_cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/xpnet/<name>``, or ``~/.cache/xpnet/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative path.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "xpnet" / name


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (name, name.removesuffix(".gz")):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def _mirrors(spec: DatasetSpec, mirrors: Sequence[str] | str | None) -> list[str]:
    if mirrors is None:
        mirrors = os.environ.get(spec.mirrors_env, "") or spec.mirrors
    if isinstance(mirrors, str):
        mirrors = mirrors.split(",")
    return [m.strip() for m in mirrors if m.strip()]


def _download_missing(spec: DatasetSpec, directory: Path, mirrors: list[str]) -> list[Path]:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {directory} ({exc.strerror}); pass a writable "
                            f"--data-dir or set {DATA_DIR_ENV}") from exc
    if not os.access(directory, os.W_OK):
        raise DownloadError(f"cannot download into {directory}: not writable; pass a writable "
                            f"--data-dir or set {DATA_DIR_ENV}")
    return [_find(directory, name) or fetch(name, md5, mirrors, directory)
            for name, md5 in spec.resources]


def _parse(paths: Sequence[Path], remedy: str) -> dict[str, np.ndarray]:
    arrays = {}
    for split, images, labels in (("train", paths[0], paths[1]), ("test", paths[2], paths[3])):
        x = idx.read_images(images, remedy)
        t = idx.read_labels(labels, remedy)
        if len(x) != len(t):
            raise CorruptFileError(f"{images} holds {len(x)} images but {labels} holds {len(t)} "
                                   f"labels; {remedy.replace(' it', ' them')}", path=images)
        arrays[f"x_{split}"], arrays[f"t_{split}"] = x, t
    return arrays


def _convert(x: np.ndarray, t: np.ndarray, normalize: bool, flatten: bool,
             one_hot_label: bool) -> Split:
    # Same steps, dtypes and order as the book's load_mnist.
    if normalize:
        x = x.astype(np.float32)
        x /= 255.0
    if one_hot_label:
        one_hot = np.zeros((t.size, 10))
        one_hot[np.arange(t.size), t] = 1
        t = one_hot
    if not flatten:
        x = x.reshape(-1, 1, 28, 28)
    return x, t


def _not_found(spec: DatasetSpec, dirs: Sequence[Path], offline: bool = False) -> str:
    names = ", ".join(name for name, _ in spec.resources)
    where = ", ".join(str(d) for d in dirs)
    state = "no copy found" if offline else "not found and downloading is off"
    return (f"{spec.title} {state}: looked for {names} "
            f"(or the same without .gz) in {where}; put the files in a directory and pass "
            f"--data-dir DIR, or set {DATA_DIR_ENV} (files in ${DATA_DIR_ENV}/{spec.name}), "
            f"{'or' if offline else 'or allow downloading, or'} apt-get install "
            f"dataset-fashion-mnist and use --dataset fashion-mnist")
