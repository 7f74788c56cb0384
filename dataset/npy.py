"""The headers of the ``.npy`` members of an ``.npz``, read before any data.

A file is judged by its headers first (names, dtypes, shapes), so a damaged or hostile
one can neither crash a load nor make it allocate gigabytes. The dataset cache and
xpnet's parameter files both check their members through here.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable

import numpy as np

Header = tuple[tuple[int, ...], bool, np.dtype]  # shape, Fortran order, dtype


def headers(zf: zipfile.ZipFile, names: Iterable[str]) -> dict[str, Header]:
    """{name: (shape, fortran_order, dtype)} of the members ``name + ".npy"``.

    Raises KeyError for a missing member, ValueError for one that is not an ``.npy``
    of format version 1.0 or 2.0.
    """
    found = {}
    for name in names:
        with zf.open(f"{name}.npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"{name}.npy has .npy format version {version}")
        found[name] = (tuple(shape), bool(fortran), np.dtype(dtype))
    return found


def whole_headers(zf: zipfile.ZipFile, names: Iterable[str]) -> dict[str, Header]:
    """``headers`` of members whose data is whole, checked before any is read.

    Every member's CRC is checked, and each header's claimed size against what its member
    holds (object arrays refused), so a byte-flipped, cut or over-claiming file raises
    ValueError naming what is wrong, never an allocation of what a header claims.
    """
    bad = zf.testzip()
    if bad is not None:
        raise ValueError(f"member {bad} fails its CRC check")
    found = headers(zf, names)
    for name, (shape, _, dtype) in found.items():
        size = zf.getinfo(f"{name}.npy").file_size
        if dtype.hasobject or math.prod(shape) * dtype.itemsize > size:
            raise ValueError(f"{name} claims {shape} {dtype}, more than its {size} bytes hold")
    return found
