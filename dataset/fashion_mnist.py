"""Fashion-MNIST (Zalando): MNIST's format and sizes, ten kinds of clothing instead of digits.

Besides the usual places it is found in Debian's ``/usr/share/datasets/fashion-mnist``
(``apt-get install dataset-fashion-mnist``), whose recompressed files are recognised by
their content; see ``source.SYSTEM_DIRS`` and ``specs.FASHION_MNIST``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .source import Split, convert, load_dataset
from .specs import FASHION_MNIST

__all__ = ["FASHION_MNIST", "load_fashion_mnist"]


def load_fashion_mnist(normalize: bool = True, flatten: bool = True,
                       one_hot_label: bool = False, *, data_dir: str | Path | None = None,
                       download: bool = True, mirrors: Sequence[str] | str | None = None,
                       ) -> tuple[Split, Split]:
    """Fashion-MNIST as ``(x_train, t_train), (x_test, t_test)``, 60000 and 10000 items.

    Same arrays and arguments as ``xpnet.dataset.mnist.load_mnist``; the mirror override
    variable is ``$XPNET_FASHION_MNIST_MIRRORS``.
    """
    ds = load_dataset("fashion-mnist", data_dir=data_dir, download=download, mirrors=mirrors)
    return (convert(ds.x_train, ds.t_train, normalize, flatten, one_hot_label),
            convert(ds.x_test, ds.t_test, normalize, flatten, one_hot_label))
