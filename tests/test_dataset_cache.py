"""The .npz cache, where data is looked for, and the not-found error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import (
    FILES,
    blobs_for,
    flat,
    gz,
    idx_bytes,
    isolate,
    listing,
    make_arrays,
    toy_spec,
    write_files,
)
from xpnet.dataset import CorruptFileError, DataNotFoundError, DatasetError, cache, idx, source
from xpnet.dataset.fashion_mnist import load_fashion_mnist
from xpnet.dataset.mnist import load_mnist
from xpnet.dataset.source import load_raw

ARRAYS = make_arrays(seed=20)
BLOBS = blobs_for(ARRAYS)
SPEC = toy_spec(BLOBS)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def forbid_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed the IDX files instead of using the cache")

    monkeypatch.setattr(idx, "read_images", fail)
    monkeypatch.setattr(idx, "read_labels", fail)


def assert_same(raw: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> None:
    for key, value in flat(arrays).items():
        np.testing.assert_array_equal(raw[key], value)
        assert raw[key].dtype == np.uint8


def test_second_load_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path, BLOBS)
    assert_same(load_raw(SPEC, data_dir=tmp_path, download=False), ARRAYS)
    assert (tmp_path / "toy.npz").is_file()
    assert listing(tmp_path) == sorted([*FILES, "toy.npz"])  # no temporary file left

    forbid_parsing(monkeypatch)
    assert_same(load_raw(SPEC, data_dir=tmp_path, download=False), ARRAYS)
    with np.load(tmp_path / "toy.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["fingerprint", "t_test", "t_train", "x_test", "x_train"]


def test_changed_source_file_invalidates_the_cache(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path, BLOBS)
    load_raw(SPEC, data_dir=tmp_path, download=False)

    # Same size, new content and a new mtime: only the fingerprint can tell.
    new_labels = (ARRAYS["t_train"] + 1) % 10
    path = tmp_path / FILES[1]
    st = path.stat()
    path.write_bytes(gz(idx_bytes(new_labels)))
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    with monkeypatch.context() as m:
        forbid_parsing(m)
        with pytest.raises(AssertionError, match="parsed the IDX files"):
            load_raw(SPEC, data_dir=tmp_path, download=False)
    raw = load_raw(SPEC, data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(raw["t_train"], new_labels)
    forbid_parsing(monkeypatch)
    np.testing.assert_array_equal(load_raw(SPEC, data_dir=tmp_path, download=False)["t_train"],
                                  new_labels)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-fingerprint", "bad-label"])
def test_unusable_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    write_files(tmp_path, BLOBS)
    load_raw(SPEC, data_dir=tmp_path, download=False)
    npz = tmp_path / "toy.npz"
    if damage == "garbage":
        npz.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        npz.write_bytes(npz.read_bytes()[:1000])
    else:
        arrays = dict(flat(ARRAYS))
        stamp = cache.fingerprint([tmp_path / name for name in FILES])
        if damage == "wrong-fingerprint":
            arrays["t_train"] = np.zeros(20, np.uint8)
            stamp = stamp.replace(FILES[0], "elsewhere.gz")
        else:
            arrays["t_train"] = np.full(20, 11, np.uint8)
        assert cache.save(npz, arrays, stamp)
    assert_same(load_raw(SPEC, data_dir=tmp_path, download=False), ARRAYS)
    assert cache.load(npz, cache.fingerprint([tmp_path / name for name in FILES])) is not None


def test_cache_skipped_when_it_cannot_be_written(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path, BLOBS)
    monkeypatch.setattr(cache.np, "savez", _raise_oserror)
    assert_same(load_raw(SPEC, data_dir=tmp_path, download=False), ARRAYS)
    assert listing(tmp_path) == sorted(FILES)


def _raise_oserror(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device")


def test_system_dir_read_in_place_cache_in_user_dir(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "usr-share" / "toy"
    write_files(system, BLOBS)
    monkeypatch.setattr(source, "SYSTEM_DIRS", {"toy": (system,)})
    assert_same(load_raw(SPEC, download=False), ARRAYS)
    assert listing(system) == sorted(FILES)
    assert listing(tmp_path / "xdg-cache" / "xpnet" / "toy") == ["toy.npz"]
    forbid_parsing(monkeypatch)
    assert_same(load_raw(SPEC, download=False), ARRAYS)


def test_corrupt_system_file_says_reinstall(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "usr-share" / "toy"
    write_files(system, BLOBS)
    (system / FILES[2]).write_bytes(BLOBS[FILES[2]][:-50])
    monkeypatch.setattr(source, "SYSTEM_DIRS", {"toy": (system,)})
    with pytest.raises(CorruptFileError, match=r"not a valid gzip file .*; reinstall the system "
                                               r"package that provides it \(dpkg -S names it\)$"):
        load_raw(SPEC, download=False)
    assert not list(tmp_path.rglob("*.npz"))


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = make_arrays(seed=21)
    arg, env, user = tmp_path / "arg", tmp_path / "env", tmp_path / "xdg-cache"
    write_files(env / "toy", blobs_for(other))
    write_files(user / "xpnet" / "toy", BLOBS)
    monkeypatch.setenv("XPNET_DATA_DIR", str(env))
    assert source.search_dirs(SPEC, arg) == [arg, env / "toy", user / "xpnet" / "toy"]

    assert_same(load_raw(SPEC, data_dir=arg, download=False), other)  # arg incomplete: env
    write_files(arg, BLOBS, names=FILES[:3])
    assert_same(load_raw(SPEC, data_dir=arg, download=False), other)  # still incomplete
    monkeypatch.delenv("XPNET_DATA_DIR")
    assert_same(load_raw(SPEC, data_dir=arg, download=False), ARRAYS)  # user cache

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert source.user_cache_dir("toy") == tmp_path / "home" / ".cache" / "xpnet" / "toy"


def test_not_found_is_one_line_naming_files_dirs_and_ways_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty, nowhere = tmp_path / "empty", tmp_path / "nowhere"
    empty.mkdir()
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setattr(source, "SYSTEM_DIRS", {"fashion-mnist": (nowhere,)})
    for loader, name in ((load_mnist, "mnist"), (load_fashion_mnist, "fashion-mnist")):
        with pytest.raises(DataNotFoundError) as info:
            loader(data_dir=empty, download=False)
        message = str(info.value)
        assert isinstance(info.value, DatasetError) and isinstance(info.value, FileNotFoundError)
        assert "\n" not in message
        for word in (*FILES, str(empty), str(tmp_path / "env" / name),
                     str(tmp_path / "xdg-cache" / "xpnet" / name), "--data-dir",
                     "XPNET_DATA_DIR", "apt-get install dataset-fashion-mnist",
                     "--dataset fashion-mnist"):
            assert word in message, word
        assert (str(nowhere) in message) == (name == "fashion-mnist")
    assert listing(empty) == []
    assert not (tmp_path / "xdg-cache").exists()


def test_a_data_dir_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataNotFoundError, match="is a file, not a directory"):
        load_raw(SPEC, data_dir=not_a_dir, download=False)
