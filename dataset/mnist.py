"""MNIST handwritten digits, loaded as by the book's ``dataset/mnist.py``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .source import Split, convert, load_dataset
from .specs import MNIST

__all__ = ["MNIST", "load_mnist"]


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *,
               data_dir: str | Path | None = None, download: bool = True,
               mirrors: Sequence[str] | str | None = None) -> tuple[Split, Split]:
    """MNIST as ``(x_train, t_train), (x_test, t_test)``, 60000 and 10000 items.

    Images are uint8 of shape (N, 784), or float32 in [0, 1] with ``normalize``, reshaped to
    (N, 1, 28, 28) without ``flatten``. Labels are uint8 of shape (N,), or float64 one-hot of
    shape (N, 10) with ``one_hot_label``. ``data_dir``: a folder holding (or to receive)
    the four files; ``download=False`` never touches the network; ``mirrors``: base URLs
    tried in order (default: ``$XPNET_MNIST_MIRRORS``, comma-separated, else the built-in
    list). See ``xpnet.dataset.load_dataset`` for the checks and errors.
    """
    ds = load_dataset("mnist", data_dir=data_dir, download=download, mirrors=mirrors)
    return (convert(ds.x_train, ds.t_train, normalize, flatten, one_hot_label),
            convert(ds.x_test, ds.t_test, normalize, flatten, one_hot_label))
