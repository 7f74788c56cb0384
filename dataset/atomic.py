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
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

SUFFIX = ".part"


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


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file to write; on leaving the block without error it replaces ``path``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    ``path`` keeps its previous content. The parent directory must exist.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    temp = _temp_name(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path``."""
    with atomic_file(path) as f:
        write(f)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(data))
