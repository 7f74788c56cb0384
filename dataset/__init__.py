"""MNIST and Fashion-MNIST loaders with the book's ``load_mnist`` call, standalone (NumPy only).

``from xpnet.dataset.mnist import load_mnist`` and ``from xpnet.dataset.fashion_mnist import
load_fashion_mnist``. Files are looked up locally, downloaded from mirrors when missing
(MD5-checked, atomic), validated, and cached as ``.npz``; see ``xpnet.dataset.source``.
"""

from .errors import CorruptFileError, DataNotFoundError, DatasetError, DownloadError

__all__ = ["CorruptFileError", "DataNotFoundError", "DatasetError", "DownloadError"]
