"""Find, download, verify, cache and return an MNIST-format dataset.

Folders searched, in order; the first holding all four files wins:

1. the ``data_dir`` argument (the files directly in it);
2. ``$XPNET_DATA_DIR/<name>``;
3. the user cache, ``$XDG_CACHE_HOME/xpnet/<name>`` (default ``~/.cache/xpnet/<name>``);
4. read-only system folders (``SYSTEM_DIRS``), read in place.

Each file may be gzipped (official name) or plain IDX (name without ``.gz``). When no
folder has them all, the missing files are downloaded into the first of 1-3, MD5-checked.

A ``data_dir`` given is where the files are or go: when it lacks them they are
downloaded into it (a folder that does not exist is created for that, and removed again
if nothing came), even if a copy lies in 2-4. Only when that download cannot happen
(downloading is off, no mirror answers, the folder cannot be made or written) is a copy
in 2-4 read, with a DataElsewhereWarning naming the files read; with none there, the
error says first that ``data_dir`` does not exist, when it does not. (So ``load_mnist``
never returns another dataset: Fashion-MNIST's folders are not MNIST's.)

Files are recognised by their MD5s (see ``verify``): another dataset's files are refused,
unknown ones load with an UnverifiedDataWarning. The parsed arrays are cached in the user
cache folder only (see ``cache``); nothing is ever written into a folder the files were
found in.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cache, idx, specs, verify
from .download import download as fetch
from .errors import (
    Absent,
    CacheWarning,
    CorruptFileError,
    DataElsewhereWarning,
    DataNotFoundError,
    DatasetError,
    DownloadError,
    Missing,
    UnverifiedDataWarning,
    Unwritable,
)
from .specs import DatasetSpec

DATA_DIR_ENV = "XPNET_DATA_DIR"

# Folders filled by distribution packages: read in place, never written.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
SYSTEM_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}  # Debian/Ubuntu, apt-get

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: raw validated arrays and where they came from.

    Images are uint8 of shape (N, 784), labels uint8 of shape (N,) in 0..9.
    """

    name: str  # "mnist" or "fashion-mnist"
    title: str  # "MNIST" or "Fashion-MNIST"
    class_names: tuple[str, ...]  # the 10 class names, by label
    x_train: np.ndarray = field(repr=False)
    t_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    t_test: np.ndarray = field(repr=False)
    directory: Path  # the folder the files were read from
    files: tuple[Path, ...]  # train images, train labels, test images, test labels
    verified: str  # "official", "content" (recompressed official data) or "unverified"
    cache: Path | None  # the cache file used or written; None if it could not be written


def load_dataset(name: str, *, data_dir: str | Path | None = None, download: bool = True,
                 mirrors: Sequence[str] | str | None = None) -> Dataset:
    """Load ``name`` ("mnist" or "fashion-mnist"), downloading it if it is not here.

    ``data_dir``: a folder holding (or to receive) the four files; ``download=False`` never
    touches the network; ``mirrors``: base URLs tried in order (default: the dataset's
    environment variable, comma-separated, else the built-in list). Raises a DatasetError
    subclass: DataNotFoundError, DownloadError, CorruptFileError, WrongDatasetError.
    """
    return load_spec(_spec(name), data_dir=data_dir, download=download, mirrors=mirrors)


def find_local(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The first searched folder holding all four files of ``name``; no download, no reading."""
    found = _locate(_spec(name), search_dirs(_spec(name), data_dir))
    return found[0] if found else None


def fetch_files(name: str, data_dir: str | Path | None = None, *,
                mirrors: Sequence[str] | str | None = None) -> Path:
    """The folder holding all four files of ``name``, found or downloaded as ``load_dataset``
    does; nothing is parsed. Raises DataNotFoundError or DownloadError as it does."""
    return _files(_spec(name), data_dir, True, mirrors)[0]


def load_spec(spec: DatasetSpec, *, data_dir: str | Path | None = None,
              download: bool = True, mirrors: Sequence[str] | str | None = None) -> Dataset:
    """``load_dataset`` for any spec (tests use toy ones)."""
    directory, paths = _files(spec, data_dir, download, mirrors)
    known = [spec, *specs.SPECS.values()]
    cache_path: Path | None = cache.path_for(user_cache_dir(spec.name), spec.name, paths)
    stamp = cache.stamp(paths, verify.checks_id(known))
    hit = cache.load(cache_path, stamp)
    if hit is not None:
        arrays, verified = hit
    else:
        system = directory in SYSTEM_DIRS.get(spec.name, ())
        remedy = ("reinstall the system package that provides it (dpkg -S names it)" if system
                  else idx.REDOWNLOAD)
        files = _parse(paths, remedy)
        verified = verify.verify(spec, files, known, directory)
        arrays = dict(zip(cache.KEYS, (f.array for f in files), strict=True))
        try:
            cache.save(cache_path, arrays, stamp, verified)
        except OSError as exc:
            warnings.warn(f"cannot write the dataset cache {cache_path} "
                          f"({exc.strerror or exc}); loading without it",
                          CacheWarning, stacklevel=3)
            cache_path = None
    if verified == verify.UNVERIFIED:
        warnings.warn(f"the {spec.title} files in {directory} match no known checksum; "
                      f"loading them unverified", UnverifiedDataWarning, stacklevel=3)
    return Dataset(name=spec.name, title=spec.title, class_names=spec.class_names,
                   **arrays, directory=directory, files=tuple(paths), verified=verified,
                   cache=cache_path)


def search_dirs(spec: DatasetSpec, data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for ``spec``'s files, in order (see the module docstring)."""
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
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


def normalized(x: np.ndarray) -> np.ndarray:
    """uint8 images as float32 in [0, 1]: the book's ``load_mnist(normalize=True)``."""
    x = x.astype(np.float32)
    x /= 255.0
    return x


def convert(x: np.ndarray, t: np.ndarray, normalize: bool, flatten: bool,
            one_hot_label: bool) -> Split:
    """The book's conversions of one split: float32 / 255, one-hot float64, (N, 1, 28, 28)."""
    # Same steps, dtypes and order as the book's load_mnist.
    if normalize:
        x = normalized(x)
    if one_hot_label:
        one_hot = np.zeros((t.size, 10))
        one_hot[np.arange(t.size), t] = 1
        t = one_hot
    if not flatten:
        x = x.reshape(-1, 1, 28, 28)
    return x, t


def _spec(name: str) -> DatasetSpec:
    key = str(name).strip().lower().replace("_", "-")
    if key not in specs.SPECS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of "
                           f"{', '.join(specs.SPECS)}")
    return specs.SPECS[key]


def _files(spec: DatasetSpec, data_dir: str | Path | None, download: bool,
           mirrors: Sequence[str] | str | None) -> tuple[Path, list[Path]]:
    """(folder, the four files) found or downloaded, by the rules of the module docstring."""
    dirs = search_dirs(spec, data_dir)
    if data_dir is None:
        found = _locate(spec, dirs)
        if found:
            return found
        if not download:
            raise DataNotFoundError(absent=_absent(spec, None, "downloading is off"),
                                    dataset=spec.name, searched=dirs)
        return dirs[0], _download_missing(spec, dirs[0], _mirrors(spec, mirrors), None, dirs)

    given = dirs[0]
    if given.exists() and not given.is_dir():
        # An explicit choice that cannot hold the files must not fall through to others.
        raise DataNotFoundError(f"data_dir {given} is a file, not a folder; pass the folder "
                                f"that holds (or should receive) the four IDX files",
                                dataset=spec.name, searched=dirs)
    found = _locate(spec, dirs[:1])
    if found:
        return found
    existed = given.is_dir()
    try:
        if not download:
            raise DataNotFoundError(absent=_absent(spec, data_dir, "downloading is off"),
                                    dataset=spec.name, searched=dirs)
        return given, _download_missing(spec, given, _mirrors(spec, mirrors), data_dir, dirs)
    except (DataNotFoundError, DownloadError) as err:
        elsewhere = _locate(spec, dirs[1:])
        if elsewhere is None and existed:
            raise
        if isinstance(err, DataNotFoundError):
            why = "downloading is off"
        elif err.unwritable is not None:
            why = "it is not writable" if existed else "it cannot be created"
        elif existed:
            why = "they could not be downloaded (no network?)"
        else:
            why = f"{spec.title} could not be downloaded into it (no network?)"
        if elsewhere is None:
            # Most likely a mistyped path: say so before anything about networks.
            missing = Missing(given, spec.title, spec.files, why)
            if isinstance(err, DownloadError):
                raise DownloadError(missing=missing, dataset=spec.name, searched=dirs,
                                    details=err.details) from err
            raise DataNotFoundError(missing=missing, dataset=spec.name, searched=dirs) from err
        directory, paths = elsewhere
        state = f"does not hold the {spec.title} files" if existed else "does not exist"
        warnings.warn(f"{given} {state} and {why}: read the copy in {directory} "
                      f"({', '.join(p.name for p in paths)})", DataElsewhereWarning,
                      stacklevel=4)
        return elsewhere


def _locate(spec: DatasetSpec, dirs: Sequence[Path]) -> tuple[Path, list[Path]] | None:
    for directory in dirs:
        found = [_find(directory, name) for name in spec.files]
        if all(found):
            return directory, [p for p in found if p is not None]
    return None


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


def _download_missing(spec: DatasetSpec, directory: Path, mirrors: list[str],
                      data_dir: str | Path | None, dirs: list[Path]) -> list[Path]:
    # Folders made for this download go again if it fails before storing anything in them.
    created = [d for d in (directory, *directory.parents) if not d.exists()]
    def unwritable(problem: str) -> Unwritable:
        return Unwritable(directory, spec.title, problem, DATA_DIR_ENV)

    try:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(unwritable=unwritable(
                f"cannot create {directory} to download {spec.title} into ({exc.strerror})"),
                dataset=spec.name, searched=dirs) from exc
        if not os.access(directory, os.W_OK):
            raise DownloadError(unwritable=unwritable(
                f"cannot download {spec.title} into {directory}: not writable"),
                dataset=spec.name, searched=dirs)
        try:
            return [_find(directory, name) or fetch(name, md5, mirrors, directory)
                    for name, md5 in spec.resources]
        except DownloadError as exc:
            raise DownloadError(
                absent=_absent(spec, data_dir, "could not be downloaded (no network?)"),
                dataset=spec.name, searched=dirs, details=exc.details) from exc
    except BaseException:
        for d in created:  # deepest first; rmdir refuses a folder that holds anything
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _parse(paths: Sequence[Path], remedy: str) -> list[idx.IdxFile]:
    files = []
    for images, labels in ((paths[0], paths[1]), (paths[2], paths[3])):
        x = idx.read(images, idx.IMAGES_MAGIC, remedy)
        t = idx.read(labels, idx.LABELS_MAGIC, remedy)
        if len(x.array) != len(t.array):
            raise CorruptFileError(f"{images} holds {len(x.array)} images but {labels} holds "
                                   f"{len(t.array)} labels; {remedy.replace(' it', ' them')}",
                                   path=images)
        files += [x, t]
    return files


def _absent(spec: DatasetSpec, data_dir: str | Path | None, why: str) -> Absent:
    """What is missing, and only the ways out that apply here."""
    package = SYSTEM_PACKAGES.get(spec.name)
    if any(d.is_dir() for d in SYSTEM_DIRS.get(spec.name, ())):
        package = None  # installed already: not a way out
    others = tuple((other.name, other.title, other.how_to_load())
                   for other in specs.SPECS.values()
                   if other.name != spec.name and find_local(other.name, data_dir) is not None)
    return Absent(title=spec.title, name=spec.name, files=spec.files, why=why,
                  data_dir_env=DATA_DIR_ENV,
                  mirrors_env=spec.mirrors_env if why.startswith("could") else None,
                  package=package, others=others)
