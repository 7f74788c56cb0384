"""The .npz cache (user cache folder only, keyed by the source files), where data is
looked for, and the not-found error."""

from __future__ import annotations

import io
import os
import subprocess
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import (
    FILES,
    KEYS,
    blobs_for,
    cache_files,
    flat,
    gz,
    idx_bytes,
    isolate,
    listing,
    load_raw,
    make_arrays,
    toy_spec,
    write_files,
)
from xpnet.dataset import (
    CacheWarning,
    CorruptFileError,
    DataElsewhereWarning,
    DataNotFoundError,
    DatasetError,
    cache,
    idx,
    source,
    specs,
)
from xpnet.dataset.fashion_mnist import load_fashion_mnist
from xpnet.dataset.mnist import load_mnist
from xpnet.dataset.source import load_spec

ARRAYS = make_arrays(seed=20)
BLOBS = blobs_for(ARRAYS)
SPEC = toy_spec(BLOBS)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def forbid_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any read of a source file fail (idx.read is the only one that opens them)."""
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the IDX files instead of using the cache")

    monkeypatch.setattr(idx, "read", fail)


def assert_same(raw: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> None:
    for key, value in flat(arrays).items():
        np.testing.assert_array_equal(raw[key], value)
        assert raw[key].dtype == np.uint8


def test_second_load_uses_the_cache_in_the_user_cache_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path / "data", BLOBS)
    ds = load_spec(SPEC, data_dir=tmp_path / "data", download=False)
    assert ds.verified == "official"
    assert listing(tmp_path / "data") == sorted(FILES)  # nothing written beside the files
    [npz] = cache_files(tmp_path)
    assert ds.cache == npz and npz.name.startswith("toy-")
    assert listing(npz.parent) == [npz.name]  # no temporary file left

    forbid_reading(monkeypatch)
    again = load_spec(SPEC, data_dir=tmp_path / "data", download=False)
    assert_same({k: getattr(again, k) for k in KEYS}, ARRAYS)
    assert again.verified == "official" and again.cache == npz
    with np.load(npz, allow_pickle=False) as f:
        assert sorted(f.files) == ["stamp", "t_test", "t_train", "verified", "x_test",
                                   "x_train"]
        assert str(f["verified"]) == "official"


def test_two_data_dirs_never_share_a_cache(tmp_path: Path) -> None:
    other = make_arrays(seed=22)
    write_files(tmp_path / "a", BLOBS)
    write_files(tmp_path / "b", blobs_for(other))
    with pytest.warns(UserWarning):  # b's files are not SPEC's: unverified
        b = load_spec(SPEC, data_dir=tmp_path / "b", download=False)
    a = load_spec(SPEC, data_dir=tmp_path / "a", download=False)
    assert a.cache != b.cache and cache_files(tmp_path) == sorted([a.cache, b.cache])
    np.testing.assert_array_equal(a.t_train, ARRAYS["t_train"])
    np.testing.assert_array_equal(b.t_train, other["t_train"])


def test_old_cache_beside_the_files_is_neither_used_nor_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_files(data, BLOBS)
    (data / "mnist.npz").write_bytes(b"written by an older xpnet")
    (data / "toy.npz").write_bytes(b"written by an older xpnet")
    assert_same(load_raw(SPEC, data_dir=data, download=False), ARRAYS)
    assert listing(data) == sorted([*FILES, "mnist.npz", "toy.npz"])
    assert (data / "toy.npz").read_bytes() == b"written by an older xpnet"


def test_changed_source_file_invalidates_the_cache(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path, BLOBS)
    load_raw(SPEC, data_dir=tmp_path, download=False)

    # Same size and the same mtime, new content: only ctime (and content) can tell.
    new_labels = (ARRAYS["t_train"] + 1) % 10
    path = tmp_path / FILES[1]
    st = path.stat()
    with open(path, "r+b") as f:  # in place: same inode
        f.write(gz(idx_bytes(new_labels)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = path.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns,
                                                          st.st_ino)

    with monkeypatch.context() as m:
        forbid_reading(m)
        with pytest.raises(AssertionError, match="read the IDX files"):
            load_raw(SPEC, data_dir=tmp_path, download=False)
    with pytest.warns(UserWarning, match="match no known checksum"):
        raw = load_raw(SPEC, data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(raw["t_train"], new_labels)
    forbid_reading(monkeypatch)
    with pytest.warns(UserWarning, match="match no known checksum"):  # stored in the cache
        raw = load_raw(SPEC, data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(raw["t_train"], new_labels)


def _forge_npz(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return np.lib.format.magic(1, 0) + buf.getvalue()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "plain-npy", "huge-shape",
                                    "float-images", "wrong-stamp", "bad-label", "empty-split",
                                    "extra-member"])
def test_unusable_cache_is_ignored_and_rebuilt(tmp_path: Path, damage: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path / "data", BLOBS)
    ds = load_spec(SPEC, data_dir=tmp_path / "data", download=False)
    npz, good = ds.cache, ds.cache.read_bytes()
    sources = [tmp_path / "data" / name for name in FILES]
    stamp = cache.stamp(sources, source.verify.checks_id([SPEC, *specs.SPECS.values()]))
    arrays = dict(flat(ARRAYS))
    if damage == "garbage":
        npz.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        npz.write_bytes(good[:1000])
    elif damage == "plain-npy":
        with open(npz, "wb") as f:
            np.save(f, arrays["x_train"])
    elif damage == "huge-shape":  # a header claiming 730 GiB over a few bytes of data
        members = {f"{k}.npy": _npy_header((10**9, 784) if k[0] == "x" else (10**9,))
                   + b"\0" * 64 for k in KEYS}
        members["stamp.npy"] = _npy_header((), f"<U{len(stamp)}") + stamp.encode("utf-32-le")
        members["verified.npy"] = _npy_header((), "<U8") + "official".encode("utf-32-le")
        _forge_npz(npz, members)
    elif damage == "float-images":
        arrays["x_train"] = arrays["x_train"].astype(np.float32)
        cache.save(npz, arrays, stamp, "official")
    elif damage == "wrong-stamp":
        arrays["t_train"] = np.zeros(20, np.uint8)
        cache.save(npz, arrays, stamp.replace(FILES[0], "elsewhere.gz"), "official")
    elif damage == "bad-label":
        arrays["t_train"] = np.full(20, 11, np.uint8)
        cache.save(npz, arrays, stamp, "official")
    elif damage == "empty-split":
        arrays["x_test"], arrays["t_test"] = np.zeros((0, 784), np.uint8), np.zeros(0, np.uint8)
        cache.save(npz, arrays, stamp, "official")
    else:
        with zipfile.ZipFile(npz, "a") as zf:
            zf.writestr("extra.npy", b"")

    def no_data_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("read array data of a cache whose headers are wrong")

    with monkeypatch.context() as m:
        if damage in ("huge-shape", "float-images", "empty-split", "extra-member"):
            m.setattr(np.lib.format, "read_array", no_data_read)
        again = load_spec(SPEC, data_dir=tmp_path / "data", download=False)
    assert_same({k: getattr(again, k) for k in KEYS}, ARRAYS)
    assert again.cache == npz and cache.load(npz, stamp) is not None  # rebuilt


def test_cache_that_cannot_be_written_warns_once_and_loads(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path / "data", BLOBS)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_spec(SPEC, data_dir=tmp_path / "data", download=False)
    assert [w.category for w in caught] == [CacheWarning]
    assert "cannot write the dataset cache" in str(caught[0].message)
    assert ds.cache is None
    assert_same({k: getattr(ds, k) for k in KEYS}, ARRAYS)
    assert listing(tmp_path / "data") == sorted(FILES)


def test_stale_temporary_of_a_dead_writer_is_removed_by_the_next_load(tmp_path: Path) -> None:
    write_files(tmp_path / "data", BLOBS)
    npz = cache.path_for(source.user_cache_dir("toy"), "toy",
                         [tmp_path / "data" / name for name in FILES])
    npz.parent.mkdir(parents=True)
    finished = subprocess.Popen(["true"])
    finished.wait()
    pid = finished.pid  # a process that has exited: its temporary is stale
    stale = npz.parent / f".{npz.name}.{pid}-0123abcd.part"
    stale.write_bytes(b"half a cache, its writer was SIGKILLed")
    load_raw(SPEC, data_dir=tmp_path / "data", download=False)
    assert listing(npz.parent) == [npz.name]


def test_system_dir_read_in_place_cache_in_user_dir(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "usr-share" / "toy"
    write_files(system, BLOBS)
    monkeypatch.setattr(source, "SYSTEM_DIRS", {"toy": (system,)})
    assert_same(load_raw(SPEC, download=False), ARRAYS)
    assert listing(system) == sorted(FILES)
    assert len(cache_files(tmp_path)) == 1
    forbid_reading(monkeypatch)
    assert_same(load_raw(SPEC, download=False), ARRAYS)


def test_read_only_data_folder_gets_nothing_written(tmp_path: Path) -> None:
    # Tests run as root, where 0555 does not stop writes: compare listings instead.
    data = tmp_path / "ro"
    write_files(data, BLOBS)
    data.chmod(0o555)
    try:
        before = listing(data)
        ds = load_spec(SPEC, data_dir=data, download=False)
        load_spec(SPEC, data_dir=data, download=False)
        assert listing(data) == before
        assert ds.directory == data and ds.cache is not None
        assert ds.cache.parent == tmp_path / "xdg-cache" / "xpnet" / "toy"
    finally:
        data.chmod(0o755)


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
    other_spec = toy_spec(blobs_for(other))
    arg, env, user = tmp_path / "arg", tmp_path / "env", tmp_path / "xdg-cache"
    write_files(env / "toy", blobs_for(other))
    write_files(user / "xpnet" / "toy", BLOBS)
    monkeypatch.setenv("XPNET_DATA_DIR", str(env))
    assert source.search_dirs(SPEC, arg) == [arg, env / "toy", user / "xpnet" / "toy"]

    # A data_dir given without the files, and no download: the next folder, said.
    with pytest.warns(DataElsewhereWarning, match=f"read the copy in {env / 'toy'} "):
        assert_same(load_raw(other_spec, data_dir=arg, download=False), other)  # no arg
    write_files(arg, BLOBS, names=FILES[:3])
    with pytest.warns(DataElsewhereWarning, match=f"read the copy in {env / 'toy'} "):
        assert_same(load_raw(other_spec, data_dir=arg, download=False), other)  # incomplete
    monkeypatch.delenv("XPNET_DATA_DIR")
    with pytest.warns(DataElsewhereWarning, match=f"read the copy in {user / 'xpnet'}"):
        assert_same(load_raw(SPEC, data_dir=arg, download=False), ARRAYS)  # user cache
    write_files(arg, BLOBS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(load_raw(SPEC, data_dir=arg, download=False), ARRAYS)  # arg: no word

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert source.user_cache_dir("toy") == tmp_path / "home" / ".cache" / "xpnet" / "toy"


def test_not_found_says_what_is_missing_and_the_ways_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty, nowhere = tmp_path / "empty", tmp_path / "nowhere"
    empty.mkdir()
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setattr(source, "SYSTEM_DIRS", {"fashion-mnist": (nowhere,)})
    for loader, name, title in ((load_mnist, "mnist", "MNIST"),
                                (load_fashion_mnist, "fashion-mnist", "Fashion-MNIST")):
        with pytest.raises(DataNotFoundError) as info:
            loader(data_dir=empty, download=False)
        err = info.value
        message = str(err)
        assert isinstance(err, DatasetError) and isinstance(err, FileNotFoundError)
        assert message.startswith(f"{title} is not on this machine and downloading is off. ")
        assert "\n" not in message and "--" not in message  # no CLI flags here
        for word in (*FILES, "data_dir", f"$XPNET_DATA_DIR/{name}", "allow downloading"):
            assert word in message, word
        assert ("apt-get install dataset-fashion-mnist" in message) == (name != "mnist")
        assert err.dataset == name
        assert err.searched == (empty, tmp_path / "env" / name,
                                tmp_path / "xdg-cache" / "xpnet" / name,
                                *((nowhere,) if name == "fashion-mnist" else ()))
    assert listing(empty) == []
    assert not (tmp_path / "xdg-cache").exists()


def test_not_found_mnist_points_to_local_fashion_mnist(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "usr-share" / "fashion-mnist"
    write_files(system, BLOBS)
    monkeypatch.setattr(source, "SYSTEM_DIRS", {"fashion-mnist": (system,)})
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(download=False)
    message = str(info.value)
    assert message.endswith("allow downloading. Fashion-MNIST is on this machine: "
                            "load_fashion_mnist() reads it.")
    assert "apt-get" not in message
    assert source.find_local("fashion-mnist", tmp_path / "nothing") == system
    assert source.find_local("fashion_mnist") == system
    assert source.find_local("mnist") is None

    (system / FILES[0]).unlink()  # the package folder is there but incomplete: no apt-get
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist(download=False)
    assert "apt-get" not in str(info.value) and "on this machine:" not in str(info.value)
    assert source.find_local("fashion-mnist") is None


def test_a_data_dir_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataNotFoundError, match="is a file, not a folder"):
        load_raw(SPEC, data_dir=not_a_dir, download=False)
