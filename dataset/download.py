"""Download files from a list of mirrors: MD5-checked, atomic, bounded in time and size.

A mirror is given up, and the next one tried, when it refuses or fails, sends a copy whose
MD5 is wrong, sends more than ``MAX_BYTES``, goes silent for ``TIMEOUT_S``, is not done
after ``DEADLINE_S``, or sends slower than ``SPEED_LIMIT`` bytes per second over a window
of ``SPEED_TIME`` seconds (curl's ``--speed-limit``/``--speed-time``). A fault of the
local disk (full, size limit) is no mirror's fault: it stops the download at once with
``atomic.WriteFaultError``.
"""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from tqdm import tqdm

from .atomic import WriteFaultError, atomic_file, write_fault
from .errors import DownloadError

# Seconds allowed for connecting and for each read, so a stalled mirror fails fast.
TIMEOUT_S = 30.0
# Seconds allowed for a whole file, so a mirror that trickles a byte now and then fails
# too (checked after each read: a file may overrun it by at most one TIMEOUT_S).
DEADLINE_S = 900.0
# Bytes accepted for one file: twice the largest official .gz (Fashion-MNIST's training
# images, 26.4 MB), so an endless body stops here instead of filling the disk.
MAX_BYTES = 2 * 26_421_880
# The floor rate: a mirror that delivers fewer than SPEED_LIMIT bytes per second over a
# window of SPEED_TIME seconds is given up (checked after each read, so within about
# SPEED_TIME + TIMEOUT_S of its last fast stretch). 10 KB/s cannot bring the largest
# file within DEADLINE_S anyway; any working connection is far faster.
SPEED_LIMIT = 10_000
SPEED_TIME = 30.0
# Some mirrors answer 403 to Python's default "Python-urllib/3.x" agent.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHUNK = 1 << 16


class _MirrorFailed(Exception):
    """This mirror did not deliver a good copy; try the next one."""


def download(filename: str, md5: str, mirrors: Sequence[str], directory: Path, *,
             speed_limit: float | None = None, speed_time: float | None = None) -> Path:
    """Fetch ``filename`` into ``directory`` from the first mirror that serves it with ``md5``.

    Mirrors are http(s) base URLs tried in order; a malformed one is skipped. ``directory``
    must exist. The file only appears, under its own name, once complete and verified.
    ``speed_limit`` (bytes/s) and ``speed_time`` (s) set the floor rate (default
    SPEED_LIMIT over SPEED_TIME). Raises DownloadError whose ``details`` say, per mirror,
    why it failed, or WriteFaultError when the local disk refuses the file.
    """
    floor = (SPEED_LIMIT if speed_limit is None else speed_limit,
             SPEED_TIME if speed_time is None else speed_time)
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            _check_url(url)
            return _fetch(url, md5, directory / filename, floor)
        except _MirrorFailed as exc:
            failures.append(f"{url} ({exc})")
    raise DownloadError(f"could not download {filename}: "
                        f"{'every mirror failed' if failures else 'no mirrors given'}",
                        details=failures)


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _MirrorFailed(f"skipped: not a URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _MirrorFailed("skipped: not an http(s) URL")


def _fetch(url: str, md5: str, dest: Path, floor: tuple[float, float]) -> Path:
    # atomic_file removes the temporary file on any failure, KeyboardInterrupt included.
    with atomic_file(dest) as out:
        digest = _stream(url, out, dest, floor)
        if digest != md5:
            raise _MirrorFailed(f"MD5 {digest}, expected {md5}")
    return dest


def _stream(url: str, out: BinaryIO, dest: Path, floor: tuple[float, float]) -> str:
    """Copy the body at ``url`` into ``out`` (the file ``dest``); return its MD5 hex digest.

    ``floor``: (bytes per second, seconds), the slowest rate accepted over a window.
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check; FIPS builds allow it
    speed_limit, speed_time = floor
    done = total = 0
    deadline = time.monotonic() + DEADLINE_S
    try:
        # A fresh opener reads the proxy environment variables now, not at first use.
        with urllib.request.build_opener().open(request, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            if total > MAX_BYTES:
                raise _MirrorFailed(f"{total} bytes announced, more than the {MAX_BYTES} "
                                    f"allowed")
            # disable=None: a progress bar on a terminal only.
            with tqdm(total=total or None, desc=dest.name, unit="B", unit_scale=True,
                      unit_divisor=1024, disable=None) as bar:
                window_start, window_done = time.monotonic(), 0
                # read1 returns what has arrived, so the deadline and the floor rate are
                # checked while a mirror trickles; read(n) would wait for all n bytes.
                while chunk := response.read1(CHUNK):
                    done += len(chunk)
                    if done > MAX_BYTES:
                        raise _MirrorFailed(f"more than the {MAX_BYTES} bytes allowed")
                    now = time.monotonic()
                    if now > deadline:
                        raise _MirrorFailed(f"not done after {DEADLINE_S:g} s "
                                            f"({done} bytes)")
                    if now - window_start >= speed_time and done != total:
                        rate = (done - window_done) / (now - window_start)
                        if rate < speed_limit:
                            raise _MirrorFailed(
                                f"slower than {speed_limit:g} bytes/s over {speed_time:g} s "
                                f"({rate:.0f} bytes/s, {done} bytes in all)")
                        window_start, window_done = now, done
                    try:
                        out.write(chunk)
                    except OSError as exc:  # the local disk's fault: no mirror would do
                        raise write_fault(dest, exc) from None
                    digest.update(chunk)
                    bar.update(len(chunk))
    except WriteFaultError:
        raise
    except HTTPError as exc:
        raise _MirrorFailed(f"HTTP {exc.code} {exc.reason}") from exc
    except http.client.IncompleteRead as exc:
        raise _MirrorFailed(f"connection dropped after {done} of {total} bytes") from exc
    except URLError as exc:
        raise _MirrorFailed(str(exc.reason)) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _MirrorFailed(str(exc) or type(exc).__name__) from exc
    # http.client returns b"" instead of raising when the server closes early.
    if total and done != total:
        raise _MirrorFailed(f"connection dropped after {done} of {total} bytes")
    return digest.hexdigest()
