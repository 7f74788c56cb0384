"""What each dataset is: its files, their checksums, its mirrors and class names."""

from __future__ import annotations

from dataclasses import dataclass

DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and how to recognise its files."""

    name: str  # names folders and the cache, e.g. "mnist"
    title: str  # for messages, e.g. "MNIST"
    # (file name, MD5 of the official .gz) for train images, train labels, test images,
    # test labels, in that order.
    resources: tuple[tuple[str, str], ...]
    mirrors: tuple[str, ...]  # base URLs, tried in order
    mirrors_env: str  # environment variable overriding ``mirrors`` (comma-separated)
    # MD5s of the decompressed IDX content, same order: they recognise copies that a
    # distributor recompressed (the .gz bytes differ, the data does not). Empty: unknown.
    content_md5: tuple[str, ...] = ()
    class_names: tuple[str, ...] = DIGITS
    loader: str = ""  # the function to name in messages, e.g. "load_mnist()"

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.resources)

    def how_to_load(self) -> str:
        return self.loader or f'load_dataset("{self.name}")'


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
    # No content sums: we have no MNIST files here to compute them from, so only the
    # official .gz files are recognised (a recompressed copy loads as "unverified").
    content_md5=(),
    loader="load_mnist()",
)

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
    # Computed from Debian's dataset-fashion-mnist (recompressed .gz, official content):
    # zcat FILE | md5sum.
    content_md5=(
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "9018921c3c673c538a1fc5bad174d6f9",
        "8181f5470baa50b63fa0f6fddb340f0a",
        "15d484375f8d13e6eb1aabb0c3f46965",
    ),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
    loader="load_fashion_mnist()",
)

# The datasets load_dataset knows, by name. Files are checked against all of them, so
# one dataset's files are recognised when asked for as another.
SPECS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}
