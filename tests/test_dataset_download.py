"""Downloads through a real HTTP server on 127.0.0.1: mirror order, MD5, atomic files."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import (
    FILES,
    blobs_for,
    closed_port_url,
    flat,
    isolate,
    listing,
    load_raw,
    make_arrays,
    mirror_server,
    serving,
    toy_spec,
    write_files,
)
from small_disk import small_tmpfs
from xpnet.dataset import (
    DataNotFoundError,
    DatasetError,
    DownloadError,
    download,
    source,
    specs,
)
from xpnet.dataset.atomic import WriteFaultError
from xpnet.dataset.mnist import load_mnist

pytestmark = pytest.mark.timeout(60)

ARRAYS = make_arrays(seed=10)
BLOBS = blobs_for(ARRAYS)
SPEC = toy_spec(BLOBS)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def server():
    with mirror_server(BLOBS) as (base, requests):
        yield base, requests


def assert_loaded(raw: dict[str, np.ndarray]) -> None:
    for key, value in flat(ARRAYS).items():
        np.testing.assert_array_equal(raw[key], value)


def test_mirrors_tried_in_order_until_a_good_copy(tmp_path: Path, server) -> None:
    base, requests = server
    data = tmp_path / "data"
    mirrors = [f"{base}/forbidden/", f"{base}/corrupt/", f"{base}/good/"]
    assert_loaded(load_raw(SPEC, data_dir=data, mirrors=mirrors))

    assert [path for path, _ in requests] == [
        f"/{mirror}/{name}" for name in FILES for mirror in ("forbidden", "corrupt", "good")
    ]
    assert all(agent.startswith("Mozilla/5.0") for _, agent in requests)
    assert listing(data) == sorted(FILES)
    for name in FILES:
        assert (data / name).read_bytes() == BLOBS[name]
        assert (data / name).stat().st_mode & 0o777 == 0o644


def test_all_mirrors_bad_lists_each_and_leaves_nothing(tmp_path: Path, server) -> None:
    base, _ = server
    data = tmp_path / "data"
    mirrors = [f"{base}/forbidden/", f"{base}/corrupt/", f"{base}/drop/"]
    with pytest.raises(DownloadError) as info:
        load_raw(SPEC, data_dir=data, mirrors=mirrors)
    err = info.value
    size = len(BLOBS[FILES[0]])
    assert err.details == (
        f"{base}/forbidden/{FILES[0]} (HTTP 403 Forbidden)",
        f"{base}/corrupt/{FILES[0]} (MD5 {_md5_of_corrupt(FILES[0])}, "
        f"expected {SPEC.resources[0][1]})",
        f"{base}/drop/{FILES[0]} (connection dropped after {size // 2} of {size} bytes)",
    )
    message = str(err)
    # The folder given did not exist: that comes first, as a mistyped path is likelier
    # than a new folder meant to receive a download that then failed.
    assert message == (
        f"data_dir {data} does not exist and Toy could not be downloaded into it (no "
        f"network?): pass the folder that holds the Toy files ({', '.join(FILES)})")
    assert err.dataset == "toy"
    assert err.searched == (data, tmp_path / "xdg-cache" / "xpnet" / "toy")
    assert isinstance(err, DatasetError) and isinstance(err, OSError)
    assert not data.exists()  # created for the download, removed as nothing came


def _md5_of_corrupt(name: str) -> str:
    body = BLOBS[name]
    return hashlib.md5(body[:-9] + bytes([body[-9] ^ 0xFF]) + body[-8:]).hexdigest()


def test_dropped_connection_leaves_nothing(tmp_path: Path, server) -> None:
    base, _ = server
    (tmp_path / "data").mkdir()
    with pytest.raises(DownloadError) as info:
        load_raw(SPEC, data_dir=tmp_path / "data", mirrors=[f"{base}/drop/"])
    assert "connection dropped after" in info.value.details[0]
    assert listing(tmp_path / "data") == []  # a folder that was there stays
    assert not list(tmp_path.rglob("*.npz"))


def test_stalled_mirror_times_out_and_the_next_is_used(tmp_path: Path, server,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    base, requests = server
    monkeypatch.setattr(download, "TIMEOUT_S", 0.3)
    path = download.download(FILES[0], SPEC.resources[0][1],
                             [f"{base}/stall/", f"{base}/good/"], tmp_path)
    assert path == tmp_path / FILES[0] and path.read_bytes() == BLOBS[FILES[0]]
    assert [p for p, _ in requests] == [f"/stall/{FILES[0]}", f"/good/{FILES[0]}"]
    assert listing(tmp_path) == [FILES[0]]


def test_closed_port_is_a_one_line_download_error(tmp_path: Path) -> None:
    url = closed_port_url()
    (tmp_path / "data").mkdir()
    with pytest.raises(DownloadError) as info:
        load_raw(SPEC, data_dir=tmp_path / "data", mirrors=[url])
    message = str(info.value)
    assert "\n" not in message and len(message) < 250
    assert message == (
        "Toy is not on this machine and could not be downloaded (no network?). "
        f"Put {', '.join(FILES)} in data_dir or $XPNET_DATA_DIR/toy, or set XPNET_TOY_MIRRORS.")
    [detail] = info.value.details
    assert detail.startswith(f"{url}{FILES[0]} (") and "refused" in detail
    assert listing(tmp_path / "data") == []  # a folder that was there stays, empty


def test_interrupt_mid_download_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def interrupted(url, out, dest, floor):
        out.write(b"partial data")
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_stream", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download.download(FILES[0], SPEC.resources[0][1], ["http://127.0.0.1:1/"], tmp_path)
    assert listing(tmp_path) == []


def test_only_missing_files_are_downloaded(tmp_path: Path, server) -> None:
    base, requests = server
    data = tmp_path / "data"
    write_files(data, BLOBS, names=FILES[:2])
    assert_loaded(load_raw(SPEC, data_dir=data, mirrors=[f"{base}/good/"]))
    assert [p for p, _ in requests] == [f"/good/{name}" for name in FILES[2:]]


def test_mirror_env_var_overrides_builtin_mirrors(tmp_path: Path, server,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base, requests = server
    monkeypatch.setitem(specs.SPECS, "mnist",
                        dataclasses.replace(specs.MNIST, resources=SPEC.resources))
    monkeypatch.setenv("XPNET_MNIST_MIRRORS", f" {base}/forbidden/ , {base}/good ")
    (x, t), (xt, tt) = load_mnist(normalize=False, data_dir=tmp_path / "data")
    np.testing.assert_array_equal(x, flat(ARRAYS)["x_train"])
    np.testing.assert_array_equal(tt, ARRAYS["t_test"])
    assert [p for p, _ in requests][:2] == [f"/forbidden/{FILES[0]}", f"/good/{FILES[0]}"]


def test_mirrors_argument_beats_env_var(tmp_path: Path, server,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    base, requests = server
    monkeypatch.setenv("XPNET_TOY_MIRRORS", f"{base}/forbidden/")
    load_raw(SPEC, data_dir=tmp_path / "data", mirrors=f"{base}/good/")
    assert {p.split("/")[1] for p, _ in requests} == {"good"}


def test_downloads_go_to_xpnet_data_dir_then_user_cache(tmp_path: Path, server,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = server
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "env"))
    load_raw(SPEC, mirrors=[f"{base}/good/"])
    assert listing(tmp_path / "env" / "toy") == sorted(FILES)  # the cache goes elsewhere

    monkeypatch.delenv("XPNET_DATA_DIR")
    monkeypatch.setitem(specs.SPECS, "mnist",
                        dataclasses.replace(specs.MNIST, resources=SPEC.resources))
    load_mnist(mirrors=[f"{base}/good/"])
    [cache] = [name for name in listing(tmp_path / "xdg-cache" / "xpnet" / "mnist")
               if name not in FILES]
    assert cache.startswith("mnist-") and cache.endswith(".npz")


def test_download_false_never_touches_the_network(tmp_path: Path, server,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base, requests = server
    monkeypatch.setenv("XPNET_TOY_MIRRORS", f"{base}/good/")
    with pytest.raises(DataNotFoundError):
        load_raw(SPEC, data_dir=tmp_path / "data", download=False)
    with pytest.raises(DataNotFoundError):
        load_raw(SPEC, data_dir=tmp_path / "data", download=False, mirrors=[f"{base}/good/"])
    assert requests == []
    assert not (tmp_path / "data").exists()


def test_unwritable_target_is_a_download_error(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XPNET_DATA_DIR", str(blocker / "env"))
    with pytest.raises(DownloadError, match="cannot create .*; set data_dir or XPNET_DATA_DIR "
                                            "to a writable folder$") as info:
        load_raw(SPEC, mirrors=["http://127.0.0.1:1/"])
    assert "--" not in str(info.value) and info.value.unwritable is not None
    # A data_dir given that cannot be made is named as missing, first.
    with pytest.raises(DownloadError) as info:
        load_raw(SPEC, data_dir=blocker / "data", mirrors=["http://127.0.0.1:1/"])
    assert str(info.value) == (
        f"data_dir {blocker / 'data'} does not exist and it cannot be created: pass the "
        f"folder that holds the Toy files ({', '.join(FILES)})")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(tmp_path: Path, server,
                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    base, _ = server
    md5 = SPEC.resources[0][1]
    download.download(FILES[0], md5, [f"{base}/good/"], tmp_path)
    assert capsys.readouterr().err == ""
    (tmp_path / FILES[0]).unlink()

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    download.download(FILES[0], md5, [f"{base}/good/"], tmp_path)
    shown = terminal.getvalue()
    size = len(BLOBS[FILES[0]])
    assert f"\r{FILES[0]}: 100%" in shown and f"{size / 1024:.1f}k/{size / 1024:.1f}k" in shown


def test_trickling_mirror_fails_at_the_deadline_and_the_next_is_used(
        tmp_path: Path, server, monkeypatch: pytest.MonkeyPatch) -> None:
    base, requests = server
    monkeypatch.setattr(download, "TIMEOUT_S", 1.0)  # each byte comes well within it
    monkeypatch.setattr(download, "DEADLINE_S", 0.3)
    raw = load_raw(SPEC, data_dir=tmp_path / "data",
                   mirrors=[f"{base}/trickle/", f"{base}/good/"])
    assert_loaded(raw)
    assert [p for p, _ in requests][:2] == [f"/trickle/{FILES[0]}", f"/good/{FILES[0]}"]
    assert listing(tmp_path / "data") == sorted(FILES)


def test_deadline_is_in_the_details(tmp_path: Path, server,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = server
    monkeypatch.setattr(download, "DEADLINE_S", 0.2)
    with pytest.raises(DownloadError) as info:
        download.download(FILES[1], SPEC.resources[1][1], [f"{base}/trickle/"], tmp_path)
    [detail] = info.value.details
    assert detail.startswith(f"{base}/trickle/{FILES[1]} (not done after 0.2 s (")
    assert listing(tmp_path) == []


def test_endless_body_stops_at_the_size_limit(tmp_path: Path, server,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    base, requests = server
    monkeypatch.setattr(download, "MAX_BYTES", 300_000)
    with pytest.raises(DownloadError) as info:
        download.download(FILES[0], SPEC.resources[0][1], [f"{base}/endless/"], tmp_path)
    assert info.value.details == (
        f"{base}/endless/{FILES[0]} (more than the 300000 bytes allowed)",)
    assert listing(tmp_path) == []  # the .part file is gone


def test_announced_size_over_the_limit_is_refused_at_once(
        tmp_path: Path, server, monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = server
    monkeypatch.setattr(download, "MAX_BYTES", 1000)
    size = len(BLOBS[FILES[0]])
    with pytest.raises(DownloadError) as info:
        download.download(FILES[0], SPEC.resources[0][1], [f"{base}/good/"], tmp_path)
    assert info.value.details == (
        f"{base}/good/{FILES[0]} ({size} bytes announced, more than the 1000 allowed)",)
    assert listing(tmp_path) == []


def test_malformed_mirror_in_the_variable_is_skipped(tmp_path: Path, server,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    base, requests = server
    monkeypatch.setenv("XPNET_TOY_MIRRORS", f"::bad::,http://[::1,{base}/good/")
    assert_loaded(load_raw(SPEC, data_dir=tmp_path / "data"))
    assert {p.split("/")[1] for p, _ in requests} == {"good"}

    monkeypatch.setenv("XPNET_TOY_MIRRORS", "::bad::,ftp://example.org/x")
    with pytest.raises(DownloadError) as info:
        load_raw(SPEC, data_dir=tmp_path / "other")
    assert info.value.details == (
        f"::bad::/{FILES[0]} (skipped: not an http(s) URL)",
        f"ftp://example.org/x/{FILES[0]} (skipped: not an http(s) URL)",
    )


def test_failed_download_leaves_no_empty_folders(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url = closed_port_url()
    for kwargs, gone in (({"data_dir": tmp_path / "a" / "b" / "c"}, tmp_path / "a"),
                         ({}, tmp_path / "xdg-cache")):
        with pytest.raises(DownloadError):
            load_raw(SPEC, mirrors=[url], **kwargs)
        assert not gone.exists()
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DownloadError):
        load_raw(SPEC, mirrors=[url])
    assert not (tmp_path / "env").exists()
    assert listing(tmp_path) == []


def test_partial_download_keeps_what_it_stored(tmp_path: Path, server) -> None:
    base, _ = server
    data = tmp_path / "new" / "data"
    spec = dataclasses.replace(SPEC, resources=(*SPEC.resources[:3], (FILES[3], "0" * 32)))
    with pytest.raises(DownloadError):
        load_raw(spec, data_dir=data, mirrors=[f"{base}/good/"])
    assert listing(data) == sorted(FILES[:3])


def test_stale_download_temporary_of_a_dead_writer_is_removed(tmp_path: Path, server) -> None:
    base, _ = server
    data = tmp_path / "data"
    data.mkdir()
    finished = subprocess.Popen(["true"])
    finished.wait()
    stale = data / f".{FILES[0]}.{finished.pid}-89abcdef.part"
    stale.write_bytes(b"half a download, its writer was SIGKILLed")
    mine = data / f".{FILES[0]}.{os.getpid()}-89abcdef.part"  # a live writer's: kept
    mine.write_bytes(b"being written")
    load_raw(SPEC, data_dir=data, mirrors=[f"{base}/good/"])
    assert listing(data) == sorted([*FILES, mine.name])


def test_offline_mnist_message_is_short_and_names_local_fashion_mnist(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "usr-share" / "fashion-mnist"
    write_files(system, BLOBS)
    monkeypatch.setattr(source, "SYSTEM_DIRS", {"fashion-mnist": (system,)})
    with pytest.raises(DownloadError) as info:
        load_mnist()  # the isolated mirrors lead to a closed port
    message = str(info.value)
    assert message == (
        "MNIST is not on this machine and could not be downloaded (no network?). "
        f"Put {', '.join(FILES)} in data_dir or $XPNET_DATA_DIR/mnist, or set "
        "XPNET_MNIST_MIRRORS. Fashion-MNIST is on this machine: load_fashion_mnist() reads it.")
    assert len(message) < 320
    assert "refused" in info.value.details[0] and len(info.value.details) == 1
    assert info.value.dataset == "mnist"
    assert not (tmp_path / "xdg-cache").exists()  # the download folder went again


@contextmanager
def paced_server(body: bytes) -> Iterator[str]:
    """Serve ``body`` on 127.0.0.1 at a pace the path sets: ``/<bytes>/<seconds>/name``
    sends ``bytes`` every ``seconds`` (for at most 5 s, then it hangs up)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            step, pause = self.path.strip("/").split("/")[:2]
            step, pause = int(step), float(pause)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            start = time.monotonic()
            try:
                for i in range(0, len(body), step):
                    if time.monotonic() - start > 5:
                        return
                    self.wfile.write(body[i: i + step])
                    self.wfile.flush()
                    time.sleep(pause)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up: what the slow paces are for

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


def test_mirror_slower_than_the_floor_is_given_up_and_the_next_is_used(
        tmp_path: Path, server) -> None:
    good, requests = server
    name, md5 = SPEC.resources[0]
    # 50 bytes every 0.1 s (500 bytes/s) under a floor of 2000 bytes/s over 0.5 s; the
    # deadline (900 s) and the read timeout (5 s) never come into play.
    with paced_server(BLOBS[name]) as slow:
        start = time.monotonic()
        path = download.download(name, md5, [f"{slow}/50/0.1/", f"{good}/good/"], tmp_path,
                                 speed_limit=2000, speed_time=0.5)
        elapsed = time.monotonic() - start
    assert path.read_bytes() == BLOBS[name]
    assert [p for p, _ in requests] == [f"/good/{name}"]
    assert elapsed < 3.0, elapsed  # within about one window, not the 5 s the slow one takes
    assert listing(tmp_path) == [name]


def test_slow_mirror_is_in_the_details(tmp_path: Path) -> None:
    name, md5 = SPEC.resources[0]
    with paced_server(BLOBS[name]) as slow, pytest.raises(DownloadError) as info:
        download.download(name, md5, [f"{slow}/20/0.2/"], tmp_path,
                          speed_limit=1000, speed_time=0.4)
    [detail] = info.value.details
    assert detail.startswith(f"{slow}/20/0.2/{name} (slower than 1000 bytes/s over 0.4 s ("), \
        detail
    assert listing(tmp_path) == []


def test_mirror_above_the_floor_is_kept_over_many_windows(tmp_path: Path) -> None:
    name, md5 = SPEC.resources[0]
    # 1000 bytes every 0.05 s: about 20 kB/s, 16 windows of 0.05 s, each above 5 kB/s.
    with paced_server(BLOBS[name]) as steady:
        path = download.download(name, md5, [f"{steady}/1000/0.05/"], tmp_path,
                                 speed_limit=5000, speed_time=0.05)
    assert path.read_bytes() == BLOBS[name]


def test_full_disk_stops_the_download_at_once_with_one_line(tmp_path: Path, server) -> None:
    base, requests = server
    name, md5 = SPEC.resources[0]
    with small_tmpfs(tmp_path / "disk") as disk:
        with pytest.raises(WriteFaultError) as info:
            # endless/ sends 64 MiB of zeros; good/ would fill the disk the same way.
            download.download(name, md5, [f"{base}/endless/", f"{base}/good/"], disk)
        message = str(info.value)
        assert message == (f"cannot write {disk / name}: the disk is full; free some space "
                           "or write to another disk")
        assert [p for p, _ in requests] == [f"/endless/{name}"]  # no mirror's fault
        assert listing(disk) == []
