"""Download files from a list of mirrors: MD5-checked, atomic, nothing left behind on failure."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError

from .errors import DownloadError

# Seconds allowed for connecting and for each read, so a stalled mirror fails and the next is tried.
TIMEOUT_S = 30.0
# Some mirrors answer 403 to Python's default "Python-urllib/3.x" agent.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHUNK = 1 << 16


class _MirrorFailed(Exception):
    """This mirror did not deliver a good copy; try the next one."""


def download(filename: str, md5: str, mirrors: Sequence[str], directory: Path) -> Path:
    """Fetch ``filename`` into ``directory`` from the first mirror that serves it with ``md5``.

    Mirrors are base URLs tried in order; ``directory`` must exist. The file only appears,
    under its own name, once complete and verified. Raises DownloadError listing every
    mirror and why it failed.
    """
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            return _fetch(url, md5, directory / filename)
        except _MirrorFailed as exc:
            failures.append(f"{url} ({exc})")
    tried = "; ".join(failures) if failures else "no mirrors given"
    raise DownloadError(f"could not download {filename}: {tried}")


def _fetch(url: str, md5: str, dest: Path) -> Path:
    # The temporary file lives next to dest so that os.replace is an atomic rename.
    tmp = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".part-", delete=False)
    try:
        with tmp:
            digest = _stream(url, tmp, dest.name)
        if digest != md5:
            raise _MirrorFailed(f"MD5 {digest}, expected {md5}")
        os.chmod(tmp.name, 0o644)  # NamedTemporaryFile creates 0600; this is an ordinary file
        os.replace(tmp.name, dest)
    except BaseException:  # KeyboardInterrupt included: never leave a partial file
        Path(tmp.name).unlink(missing_ok=True)
        raise
    return dest


def _stream(url: str, out: BinaryIO, name: str) -> str:
    """Copy the body at ``url`` into ``out``; return its MD5 hex digest."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check; FIPS builds allow it
    done = total = 0
    show = sys.stderr is not None and sys.stderr.isatty()
    try:
        # A fresh opener reads the proxy environment variables now, not at first use.
        with urllib.request.build_opener().open(request, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if show:
                    _progress(name, done, total)
    except HTTPError as exc:
        raise _MirrorFailed(f"HTTP {exc.code} {exc.reason}") from exc
    except http.client.IncompleteRead as exc:
        raise _MirrorFailed(f"connection dropped after {done} of {total} bytes") from exc
    except URLError as exc:
        raise _MirrorFailed(str(exc.reason)) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _MirrorFailed(str(exc) or type(exc).__name__) from exc
    finally:
        if show and done:
            sys.stderr.write("\n")
    # http.client returns b"" instead of raising when the server closes early.
    if total and done != total:
        raise _MirrorFailed(f"connection dropped after {done} of {total} bytes")
    return digest.hexdigest()


def _progress(name: str, done: int, total: int) -> None:
    if total:
        filled = 30 * done // total
        bar = f"[{'#' * filled}{'.' * (30 - filled)}] {100 * done // total:3d}% "
    else:
        bar = ""
    sys.stderr.write(f"\r{name} {bar}{done / 1e6:.1f} MB")
    sys.stderr.flush()
