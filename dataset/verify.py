"""Recognise a dataset's files by their MD5s: official, recompressed, another dataset's, or none.

A distributor may recompress the .gz files (Debian did for Fashion-MNIST): the file MD5
then differs while the decompressed content is the official one, so each file is
recognised by either sum. Files of another known dataset are refused; files matching no
known sum (someone's own IDX files) load as "unverified".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from .errors import WrongDatasetError
from .idx import IdxFile
from .specs import DatasetSpec

OFFICIAL = "official"  # every file is byte for byte the official .gz
CONTENT = "content"  # every file holds the official content, some recompressed
UNVERIFIED = "unverified"  # valid IDX files that match no known sum


def verify(spec: DatasetSpec, files: Sequence[IdxFile], known: Sequence[DatasetSpec],
           directory: Path) -> str:
    """OFFICIAL, CONTENT or UNVERIFIED for ``files`` (in ``spec.resources`` order).

    Raises WrongDatasetError if any file is one of another ``known`` dataset's.
    """
    if all(f.md5 == md5 for f, (_, md5) in zip(files, spec.resources, strict=True)):
        return OFFICIAL
    if all(_is(spec, i, f) for i, f in enumerate(files)):
        return CONTENT
    for other in known:
        if other.name != spec.name and any(_is(other, i, f) for i, f in enumerate(files)):
            raise WrongDatasetError(
                f"the files in {directory} are {other.title}, not {spec.title}: load them "
                f"with {other.how_to_load()}",
                expected=spec.name, found=other.name, directory=directory)
    return UNVERIFIED


def checks_id(known: Sequence[DatasetSpec]) -> str:
    """A short digest of every sum ``verify`` compares with, for the cache's stamp."""
    sums = [[s.name, list(s.resources), list(s.content_md5)] for s in known]
    return hashlib.sha256(json.dumps(sums).encode()).hexdigest()[:16]


def _is(spec: DatasetSpec, i: int, f: IdxFile) -> bool:
    """Whether ``f`` is the ``i``-th file of ``spec``, as shipped or recompressed."""
    return f.md5 == spec.resources[i][1] or (
        bool(spec.content_md5) and f.content_md5 == spec.content_md5[i])
