"""Typed errors and warnings of the dataset package.

Every message is a single line, so a command-line tool can print ``str(err)`` as is. The
messages speak the package's own terms (``data_dir``, environment variables, function
names); a command-line tool adds its flag names from the attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class DatasetError(Exception):
    """Base class: anything that keeps a dataset from loading."""

    def __init__(self, message: str) -> None:
        # One line, whatever a wrapped exception put in its text.
        super().__init__(" ".join(str(message).splitlines()))


class CorruptFileError(DatasetError, ValueError):
    """A data file (or the parsed cache) is damaged or is not what its name says."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class WrongDatasetError(DatasetError, ValueError):
    """The files are recognisably another dataset (e.g. Fashion-MNIST asked for as MNIST).

    ``expected`` and ``found`` are dataset names ("mnist", "fashion-mnist");
    ``directory`` is the folder that holds the files.
    """

    def __init__(self, message: str, *, expected: str, found: str, directory: Path) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found
        self.directory = directory


class DataNotFoundError(DatasetError, FileNotFoundError):
    """The files are not on disk and downloading is off (or ``data_dir`` is not a folder).

    ``dataset``: the dataset's name; ``searched``: the folders looked in, in order.
    """

    def __init__(self, message: str, *, dataset: str = "",
                 searched: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.searched = tuple(searched)


class DownloadError(DatasetError, OSError):
    """No mirror delivered a good copy of a file.

    ``dataset`` and ``searched`` as for DataNotFoundError; ``details``: one line per
    mirror tried (or skipped) and why it failed.
    """

    def __init__(self, message: str, *, dataset: str = "", searched: Sequence[Path] = (),
                 details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.searched = tuple(searched)
        self.details = tuple(details)


class UnverifiedDataWarning(UserWarning):
    """The files are valid IDX files but match no known checksum: someone's own data."""


class CacheWarning(UserWarning):
    """The parsed-array cache could not be written; loading goes on without it."""
