"""Parameter files of the chapter nets: ``.npz`` in, ``.npz`` out, never a pickle.

The book saves ``params.pkl`` with ``pickle``; loading a pickle can run any code it
names, so xpnet neither writes nor loads one. A ``.pkl`` name given to ``save``/``load``
stands for the ``.npz`` of the same stem (a script's ``save_params("params.pkl")``
writes ``params.npz`` and leaves the book's file alone), and the book's own pickles are
turned into ``.npz`` once by ``convert_pickle``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xpnet.backend import asnumpy
from xpnet.dataset.atomic import atomic_write
from xpnet.inputs import InputError


class ParamsFileError(InputError):
    """A parameter file is missing, a pickle, damaged, or does not fit the net."""


def npz_path(file_name: str | os.PathLike[str]) -> Path:
    """The ``.npz`` file that stands for ``file_name`` (``x.pkl`` -> ``x.npz``)."""
    path = Path(file_name)
    return path.with_suffix(".npz") if path.suffix == ".pkl" else path


def save(file_name: str | os.PathLike[str], params: Mapping[str, Any]) -> Path:
    """Write host copies of ``params`` to ``npz_path(file_name)`` atomically; returns it."""
    path = npz_path(file_name)
    arrays = {key: asnumpy(value) for key, value in params.items()}
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


def load(file_name: str | os.PathLike[str], expected: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of ``npz_path(file_name)``, checked against ``expected``'s keys and shapes.

    Raises ParamsFileError (one line: what is wrong and what to do) for a missing file, a
    pickle, a file that is not an ``.npz``, or arrays that do not fit.
    """
    given, path = Path(file_name), npz_path(file_name)
    if not path.is_file():
        if given != path and given.is_file():
            raise ParamsFileError(
                f"{given} is a pickle, which xpnet does not load: convert it once with "
                f"python -c \"from xpnet.common import convert_pickle; "
                f"convert_pickle('{given}')\" (writes {path})")
        raise ParamsFileError(f"{path}: no such file; save it first with save_params")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ParamsFileError(f"{path}: not a readable .npz file ({message})") from None
    missing = [k for k in expected if k not in arrays]
    extra = [k for k in arrays if k not in expected]
    if missing or extra:
        raise ParamsFileError(f"{path}: parameters do not fit this net (missing: "
                              f"{', '.join(missing) or 'none'}; unknown: "
                              f"{', '.join(extra) or 'none'})")
    for key, value in arrays.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ParamsFileError(f"{path}: {key} has shape {tuple(value.shape)}, the net "
                                  f"needs {tuple(expected[key].shape)}")
        if value.dtype.kind != "f":
            raise ParamsFileError(f"{path}: {key} has dtype {value.dtype}, not a float type")
    return arrays


# What NumPy's ndarray.__reduce__ names: an array and its dtype are rebuilt from these
# (the module of _reconstruct is numpy.core before NumPy 2, numpy._core since).
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise ParamsFileError(f"{self.source}: refused to load {module}.{name}: the "
                                  "converter admits only a dict of NumPy arrays")
        return found


def read_pickled_arrays(file_name: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The dict of NumPy arrays in the book's ``.pkl``, constructing nothing else.

    Raises ParamsFileError if the pickle names anything but NumPy's array machinery, or
    does not hold a dict of str -> numeric array.
    """
    source = Path(file_name)
    try:
        with open(source, "rb") as f:
            unpickler = _ArraysOnly(f)
            unpickler.source = source
            data = unpickler.load()
    except ParamsFileError:
        raise
    except FileNotFoundError:
        raise ParamsFileError(f"{source}: no such file") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise ParamsFileError(f"{source}: not a readable pickle of arrays "
                              f"({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) and v.dtype.kind in "biuf"
            for k, v in data.items()):
        raise ParamsFileError(f"{source}: not a dict of numeric NumPy arrays; the converter "
                              "admits nothing else")
    return data


def convert_pickle(file_name: str | os.PathLike[str],
                   out: str | os.PathLike[str] | None = None) -> Path:
    """Turn the book's pickled parameters (``params.pkl``) into ``.npz``, once; returns its path.

    Only a dict of NumPy arrays is admitted: the unpickler refuses to construct anything
    else, so a hostile file cannot run code. ``out`` defaults to the same name with
    ``.npz``; it is written atomically, so a failed conversion leaves nothing behind.
    """
    source = Path(file_name)
    target = Path(out) if out is not None else source.with_suffix(".npz")
    if target.resolve() == source.resolve():
        raise ParamsFileError(f"{source}: the .npz would overwrite the pickle; pass another out")
    arrays = read_pickled_arrays(source)
    atomic_write(target, lambda f: np.savez(f, **arrays))
    return target
