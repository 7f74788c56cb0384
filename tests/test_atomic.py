"""xpnet.dataset.atomic: durable (fsync order), typed one-line faults, live temporaries kept.

Full disks are real (a 64 KiB tmpfs, as root); the file-size limit is a real
RLIMIT_FSIZE in a child process.
"""

from __future__ import annotations

import errno
import os
import pickle
import stat
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import numpy as np
import pytest
from small_disk import small_tmpfs
from xpnet.dataset import atomic
from xpnet.dataset.atomic import WriteFaultError, atomic_write, atomic_write_bytes

pytestmark = pytest.mark.timeout(60)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def assert_one_line_about(err: WriteFaultError, path: Path, advice: str) -> None:
    message = str(err)
    assert "\n" not in message and ".part" not in message, message
    assert message.startswith(f"cannot write {path}: "), message
    assert advice in message, message
    assert err.path == path and err.filename == str(path)


# ---------------------------------------------------------------- durability


def test_file_is_synced_before_the_rename_and_the_folder_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(1000)  # less than the file's buffer: a missing flush shows
    target = tmp_path / "params.npz"
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
        events.append((kind, info.st_ino if kind == "folder" else info.st_size))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("rename", Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_bytes(target, data)
    assert events == [("file", len(data)),  # all of it flushed, then synced
                      ("rename", target),
                      ("folder", tmp_path.stat().st_ino)]
    assert target.read_bytes() == data


def test_a_writer_that_closes_its_file_is_still_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_size),
                                                 real_fsync(fd)))

    def write_and_close(f) -> None:
        f.write(b"x" * 5000)
        f.close()

    atomic_write(tmp_path / "a.bin", write_and_close)
    assert synced[0] == 5000 and (tmp_path / "a.bin").read_bytes() == b"x" * 5000


def test_folder_sync_failure_of_the_disk_is_a_fault_but_unsupported_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def failing(code: int):
        def fsync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise OSError(code, os.strerror(code))
            real_fsync(fd)
        return fsync

    monkeypatch.setattr(os, "fsync", failing(errno.EINVAL))  # file system cannot: fine
    atomic_write_bytes(tmp_path / "a", b"1")
    monkeypatch.setattr(os, "fsync", failing(errno.EIO))
    with pytest.raises(WriteFaultError) as info:
        atomic_write_bytes(tmp_path / "b", b"2")
    assert_one_line_about(info.value, tmp_path / "b", "Input/output error (errno 5)")
    assert listing(tmp_path) == ["a", "b"]


# ------------------------------------------------------------ faults, one line


def test_missing_folder_names_the_users_path_not_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.npz"
    with pytest.raises(WriteFaultError) as info:
        atomic_write_bytes(target, b"data")
    assert_one_line_about(info.value, target,
                          f"the folder {target.parent} does not exist; create it first")
    assert info.value.errno == errno.ENOENT and isinstance(info.value, OSError)


def test_net_save_into_a_missing_folder_names_the_users_path(tmp_path: Path) -> None:
    from xpnet import TwoLayerNet

    target = tmp_path / "nonexistent" / "x.npz"
    with pytest.raises(WriteFaultError) as info:
        TwoLayerNet(4, 3, 2).save(target)
    assert_one_line_about(info.value, target, "does not exist; create it first")


def test_a_file_in_the_way_and_a_folder_as_target(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(WriteFaultError) as info:
        atomic_write_bytes(tmp_path / "file" / "x", b"data")
    assert_one_line_about(info.value, tmp_path / "file" / "x", "is a file, not a folder")
    (tmp_path / "folder").mkdir()
    with pytest.raises(WriteFaultError) as info:
        atomic_write_bytes(tmp_path / "folder", b"data")
    assert_one_line_about(info.value, tmp_path / "folder", "is a folder; give a file name")
    assert listing(tmp_path) == ["file", "folder"]  # no temporary left


def test_the_error_pickles_as_dask_sends_it(tmp_path: Path) -> None:
    with pytest.raises(WriteFaultError) as info:
        atomic_write_bytes(tmp_path / "no" / "x", b"")
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is WriteFaultError and str(back) == str(info.value)
    assert back.path == info.value.path and back.errno == errno.ENOENT


def test_other_errors_of_the_writer_pass_unchanged(tmp_path: Path) -> None:
    def broken(f) -> None:
        f.write(b"half")
        raise ConnectionResetError(errno.ECONNRESET, "a network read, not the disk")

    with pytest.raises(ConnectionResetError):
        atomic_write(tmp_path / "x", broken)
    assert listing(tmp_path) == []


def only_one_exception(err: BaseException) -> bool:
    text = "".join(traceback.format_exception(err))
    return "During handling" not in text and "direct cause" not in text


@pytest.mark.parametrize("how", ["bytes", "npz"])
def test_full_disk_is_one_fault_leaving_the_old_file_and_no_temporary(
        tmp_path: Path, how: str) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        target = disk / "params.npz"
        atomic_write_bytes(target, b"the previous model")
        with pytest.raises(WriteFaultError) as info:
            if how == "bytes":
                atomic_write_bytes(target, bytes(1 << 20))
            else:  # np.savez meets the full disk, then again closing its zip
                atomic_write(target, lambda f: np.savez(f, w=np.zeros(1 << 18)))
        assert_one_line_about(info.value, target,
                              "the disk is full; free some space or write to another disk")
        assert info.value.errno == errno.ENOSPC
        assert only_one_exception(info.value)
        assert listing(disk) == ["params.npz"]
        assert target.read_bytes() == b"the previous model"


def test_file_size_limit_is_one_fault_leaving_no_temporary(tmp_path: Path) -> None:
    # A child with RLIMIT_FSIZE 64 KiB writes 1 MiB; Python ignores SIGXFSZ, so the
    # write fails with EFBIG instead of the signal killing the process.
    script = textwrap.dedent("""
        import resource, signal, sys, traceback
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
        from xpnet.dataset.atomic import WriteFaultError, atomic_write
        import numpy as np
        try:
            atomic_write(sys.argv[1], lambda f: np.savez(f, w=np.zeros(1 << 17)))
        except WriteFaultError as err:
            text = "".join(traceback.format_exception(err))
            print(err.errno, "During handling" in text, err, sep="|")
    """)
    target = tmp_path / "big.npz"
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    code, chained, message = done.stdout.strip().split("|")
    assert (int(code), chained) == (errno.EFBIG, "False")
    assert message.startswith(f"cannot write {target}: the file is larger than this process "
                              "may write"), message
    assert "ulimit -f" in message and "\n" not in message
    assert listing(tmp_path) == []


# ------------------------------------------------------- stale temporaries


def test_a_live_writers_temporary_is_kept_and_removed_once_it_died(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.npz"
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".{target.name}.{writer.pid}-0123abcd{atomic.SUFFIX}"
        live.write_bytes(b"another process is writing this")
        atomic_write_bytes(target, b"mine")
        assert listing(tmp_path) == sorted([target.name, live.name])
    finally:
        writer.kill()
        writer.wait(timeout=10)
    atomic_write_bytes(target, b"mine again")  # its writer is gone now: stale
    assert listing(tmp_path) == [target.name]
    assert target.read_bytes() == b"mine again"


def test_files_that_only_look_like_temporaries_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "x.npz"
    finished = subprocess.Popen(["true"])
    finished.wait()
    others = [f".{target.name}.{finished.pid}-short{atomic.SUFFIX}",  # not 8 hex
              f".{target.name}.notapid-0123abcd{atomic.SUFFIX}",
              f".other.npz.{finished.pid}-0123abcd{atomic.SUFFIX}"]  # another target's
    for name in others:
        (tmp_path / name).write_bytes(b"")
    atomic_write_bytes(target, b"x")
    assert listing(tmp_path) == sorted([*others, target.name])
