"""A toy dataset in the real IDX format, for command-line runs that take seconds."""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def write_idx(path: Path, array: np.ndarray) -> None:
    code = 0x08  # unsigned byte
    header = struct.pack(">HBB", 0, code, array.ndim) + b"".join(
        struct.pack(">I", n) for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def toy_dataset(folder: Path, *, train: int = 400, test: int = 100, seed: int = 5) -> Path:
    """Four Fashion-MNIST-named IDX files of separable 28x28 'images' of 10 classes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centers = rng.integers(0, 256, size=(10, 28, 28))
    arrays = []
    for n in (train, test):
        t = rng.integers(0, 10, size=n).astype(np.uint8)
        x = np.clip(centers[t] + rng.normal(scale=40, size=(n, 28, 28)), 0, 255)
        arrays += [x.astype(np.uint8), t]
    for name, array in zip(FILES, arrays, strict=True):
        write_idx(folder / name, array)
    return folder


@dataclass(eq=False)  # compared by identity, like xpnet.dataset.Dataset
class ToyData:
    """Stands in for an xpnet.dataset.Dataset in ``run(data=...)``: uint8 arrays."""

    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    name: str = "fashion-mnist"


def toy_data(*, train: int = 400, test: int = 100, seed: int = 5) -> ToyData:
    """Separable 784-pixel uint8 'images' of 10 classes, as ``toy_dataset`` writes them."""
    rng = np.random.default_rng(seed)
    centers = rng.integers(0, 256, size=(10, 784))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        t = rng.integers(0, 10, size=n).astype(np.uint8)
        x = np.clip(centers[t] + rng.normal(scale=40, size=(n, 784)), 0, 255).astype(np.uint8)
        return x, t

    return ToyData(*split(train), *split(test))


def stopped_and_resumed(config: Any, data: Any, out: Path, stops: list[int]) -> Any:
    """Run ``config`` into ``out``, stopping after each count of ``stops`` steps and
    resuming, to the end."""
    from xpnet.run import run
    from xpnet.run_folder import read_metrics

    resume = False
    for steps in stops:
        calls = iter(range(10**6))
        result = run(config, data=data, out=out, resume=resume,
                     stop=lambda steps=steps, calls=calls: next(calls) == steps - 1)
        assert result.status == "interrupted"
        assert read_metrics(out)["status"] == "interrupted"
        resume = True
    result = run(config, data=data, out=out, resume=True)
    assert result.status == "finished"
    return result
