"""xpnet.folder_lock: one process a folder, refused at once with the holder's PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from xpnet import folder_lock
from xpnet.errors import FolderBusyError, RunFolderError, UserError

HOLDER = textwrap.dedent("""
    import sys, time
    from xpnet import folder_lock
    lock = folder_lock.FolderLock(sys.argv[1], what="sweep")
    print("held", flush=True)
    time.sleep(60)
""")


def start_holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_refused_with_the_holders_pid_and_free_after_sigkill(tmp_path):
    proc = start_holder(tmp_path)
    try:
        with pytest.raises(FolderBusyError) as caught:
            folder_lock.FolderLock(tmp_path, what="sweep")
        err = caught.value
        assert err.pid == proc.pid
        assert str(err) == (f"{tmp_path} is in use by another xpnet process (pid {proc.pid}): "
                            "wait for it to end, or use another sweep folder")
        assert isinstance(err, RunFolderError) and isinstance(err, UserError)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # The kernel dropped the lock with the process: no stale lock after SIGKILL.
    with folder_lock.hold(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / folder_lock.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / folder_lock.LOCK_FILE).exists()  # a release removes it


PROBE = "import sys; from xpnet import folder_lock; folder_lock.FolderLock(sys.argv[1])"


def probe(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, str(folder)], capture_output=True,
                          text=True, timeout=60)


def test_nested_holds_share_the_lock_until_the_outermost_ends(tmp_path):
    with folder_lock.hold(tmp_path, what="run"):
        with folder_lock.hold(tmp_path / "." ) as inner:
            assert inner.held
        # The inner release left it held; reading the lock file (the PID) does not
        # release it either, as a POSIX record lock would be.
        assert (tmp_path / folder_lock.LOCK_FILE).read_text() == f"{os.getpid()}\n"
        refused = probe(tmp_path)
        assert refused.returncode != 0 and f"pid {os.getpid()}" in refused.stderr
    assert probe(tmp_path).returncode == 0


def test_not_inherited_by_programs_it_starts(tmp_path):
    # close-on-exec: a program started while the lock is held cannot keep it after we end.
    with folder_lock.hold(tmp_path):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with folder_lock.hold(tmp_path):
            pass
    finally:
        child.kill()
        child.wait(timeout=10)


def test_release_lets_a_waiting_process_in(tmp_path):
    lock = folder_lock.FolderLock(tmp_path)
    refused = probe(tmp_path)
    assert refused.returncode != 0 and "FolderBusyError" in refused.stderr
    lock.release()
    lock.release()  # idempotent
    assert probe(tmp_path).returncode == 0


def test_a_lock_file_removed_under_a_waiter_is_not_a_lock(tmp_path, monkeypatch):
    # A holder removing its lock file (cleaning a folder it left empty) while another
    # process opened it: that one must lock the folder's new file, not the removed one.
    proc = start_holder(tmp_path)
    real_flock = folder_lock.fcntl.flock
    swapped = []

    def flock(fd, op):
        if not swapped:  # between our open and our flock, the file is replaced
            swapped.append(True)
            os.unlink(tmp_path / folder_lock.LOCK_FILE)
            proc.kill()
            proc.wait(timeout=10)
        return real_flock(fd, op)

    monkeypatch.setattr(folder_lock.fcntl, "flock", flock)
    with folder_lock.hold(tmp_path):
        assert (tmp_path / folder_lock.LOCK_FILE).read_text() == f"{os.getpid()}\n"
        monkeypatch.setattr(folder_lock.fcntl, "flock", real_flock)
        assert probe(tmp_path).returncode != 0


def test_unwritable_folder_is_one_line(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(RunFolderError, match=r"cannot lock the run folder .*nope"):
        folder_lock.FolderLock(missing)
    if os.geteuid() != 0:
        tmp_path.chmod(0o500)
        try:
            with pytest.raises(RunFolderError, match="pass a folder you can write in"):
                folder_lock.FolderLock(tmp_path)
        finally:
            tmp_path.chmod(0o700)


def test_pid_unknown_when_holder_wrote_none(tmp_path):
    # A holder caught between taking the lock and writing its PID: said, not guessed.
    import fcntl

    fd = os.open(tmp_path / folder_lock.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        t0 = time.monotonic()
        with pytest.raises(FolderBusyError, match=r"\(pid unknown\)") as caught:
            folder_lock.FolderLock(tmp_path)
        assert caught.value.pid is None and time.monotonic() - t0 < 2
    finally:
        os.close(fd)
