"""A real full file system for tests: a small tmpfs mounted for the test's duration.

Mounting needs root (CI and the dev container run the tests as root); elsewhere the
test is skipped with the reason. The file-size limit (EFBIG) needs no root: see
``tests/test_atomic.py``, which sets RLIMIT_FSIZE in a child process.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(folder: Path, size: str = "64k") -> Iterator[Path]:
    """``folder`` (created) with a tmpfs of ``size`` mounted on it; skip if impossible."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                              str(folder)], capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield folder
    finally:
        # -l: a file still open elsewhere must not leave the mount behind.
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)
