"""MNIST and Fashion-MNIST loaders with the book's ``load_mnist`` call, standalone (NumPy only).

``load_dataset(name)`` returns a ``Dataset`` (raw uint8 arrays, class names, where the
files were and how they were verified); ``from xpnet.dataset.mnist import load_mnist``
and ``from xpnet.dataset.fashion_mnist import load_fashion_mnist`` keep the book's call.
Files are looked up locally, downloaded from mirrors when missing (MD5-checked, atomic),
recognised by their checksums, validated, and cached in the user cache folder; see
``xpnet.dataset.source``.
"""

from .errors import (
    CacheWarning,
    CorruptFileError,
    DataElsewhereWarning,
    DataNotFoundError,
    DatasetError,
    DownloadError,
    UnverifiedDataWarning,
    UserError,
    Words,
    WrongDatasetError,
)
from .source import Dataset, fetch_files, find_local, load_dataset, normalized

__all__ = ["CacheWarning", "CorruptFileError", "DataElsewhereWarning", "DataNotFoundError",
           "Dataset", "DatasetError", "DownloadError", "UnverifiedDataWarning", "UserError",
           "Words", "WrongDatasetError", "fetch_files", "find_local", "load_dataset",
           "normalized"]
