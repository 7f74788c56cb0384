"""MNIST handwritten digits, loaded as by the book's ``dataset/mnist.py``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .source import DatasetSpec, Split, load

MNIST = DatasetSpec(
    name="mnist",
    title="MNIST",
    resources=(
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    # yann.lecun.com answers 403 nowadays; torchvision's first mirror comes first.
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    mirrors_env="XPNET_MNIST_MIRRORS",
)


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *,
               data_dir: str | Path | None = None, download: bool = True,
               mirrors: Sequence[str] | str | None = None) -> tuple[Split, Split]:
    """MNIST as ``(x_train, t_train), (x_test, t_test)``, 60000 and 10000 items.

    Images are uint8 of shape (N, 784), or float32 in [0, 1] with ``normalize``, reshaped to
    (N, 1, 28, 28) without ``flatten``. Labels are uint8 of shape (N,), or float64 one-hot of
    shape (N, 10) with ``one_hot_label``. ``data_dir``: a directory holding (or to receive)
    the four files; ``download=False`` never touches the network; ``mirrors``: base URLs
    tried in order (default: ``$XPNET_MNIST_MIRRORS``, comma-separated, else the built-in list).
    """
    return load(MNIST, normalize, flatten, one_hot_label,
                data_dir=data_dir, download=download, mirrors=mirrors)
