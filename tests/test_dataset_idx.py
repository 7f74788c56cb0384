"""IDX parsing, the book's conversions, and the errors for damaged files."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
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
    load_raw,
    make_arrays,
    toy_spec,
    write_files,
)
from xpnet.dataset import CorruptFileError, DatasetError, idx
from xpnet.dataset.fashion_mnist import load_fashion_mnist
from xpnet.dataset.mnist import load_mnist


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def book_load(arrays: dict[str, np.ndarray], normalize: bool, flatten: bool,
              one_hot_label: bool) -> tuple:
    """The book's dataset/mnist.py load_mnist, applied to already-read arrays."""
    dataset = {"train_img": arrays["x_train"].reshape(-1, 784), "train_label": arrays["t_train"],
               "test_img": arrays["x_test"].reshape(-1, 784), "test_label": arrays["t_test"]}

    def _change_one_hot_label(X):
        T = np.zeros((X.size, 10))
        for i, row in enumerate(T):
            row[X[i]] = 1
        return T

    if normalize:
        for key in ("train_img", "test_img"):
            dataset[key] = dataset[key].astype(np.float32)
            dataset[key] /= 255.0
    if one_hot_label:
        dataset["train_label"] = _change_one_hot_label(dataset["train_label"])
        dataset["test_label"] = _change_one_hot_label(dataset["test_label"])
    if not flatten:
        for key in ("train_img", "test_img"):
            dataset[key] = dataset[key].reshape(-1, 1, 28, 28)
    return ((dataset["train_img"], dataset["train_label"]),
            (dataset["test_img"], dataset["test_label"]))


UNVERIFIED_OK = pytest.mark.filterwarnings("ignore::xpnet.dataset.UnverifiedDataWarning")


@UNVERIFIED_OK
@pytest.mark.parametrize("one_hot_label", [False, True])
@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
def test_conversions_match_the_book(tmp_path: Path, normalize: bool, flatten: bool,
                                    one_hot_label: bool) -> None:
    arrays = make_arrays(seed=1)
    write_files(tmp_path / "data", blobs_for(arrays))
    got = load_mnist(normalize, flatten, one_hot_label, data_dir=tmp_path / "data",
                     download=False)
    want = book_load(arrays, normalize, flatten, one_hot_label)

    x_dtype = np.float32 if normalize else np.uint8
    t_dtype = np.float64 if one_hot_label else np.uint8
    for (x, t), (wx, wt), n in zip(got, want, (20, 10), strict=True):
        assert x.dtype == x_dtype and t.dtype == t_dtype
        assert x.shape == ((n, 784) if flatten else (n, 1, 28, 28))
        assert t.shape == ((n, 10) if one_hot_label else (n,))
        np.testing.assert_array_equal(x, wx)
        np.testing.assert_array_equal(t, wt)
        assert x.flags.writeable and t.flags.writeable

    (x, t), (xt, tt) = got
    raw = x if not normalize else np.rint(x * 255).astype(np.uint8)
    np.testing.assert_array_equal(raw.reshape(20, 28, 28), arrays["x_train"])
    labels = t.argmax(axis=1) if one_hot_label else t
    np.testing.assert_array_equal(labels, arrays["t_train"])
    if normalize:
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert x.max() == np.float32(255) / np.float32(255.0)


@UNVERIFIED_OK
def test_fashion_loader_same_contract(tmp_path: Path) -> None:
    arrays = make_arrays(seed=2)
    write_files(tmp_path, blobs_for(arrays))
    (x, t), (xt, tt) = load_fashion_mnist(normalize=False, data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(x, arrays["x_train"].reshape(20, 784))
    np.testing.assert_array_equal(tt, arrays["t_test"])


def test_uncompressed_idx_files_accepted(tmp_path: Path) -> None:
    arrays = make_arrays(seed=3)
    for name, key in zip(FILES, ("x_train", "t_train", "x_test", "t_test"), strict=True):
        (tmp_path / name.removesuffix(".gz")).write_bytes(idx_bytes(arrays[key]))
    raw = load_raw(toy_spec(blobs_for(arrays)), data_dir=tmp_path, download=False)
    for key, value in flat(arrays).items():
        np.testing.assert_array_equal(raw[key], value)


def test_parse_idx_header_and_values() -> None:
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8)
    out = idx.parse_idx(idx_bytes(labels), idx.LABELS_MAGIC)
    assert out.dtype == np.uint8 and out.shape == (8,)
    assert out.tolist() == [3, 1, 4, 1, 5, 9, 2, 6]


def _broken(name: str, arrays: dict[str, np.ndarray]) -> bytes:
    x, t = arrays["x_train"], arrays["t_train"]
    if name == "truncated-gzip":
        return gz(idx_bytes(x))[:-100]
    if name == "wrong-magic":
        return gz(idx_bytes(x, magic=2049 + 2 * 256))
    if name == "count-too-large":
        return gz(idx_bytes(x, count=21))
    if name == "extra-bytes":
        return gz(idx_bytes(x) + b"\0" * 784)
    if name == "no-images":
        return gz(idx_bytes(x[:0]))
    if name == "no-labels":
        return gz(idx_bytes(t[:0]))
    if name == "a-billion-images":
        return gz(idx_bytes(x, count=10**9))
    if name == "27-columns":
        return gz(idx_bytes(x.reshape(20, -1)[:, : 28 * 27].reshape(20, 28, 27)))
    if name == "label-11":
        bad = t.copy()
        bad[7] = 11
        return gz(idx_bytes(bad))
    if name == "labels-as-images":
        return gz(idx_bytes(t))
    raise AssertionError(name)


BROKEN = {  # case -> (file it replaces, words the message must contain)
    "truncated-gzip": (FILES[0], "not a valid gzip file"),
    "wrong-magic": (FILES[0], "magic number 2561, expected 2051"),
    "count-too-large": (FILES[0], "truncated: header announces 21 images (16464 bytes) "
                                  "but only 15680 bytes follow"),
    "extra-bytes": (FILES[0], "unexpected bytes after the 20 images the header announces"),
    "no-images": (FILES[0], "holds no images (the header announces 0)"),
    "no-labels": (FILES[3], "holds no labels (the header announces 0)"),
    "a-billion-images": (FILES[0], "header announces 1000000000 images, more than the 100000"),
    "27-columns": (FILES[0], "images are 28x27, expected 28x28"),
    "label-11": (FILES[1], "label 11 at index 7 is outside 0..9"),
    "labels-as-images": (FILES[0], "magic number 2049, expected 2051"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_is_a_clear_error_and_never_cached(tmp_path: Path, case: str) -> None:
    arrays = make_arrays(seed=4)
    blobs = blobs_for(arrays)
    data = tmp_path / "data"
    write_files(data, blobs)
    name, words = BROKEN[case]
    (data / name).write_bytes(_broken(case, arrays))

    with pytest.raises(CorruptFileError) as info:
        load_mnist(data_dir=data, download=False)
    message = str(info.value)
    assert isinstance(info.value, DatasetError) and isinstance(info.value, ValueError)
    assert message.startswith(f"{data / name}: ")
    assert words in message
    assert message.endswith("delete it and run again to re-download it")
    assert "\n" not in message
    assert info.value.path == data / name
    # Not poisoned: no cache anywhere, and a good file afterwards just works.
    assert not list(tmp_path.rglob("*.npz"))
    assert listing(data) == sorted(FILES)
    write_files(data, blobs)
    with pytest.warns(UserWarning, match="unverified"):  # not the real MNIST: a warning
        (x, t), _ = load_mnist(normalize=False, data_dir=data, download=False)
    np.testing.assert_array_equal(t, arrays["t_train"])
    assert listing(data) == sorted(FILES)


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    arrays = make_arrays(seed=5)
    blobs = blobs_for(arrays)
    blobs[FILES[3]] = gz(idx_bytes(arrays["t_test"][:9]))
    write_files(tmp_path, blobs)
    with pytest.raises(CorruptFileError, match="holds 10 images but .* holds 9 labels; "
                                               "delete them and run again"):
        load_mnist(data_dir=tmp_path, download=False)
    assert not list(tmp_path.rglob("*.npz"))


def test_truncated_gzip_message_names_the_gzip_problem(tmp_path: Path) -> None:
    path = tmp_path / FILES[1]
    path.write_bytes(gzip.compress(idx_bytes(make_arrays()["t_train"]))[:30])
    with pytest.raises(CorruptFileError, match=r"not a valid gzip file \(Compressed file ended"):
        idx.read(path, idx.LABELS_MAGIC)


def test_empty_split_is_a_corrupt_file_not_a_crash(tmp_path: Path) -> None:
    arrays = make_arrays(seed=6)
    blobs = blobs_for(arrays)
    blobs[FILES[2]] = gz(idx_bytes(arrays["x_test"][:0]))
    blobs[FILES[3]] = gz(idx_bytes(arrays["t_test"][:0]))
    write_files(tmp_path, blobs)
    with pytest.raises(CorruptFileError, match="holds no images"):
        load_raw(toy_spec(blobs), data_dir=tmp_path, download=False)


def test_gzip_bomb_is_refused_without_decompressing_it(tmp_path: Path) -> None:
    # A valid header for 20 images, then 200 MB of zeros that compress to ~200 kB.
    header = idx_bytes(make_arrays()["x_train"])[:16]
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    zeros = bytes(1 << 20)
    bomb = packer.compress(header) + b"".join(packer.compress(zeros) for _ in range(200))
    bomb += packer.flush()
    assert len(bomb) < 300_000
    path = tmp_path / FILES[0]
    path.write_bytes(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match="unexpected bytes after the 20 images"):
            idx.read(path, idx.IMAGES_MAGIC)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # a few buffers, not 200 MB


def test_digests_of_gzipped_and_plain_files(tmp_path: Path) -> None:
    import hashlib

    labels = make_arrays(seed=7)["t_test"]
    plain = idx_bytes(labels)
    (tmp_path / "a.gz").write_bytes(gz(plain))
    (tmp_path / "a").write_bytes(plain)
    packed = idx.read(tmp_path / "a.gz", idx.LABELS_MAGIC)
    assert packed.md5 == hashlib.md5(gz(plain)).hexdigest()
    assert packed.content_md5 == hashlib.md5(plain).hexdigest()
    unpacked = idx.read(tmp_path / "a", idx.LABELS_MAGIC)
    assert unpacked.md5 == unpacked.content_md5 == hashlib.md5(plain).hexdigest()
    np.testing.assert_array_equal(packed.array, labels)
