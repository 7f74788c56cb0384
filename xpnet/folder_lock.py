"""A folder belongs to one process at a time: an exclusive OS lock held for a command's life.

``hold(folder)`` takes ``flock(LOCK_EX | LOCK_NB)`` on ``folder/.xpnet.lock`` and writes
the holder's PID into it; a second process asking for the same folder gets
``FolderBusyError`` at once, naming that PID. The lock is the kernel's, tied to the open
file: it ends when the holder releases it or dies in any way (SIGKILL included), so a
killed command never leaves a stale lock. A release removes the file (a process that
opened it meanwhile sees it gone and locks the folder's new one); a killed holder's file
stays and means nothing.

``flock``, not ``lockf``/``fcntl`` record locks: those are dropped as soon as the process
closes *any* descriptor of the file (reading the PID would release it) and are not
shared with children. How children see it: the descriptor is close-on-exec, so a
program started with ``subprocess`` does not inherit it; a child made by ``fork``
(``multiprocessing``'s fork start method) shares the open file and with it the lock,
which then lasts until the holder releases it (``LOCK_UN`` releases it for both) or both
have ended.

Within one process, holding a folder again is a nested hold of the same lock (the
command line holds a run's folder from the moment it claims it, and ``run()`` holds it
again for the training); the lock goes when the outermost holder lets it go.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import FolderBusyError, RunFolderError

LOCK_FILE = ".xpnet.lock"

# The folders this process holds: real path -> [descriptor, holds]. One descriptor per
# folder, so nested holds share one lock (two open files of one file would conflict).
_HELD: dict[str, list[int]] = {}
_GUARD = threading.Lock()


class FolderLock:
    """An exclusive lock on a folder, held until ``release()`` or the process ends."""

    def __init__(self, folder: str | Path, *, what: str = "run") -> None:
        """Take the lock on ``folder`` (which must exist) or raise FolderBusyError.

        ``what``: the folder's kind in messages ("run", "sweep"). Raises RunFolderError
        when the lock file cannot be created (a folder we cannot write in).
        """
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._key: str | None = None
        key = os.path.realpath(self.folder)
        with _GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
            else:
                _HELD[key] = [_take(self.folder, self.path, what), 1]
        self._key = key

    @property
    def held(self) -> bool:
        return self._key is not None

    def release(self) -> None:
        """Let the folder go (idempotent) and remove its lock file."""
        with _GUARD:
            key, self._key = self._key, None
            if key is None:
                return
            entry = _HELD[key]
            entry[1] -= 1
            if entry[1]:
                return
            del _HELD[key]
        fd = entry[0]
        with contextlib.suppress(OSError):  # a read-only folder must not keep it locked
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.unlink(self.path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()


def _take(folder: Path, path: Path, what: str) -> int:
    """The locked descriptor of ``path``, its PID written; or FolderBusyError."""
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise RunFolderError(f"cannot lock the {what} folder {folder} "
                                 f"({err.strerror or err}); pass a folder you can write "
                                 "in") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            who = f"pid {pid}" if pid is not None else "pid unknown"
            raise FolderBusyError(
                f"{folder} is in use by another xpnet process ({who}): wait for it to end, "
                f"or use another {what} folder", folder=folder, pid=pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except OSError:
            same = False
        if not same:
            # The file we locked was removed meanwhile (a holder cleaning up a folder
            # it left empty): that lock guards nothing; lock the folder's file anew.
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd
    raise RunFolderError(f"cannot lock the {what} folder {folder}: its lock file keeps "
                         "changing; retry")


def _holder(fd: int) -> int | None:
    """The PID the holder wrote into the lock file (briefly awaited: it writes it second)."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return None


@contextlib.contextmanager
def hold(folder: str | Path, *, what: str = "run") -> Iterator[FolderLock]:
    """Within the block, ``folder`` (existing) is this process's alone; see the module doc.

    Raises FolderBusyError (a RunFolderError) when another process holds it.
    """
    lock = FolderLock(folder, what=what)
    try:
        yield lock
    finally:
        lock.release()
