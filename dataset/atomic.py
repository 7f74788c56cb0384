"""The one atomic file writer of xpnet: a file appears whole under its name, or not at all.

It lives in ``xpnet.dataset`` because that is the lowest layer that writes files (it
stands alone on the standard library); the downloads, the ``.npz`` cache and every file
of a training run go through it.

Data is written to a hidden temporary file beside the target and renamed over it, so a
reader never sees a half-written file and an interrupted writer leaves the old file as
it was. The temporary file is created with mode 0666 and the process umask applied by
the kernel (an ordinary file, readable by others as the umask allows) without ever
changing the umask, which would race with other threads. If the writer is killed
outright (SIGKILL, power loss) its temporary file stays behind; the next write of the
same target removes the temporaries of processes that are no longer running.

Durability: the file's data is flushed and ``fsync``-ed before the rename, and the folder
is ``fsync``-ed after it (the order PostgreSQL and SQLite use), so once a write returns,
a power cut leaves either the new file whole or, if it struck during the write, the old
one: never an empty or missing file. (A folder that cannot be opened for reading, or a
file system that cannot sync folders, keeps the rename but not that last guarantee.)

Faults of the file system (a full disk, a file-size limit, a missing or read-only folder)
become one ``WriteFaultError`` naming the file asked for, never the temporary one. It is
an ``OSError`` (what it is) and a ``UserError`` (what a user can fix from its one line),
so a command line that catches user errors prints it as one line.
"""

from __future__ import annotations

import contextlib
import errno as errnos
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import UserError

SUFFIX = ".part"

# Errors of the body of ``atomic_file`` that can only be about the file being written;
# other OSErrors there (a network read, say) are the caller's and pass unchanged.
DISK_FAULTS = frozenset({errnos.ENOSPC, errnos.EFBIG, errnos.EDQUOT})


class WriteFaultError(OSError, UserError):
    """A file could not be written: full disk, size limit, missing or read-only folder...

    ``str(err)`` is one line: what failed, which file, what to do. ``path`` is the file
    asked for (never the temporary one), ``errno`` the operating system's code (or None).
    """

    # Positional, as OSError's own arguments, so the error pickles (a sweep's workers
    # send it back to the client).
    def __init__(self, code: int | None, message: str, path: str | os.PathLike[str]) -> None:
        super().__init__(code, message, os.fspath(path))
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.strerror)


def write_fault(path: str | os.PathLike[str], err: OSError) -> WriteFaultError:
    """``err``, raised while writing ``path``, as one WriteFaultError saying what to do."""
    if isinstance(err, WriteFaultError):
        return err
    path = Path(path)
    folder = path.parent
    advice = {
        errnos.ENOSPC: "the disk is full; free some space or write to another disk",
        errnos.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
        errnos.EFBIG: "the file is larger than this process may write (a file-size limit, "
                      "ulimit -f, or the file system's maximum); raise the limit or write "
                      "elsewhere",
        errnos.ENOENT: f"the folder {folder} does not exist; create it first",
        errnos.ENOTDIR: f"a part of {folder} is a file, not a folder; choose another path",
        errnos.EISDIR: f"{path} is a folder; give a file name",
        errnos.EACCES: f"no permission to write in {folder}; choose a writable folder",
        errnos.EPERM: f"no permission to write in {folder}; choose a writable folder",
        errnos.EROFS: f"{folder} is on a read-only file system; choose a writable folder",
    }.get(err.errno)
    if advice is None:
        reason = err.strerror or str(err) or type(err).__name__
        advice = f"{reason} (errno {err.errno}); check the disk and the folder, then retry"
    message = " ".join(f"cannot write {path}: {advice}".splitlines())
    return WriteFaultError(err.errno, message, path)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}")


def _pid_of(temp: Path, path: Path) -> int | None:
    """The writer's pid encoded in a temporary name of ``path``, or None if it is not one."""
    middle = temp.name[len(path.name) + 2: -len(SUFFIX)]
    pid, dash, token = middle.partition("-")
    return int(pid) if dash and pid.isdigit() and len(token) == 8 else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> None:
    """Delete temporary files left beside ``path`` by writers that died (SIGKILL)."""
    path = Path(path)
    with contextlib.suppress(OSError):
        for temp in path.parent.glob(f".{path.name}.*{SUFFIX}"):
            pid = _pid_of(temp, path)
            if pid is not None and pid != os.getpid() and not _running(pid):
                temp.unlink(missing_ok=True)


def _sync_file(f: IO[bytes], temp: Path) -> None:
    """Flush ``f`` to the disk and close it (a writer may have closed it already)."""
    if f.closed:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _sync_folder(path: Path) -> None:
    """Make the rename to ``path`` durable: fsync its folder, where the system allows it."""
    if os.name == "nt":  # folders cannot be opened there; NTFS journals the rename
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a folder we may write but not read: the rename stays, unsynced
        return
    try:
        os.fsync(fd)
    except OSError as err:
        # Some file systems cannot sync a folder (EINVAL); anything else is the disk's.
        if err.errno not in (errnos.EINVAL, errnos.ENOTSUP, errnos.EOPNOTSUPP):
            raise write_fault(path, err) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file to write; on leaving the block without error it replaces ``path``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    ``path`` keeps its previous content. The parent directory must exist. Raises
    WriteFaultError (an OSError) when the file system refuses: a full disk or a size
    limit met by the block's writes, or a missing, read-only or unwritable folder.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    temp = _temp_name(path)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise write_fault(path, err) from None
    f = os.fdopen(fd, "wb")
    try:
        try:
            yield f
        except OSError as err:
            if isinstance(err, WriteFaultError) or err.errno not in DISK_FAULTS:
                raise
            # from None: closing the zip or file on the way out met the same full disk.
            raise write_fault(path, err) from None
        try:
            _sync_file(f, temp)
            os.replace(temp, path)
        except OSError as err:
            raise write_fault(path, err) from None
    except BaseException:
        # Closing flushes what is buffered: on a full disk that fails again, and is moot.
        with contextlib.suppress(OSError):
            f.close()
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    _sync_folder(path)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path``."""
    with atomic_file(path) as f:
        write(f)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(data))
