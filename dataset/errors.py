"""Typed errors and warnings of the dataset package.

Every message is a single line, so a command-line tool can print ``str(err)`` as is. The
messages speak the package's own terms (``data_dir``, environment variables, function
names); a command-line tool adds its flag names from the attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class UserError(Exception):
    """Base class of every error a user can fix from its message (a single line).

    It lives here because this package stands alone and its errors are the lowest of the
    project's; xpnet's own user errors (``xpnet.errors``) derive from it too, so a
    command line catches this one class.
    """

    def __init__(self, message: str) -> None:
        # One line, whatever a wrapped exception put in its text.
        super().__init__(one_line(message))

    def message(self, words: Words | None = None) -> str:
        """The one-line message; ``words`` names the ways out (see ``Words``)."""
        return str(self)


def one_line(text: object) -> str:
    """``text`` on one line: its lines joined by spaces, runs of blanks made one."""
    return " ".join(str(text).split())


def first_line(err: BaseException) -> str:
    """The first line of an exception's text, or its class name if it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@dataclass(frozen=True)
class Words:
    """How a message names the ways out of a missing dataset.

    The defaults are the API's (the ``data_dir`` argument, the loader functions); a
    command line passes its own flags, so the sentences are written once, here.
    """

    put_in: str = "in data_dir or"  # "Put FILES {put_in} $XPNET_DATA_DIR/<name>"
    set_data_dir: str = "set data_dir or"  # "{set_data_dir} $XPNET_DATA_DIR to a ..."
    other_here: str = "{loader} reads it"  # another dataset found: {name}, {loader}
    data_dir: str = "data_dir"  # "{data_dir} /x does not exist"


API_WORDS = Words()


class DatasetError(UserError):
    """Base class: anything that keeps a dataset from loading."""


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


@dataclass(frozen=True)
class Absent:
    """Why a dataset is not here and the ways out that apply: the fields of a message.

    ``others``: (name, title, loader) of other datasets found on this machine.
    """

    title: str
    name: str
    files: tuple[str, ...]
    why: str  # "downloading is off", "could not be downloaded (no network?)"
    data_dir_env: str
    mirrors_env: str | None = None  # named when a download failed
    package: str | None = None  # a system package that provides the files
    others: tuple[tuple[str, str, str], ...] = ()

    def sentence(self, words: Words) -> str:
        parts = [f"{self.title} is not on this machine and {self.why}.",
                 f"Put {', '.join(self.files)} {words.put_in} ${self.data_dir_env}/{self.name}"
                 + (f", or set {self.mirrors_env}." if self.mirrors_env else
                    ", or allow downloading.")]
        if self.package:
            parts.append(f"Or apt-get install {self.package}.")
        for name, title, loader in self.others:
            parts.append(f"{title} is on this machine: "
                         f"{words.other_here.format(name=name, loader=loader)}.")
        return " ".join(parts)


@dataclass(frozen=True)
class Unwritable:
    """A download folder that cannot be created or written: the fields of a message."""

    directory: Path
    title: str
    problem: str  # "cannot create {directory} ... ({strerror})" or "... not writable"
    data_dir_env: str

    def sentence(self, words: Words) -> str:
        return f"{self.problem}; {words.set_data_dir} {self.data_dir_env} to a writable folder"


@dataclass(frozen=True)
class Missing:
    """A ``data_dir`` given that does not exist, and no copy elsewhere: a message's fields."""

    directory: Path
    title: str
    files: tuple[str, ...]
    why: str  # what else went wrong: "downloading is off", "MNIST could not be ..."

    def sentence(self, words: Words) -> str:
        return (f"{words.data_dir} {self.directory} does not exist and {self.why}: pass the "
                f"folder that holds the {self.title} files ({', '.join(self.files)})")


class DataNotFoundError(DatasetError, FileNotFoundError):
    """The files are not on disk and downloading is off (or ``data_dir`` is not a folder).

    ``dataset``: the dataset's name; ``searched``: the folders looked in, in order;
    ``absent`` (or ``missing``, when the ``data_dir`` given does not exist): the fields
    of the message, when it names ways out (see ``message``).
    """

    def __init__(self, message: str = "", *, dataset: str = "",
                 searched: Sequence[Path] = (), absent: Absent | None = None,
                 missing: Missing | None = None) -> None:
        self.why = missing or absent
        super().__init__(self.why.sentence(API_WORDS) if self.why else message)
        self.dataset = dataset
        self.searched = tuple(searched)
        self.absent = absent
        self.missing = missing

    def message(self, words: Words | None = None) -> str:
        return self.why.sentence(words or API_WORDS) if self.why else str(self)


class DownloadError(DatasetError, OSError):
    """No mirror delivered a good copy of a file.

    ``dataset`` and ``searched`` as for DataNotFoundError; ``details``: one line per
    mirror tried (or skipped) and why it failed. The fields of the message: ``absent``
    (no mirror answered: offline), ``unwritable`` (the folder to download into cannot be
    made or written) or ``missing`` (the ``data_dir`` given does not exist).
    """

    def __init__(self, message: str = "", *, dataset: str = "", searched: Sequence[Path] = (),
                 details: Sequence[str] = (), absent: Absent | None = None,
                 unwritable: Unwritable | None = None, missing: Missing | None = None) -> None:
        self.why = missing or absent or unwritable
        super().__init__(self.why.sentence(API_WORDS) if self.why else message)
        self.dataset = dataset
        self.searched = tuple(searched)
        self.details = tuple(details)
        self.absent = absent
        self.unwritable = unwritable
        self.missing = missing

    def message(self, words: Words | None = None) -> str:
        return self.why.sentence(words or API_WORDS) if self.why else str(self)


class UnverifiedDataWarning(UserWarning):
    """The files are valid IDX files but match no known checksum: someone's own data."""


class DataElsewhereWarning(UserWarning):
    """The ``data_dir`` given lacks the files and they could not be downloaded into it, so a
    copy found in another searched folder was read; the message names its files."""


class CacheWarning(UserWarning):
    """The parsed-array cache could not be written; loading goes on without it."""
