"""Fashion-MNIST (Zalando): MNIST's format and sizes, ten kinds of clothing instead of digits.

Besides the usual places it is found in Debian's ``/usr/share/datasets/fashion-mnist``
(``apt-get install dataset-fashion-mnist``); see ``source.SYSTEM_DIRS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .source import DatasetSpec, Split, load

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    resources=(
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    mirrors_env="XPNET_FASHION_MNIST_MIRRORS",
)


def load_fashion_mnist(normalize: bool = True, flatten: bool = True,
                       one_hot_label: bool = False, *, data_dir: str | Path | None = None,
                       download: bool = True, mirrors: Sequence[str] | str | None = None,
                       ) -> tuple[Split, Split]:
    """Fashion-MNIST as ``(x_train, t_train), (x_test, t_test)``, 60000 and 10000 items.

    Same arrays and arguments as ``xpnet.dataset.mnist.load_mnist``; the mirror override
    variable is ``$XPNET_FASHION_MNIST_MIRRORS``.
    """
    return load(FASHION_MNIST, normalize, flatten, one_hot_label,
                data_dir=data_dir, download=download, mirrors=mirrors)
