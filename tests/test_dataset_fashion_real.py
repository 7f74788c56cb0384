"""The real Fashion-MNIST, read from Debian's dataset-fashion-mnist package."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import isolate, listing
from support import FASHION_DIR, FASHION_FILES, require_fashion_mnist
from xpnet.dataset import WrongDatasetError, idx, load_dataset, source
from xpnet.dataset.fashion_mnist import load_fashion_mnist
from xpnet.dataset.mnist import load_mnist

SYSTEM_DIR = FASHION_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An isolated user cache, shared by this module's tests; yields its root."""
    require_fashion_mnist()
    tmp = tmp_path_factory.mktemp("fashion")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp, hide_system=False)
        mp.setattr(source, "SYSTEM_DIRS", {"fashion-mnist": (SYSTEM_DIR,)})
        yield tmp


@pytest.fixture(scope="module")
def raw(env: Path) -> tuple:
    """First load: parses the system files and writes the cache."""
    before = listing(SYSTEM_DIR), listing(SYSTEM_DIR.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # recognised: no UnverifiedDataWarning
        ds = load_dataset("fashion-mnist", download=False)
    assert (listing(SYSTEM_DIR), listing(SYSTEM_DIR.parent)) == before  # nothing written
    assert ds.verified == "content"  # Debian recompressed the official files
    assert ds.directory == SYSTEM_DIR and ds.cache is not None
    assert ds.cache.is_relative_to(env / "xdg-cache")
    return (ds.x_train, ds.t_train), (ds.x_test, ds.t_test)


def test_the_debian_files_are_refused_as_mnist(env: Path) -> None:
    before = listing(SYSTEM_DIR), listing(SYSTEM_DIR.parent)
    with pytest.raises(WrongDatasetError) as info:
        load_mnist(data_dir=SYSTEM_DIR, download=False)
    assert str(info.value) == (f"the files in {SYSTEM_DIR} are Fashion-MNIST, not MNIST: "
                               f"load them with load_fashion_mnist()")
    assert (info.value.expected, info.value.found) == ("mnist", "fashion-mnist")
    assert (listing(SYSTEM_DIR), listing(SYSTEM_DIR.parent)) == before
    assert not (env / "xdg-cache" / "xpnet" / "mnist").exists()


def test_sizes_dtypes_and_classes(raw: tuple) -> None:
    (x, t), (xt, tt) = raw
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert x.dtype == xt.dtype == t.dtype == tt.dtype == np.uint8
    assert t.min() == tt.min() == 0 and t.max() == tt.max() == 9
    assert np.bincount(t).tolist() == [6000] * 10
    assert np.bincount(tt).tolist() == [1000] * 10
    assert t[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert tt[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert int(x.sum(dtype=np.int64)) == 3431114169
    assert int(xt.sum(dtype=np.int64)) == 573469082


def test_normalized_pixel_mean(env: Path, raw: tuple) -> None:
    (x, t), (xt, tt) = load_fashion_mnist(flatten=False, one_hot_label=True, download=False)
    assert x.dtype == np.float32 and x.shape == (60000, 1, 28, 28)
    assert t.dtype == np.float64 and t.shape == (60000, 10)
    assert float(x.mean(dtype=np.float64)) == pytest.approx(0.2860, abs=1e-4)
    assert float(xt.mean(dtype=np.float64)) == pytest.approx(0.2868, abs=1e-4)
    np.testing.assert_array_equal(t.argmax(axis=1), raw[0][1])


def test_cache_round_trip_equals_a_fresh_parse(env: Path, raw: tuple,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    [npz] = (env / "xdg-cache" / "xpnet" / "fashion-mnist").glob("fashion-mnist-*.npz")
    files = [SYSTEM_DIR / name for name in FASHION_FILES]
    fresh = tuple(idx.read(path, magic).array for path, magic in zip(
        files, (idx.IMAGES_MAGIC, idx.LABELS_MAGIC) * 2, strict=True))

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed instead of using the cache")

    monkeypatch.setattr(idx, "read", fail)
    (x, t), (xt, tt) = load_fashion_mnist(normalize=False, download=False)
    for cached, parsed in zip((x, t, xt, tt), fresh, strict=True):
        assert cached.dtype == parsed.dtype
        assert np.array_equal(cached, parsed)
