"""Loading Fashion-MNIST: the .npz cache against parsing the gzip IDX files."""

from __future__ import annotations

import pytest
from benchlib import FASHION_DIR, record
from xpnet.dataset import idx
from xpnet.dataset.fashion_mnist import FASHION_MNIST
from xpnet.dataset.source import load_raw

FILES = [FASHION_DIR / name for name, _ in FASHION_MNIST.resources]


@pytest.mark.parametrize("backend", ["gzip-parse", "npz-cache"])
def test_dataset_load(benchmark, backend, fashion, tmp_path, monkeypatch) -> None:
    if backend == "gzip-parse":
        def run():
            x_train, t_train, x_test, t_test = FILES
            return {"x_train": idx.read_images(x_train), "t_train": idx.read_labels(t_train),
                    "x_test": idx.read_images(x_test), "t_test": idx.read_labels(t_test)}
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        load_raw(FASHION_MNIST, download=False)  # builds the cache

        def run():
            return load_raw(FASHION_MNIST, download=False)

    record(benchmark, "load Fashion-MNIST (70000 images)", backend,
           baseline=backend == "gzip-parse")
    arrays = benchmark.pedantic(run, rounds=7, warmup_rounds=1, iterations=1)
    assert arrays["x_train"].shape == (60000, 784) and arrays["t_test"].shape == (10000,)
