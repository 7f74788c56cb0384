"""Loading Fashion-MNIST: a cold load (parse, MD5 checks, cache write) and a cached load,
against parsing the gzip IDX files with no checks at all (what a cold load cost before
files were recognised by their MD5s), and the MD5s alone."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
from benchlib import record
from support import FASHION_DIR, FASHION_FILES, require_fashion_mnist
from xpnet.dataset import load_dataset

GROUP = "load Fashion-MNIST (70000 images)"
FILES = [FASHION_DIR / name for name in FASHION_FILES]


def _parse_unchecked() -> dict[str, np.ndarray]:
    out = {}
    for key, path, offset in zip(("x_train", "t_train", "x_test", "t_test"), FILES,
                                 (16, 8, 16, 8), strict=True):
        data = gzip.decompress(path.read_bytes())
        out[key] = np.frombuffer(data, np.uint8, offset=offset).copy()
    out["x_train"] = out["x_train"].reshape(-1, 784)
    out["x_test"] = out["x_test"].reshape(-1, 784)
    return out


@pytest.mark.parametrize("backend", ["gzip-parse", "md5-only", "cold-load", "cached-load"])
def test_dataset_load(benchmark, backend, tmp_path, monkeypatch) -> None:
    require_fashion_mnist()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("XPNET_DATA_DIR", raising=False)
    setup = None
    if backend == "gzip-parse":
        run = _parse_unchecked
    elif backend == "md5-only":  # the checksums a cold load adds: files and content
        blobs = [path.read_bytes() for path in FILES]
        contents = [gzip.decompress(blob) for blob in blobs]

        def run():
            return [hashlib.md5(b).hexdigest() for b in (*blobs, *contents)]
    else:
        cache = load_dataset("fashion-mnist", download=False).cache  # builds the cache

        def run():
            return load_dataset("fashion-mnist", download=False)

        if backend == "cold-load":
            def setup():
                cache.unlink(missing_ok=True)

    record(benchmark, GROUP, backend, baseline=backend == "gzip-parse")
    result = benchmark.pedantic(run, setup=setup, rounds=7, warmup_rounds=1, iterations=1)
    if backend == "md5-only":
        assert len(result) == 8
        return
    x_train = result["x_train"] if isinstance(result, dict) else result.x_train
    assert x_train.shape == (60000, 784)
    if backend != "gzip-parse":
        assert result.verified == "content"
