"""Knowing what the files are: official, recompressed, another dataset's, or someone's own."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import (
    FILES,
    KEYS,
    blobs_for,
    cache_files,
    flat,
    idx_bytes,
    isolate,
    listing,
    make_arrays,
    toy_spec,
    write_files,
)
from xpnet.dataset import (
    Dataset,
    DatasetError,
    UnverifiedDataWarning,
    WrongDatasetError,
    find_local,
    idx,
    load_dataset,
    specs,
)
from xpnet.dataset.fashion_mnist import load_fashion_mnist
from xpnet.dataset.mnist import load_mnist

ARRAYS = make_arrays(seed=30)
BLOBS = blobs_for(ARRAYS)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def pretend(monkeypatch: pytest.MonkeyPatch, name: str, blobs: dict[str, bytes] = BLOBS,
            *, content_only: bool = False) -> None:
    """Make the registry's ``name`` recognise ``blobs`` (by .gz sums, or content sums only)."""
    toy = toy_spec(blobs)
    resources = specs.SPECS[name].resources if content_only else toy.resources
    monkeypatch.setitem(specs.SPECS, name, dataclasses.replace(
        specs.SPECS[name], resources=resources, content_md5=toy.content_md5))


def recompressed(blobs: dict[str, bytes]) -> dict[str, bytes]:
    """The same IDX content, gzipped at another level (as a distributor might)."""
    out = {name: gzip.compress(gzip.decompress(b), compresslevel=1, mtime=1)
           for name, b in blobs.items()}
    assert all(out[n] != blobs[n] for n in blobs)
    return out


def test_official_files_load_as_official_with_no_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pretend(monkeypatch, "mnist")
    write_files(tmp_path / "data", BLOBS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset("mnist", data_dir=tmp_path / "data", download=False)
    assert isinstance(ds, Dataset)
    assert (ds.name, ds.title, ds.verified) == ("mnist", "MNIST", "official")
    assert ds.class_names == tuple("0123456789")
    assert ds.directory == tmp_path / "data"
    assert ds.files == tuple(tmp_path / "data" / name for name in FILES)
    for key, value in flat(ARRAYS).items():
        np.testing.assert_array_equal(getattr(ds, key), value)
        assert getattr(ds, key).dtype == np.uint8
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.verified = "official"  # type: ignore[misc]


def test_recompressed_files_are_recognised_by_content(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pretend(monkeypatch, "fashion-mnist", content_only=True)
    write_files(tmp_path / "data", recompressed(BLOBS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset("fashion-mnist", data_dir=tmp_path / "data", download=False)
        assert ds.verified == "content"
        np.testing.assert_array_equal(ds.x_test, flat(ARRAYS)["x_test"])

        def fail(*args: object, **kwargs: object) -> None:
            raise AssertionError("read the files on a cached load")

        monkeypatch.setattr(idx, "read", fail)
        again = load_dataset("fashion_mnist", data_dir=tmp_path / "data", download=False)
    assert again.verified == "content" and again.cache == ds.cache
    assert again.class_names[0] == "T-shirt/top" and again.class_names[9] == "Ankle boot"
    assert len(again.class_names) == 10


def test_uncompressed_copies_are_recognised_by_content(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pretend(monkeypatch, "fashion-mnist", content_only=True)
    for name, key in zip(FILES, KEYS, strict=True):
        write_files(tmp_path, {name.removesuffix(".gz"): idx_bytes(ARRAYS[key])},
                    names=(name.removesuffix(".gz"),))
    assert load_dataset("fashion-mnist", data_dir=tmp_path, download=False).verified == "content"


@pytest.mark.parametrize("asked, actually, loader, message", [
    ("fashion-mnist", "mnist", load_fashion_mnist,
     "are MNIST, not Fashion-MNIST: load them with load_mnist()"),
    ("mnist", "fashion-mnist", load_mnist,
     "are Fashion-MNIST, not MNIST: load them with load_fashion_mnist()"),
])
@pytest.mark.parametrize("copy", ["official", "recompressed"])
def test_the_other_datasets_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              asked: str, actually: str, loader, message: str,
                                              copy: str) -> None:
    pretend(monkeypatch, actually)
    data = tmp_path / "data"
    write_files(data, BLOBS if copy == "official" else recompressed(BLOBS))
    with pytest.raises(WrongDatasetError) as info:
        loader(data_dir=data, download=False)
    err = info.value
    assert str(err) == f"the files in {data} {message}"
    assert (err.expected, err.found, err.directory) == (asked, actually, data)
    assert isinstance(err, DatasetError)
    assert not list(tmp_path.rglob("*.npz"))  # refused data is never cached
    assert listing(data) == sorted(FILES)


def test_one_file_of_the_other_dataset_is_enough_to_refuse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pretend(monkeypatch, "mnist")
    own = blobs_for(make_arrays(seed=31))
    own[FILES[1]] = BLOBS[FILES[1]]  # MNIST's training labels among unknown files
    write_files(tmp_path, own)
    with pytest.raises(WrongDatasetError):
        load_fashion_mnist(data_dir=tmp_path, download=False)


def test_own_idx_files_load_with_one_warning(tmp_path: Path) -> None:
    write_files(tmp_path / "mine", BLOBS)
    for _ in range(2):  # cold, then cached: the warning comes from the stored result
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = load_dataset("mnist", data_dir=tmp_path / "mine", download=False)
        assert [w.category for w in caught] == [UnverifiedDataWarning]
        assert issubclass(UnverifiedDataWarning, UserWarning)
        assert str(caught[0].message) == (f"the MNIST files in {tmp_path / 'mine'} match no "
                                          f"known checksum; loading them unverified")
        assert ds.verified == "unverified"
        np.testing.assert_array_equal(ds.t_test, ARRAYS["t_test"])
    assert len(cache_files(tmp_path, "mnist")) == 1


def test_cached_verdict_follows_the_known_sums(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path, BLOBS)
    with pytest.warns(UnverifiedDataWarning):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    pretend(monkeypatch, "mnist")  # now they are recognisably MNIST: the cache must not say
    with pytest.raises(WrongDatasetError):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)


def test_unknown_dataset_name_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'; choose one of mnist, "
                                           "fashion-mnist"):
        load_dataset("cifar")
    with pytest.raises(DatasetError, match="unknown dataset"):
        find_local("cifar")


def test_find_local_reads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path / "data", BLOBS, names=FILES[:3])
    assert find_local("mnist", tmp_path / "data") is None
    write_files(tmp_path / "data", BLOBS)
    monkeypatch.setattr(hashlib, "md5", None)  # no hashing
    monkeypatch.setattr(idx, "read", None)  # no parsing
    assert find_local("mnist", tmp_path / "data") == tmp_path / "data"
    assert find_local("MNIST", str(tmp_path / "data")) == tmp_path / "data"
    assert listing(tmp_path) == ["data"]
