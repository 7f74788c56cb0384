"""Typed errors of the dataset package.

Every message is a single line, so a command-line tool can print ``str(err)`` as is.
"""

from __future__ import annotations

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


class DownloadError(DatasetError, OSError):
    """No mirror delivered a good copy of a file; the message lists each mirror and why."""


class DataNotFoundError(DatasetError, FileNotFoundError):
    """The files are not on disk and downloading is off."""
