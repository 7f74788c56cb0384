"""Downloads through a real HTTP server on 127.0.0.1: mirror order, MD5, atomic files."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import sys
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
    make_arrays,
    mirror_server,
    toy_spec,
    write_files,
)
from xpnet.dataset import DataNotFoundError, DatasetError, DownloadError, download, mnist
from xpnet.dataset.mnist import load_mnist
from xpnet.dataset.source import load_raw

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
    assert listing(data) == sorted([*FILES, "toy.npz"])
    for name in FILES:
        assert (data / name).read_bytes() == BLOBS[name]
        assert (data / name).stat().st_mode & 0o777 == 0o644


def test_all_mirrors_bad_lists_each_and_leaves_nothing(tmp_path: Path, server) -> None:
    base, _ = server
    data = tmp_path / "data"
    mirrors = [f"{base}/forbidden/", f"{base}/corrupt/", f"{base}/drop/"]
    with pytest.raises(DownloadError) as info:
        load_raw(SPEC, data_dir=data, mirrors=mirrors)
    message = str(info.value)
    size = len(BLOBS[FILES[0]])
    assert message.startswith(
        f"could not download {FILES[0]}: "
        f"{base}/forbidden/{FILES[0]} (HTTP 403 Forbidden); "
        f"{base}/corrupt/{FILES[0]} (MD5 {_md5_of_corrupt(FILES[0])}, "
        f"expected {SPEC.resources[0][1]}); "
        f"{base}/drop/{FILES[0]} (connection dropped after {size // 2} of {size} bytes); "
        f"Toy no copy found: looked for {FILES[0]}"
    )
    for way_out in ("--data-dir", "XPNET_DATA_DIR", "apt-get install dataset-fashion-mnist"):
        assert way_out in message
    assert "\n" not in message
    assert isinstance(info.value, DatasetError) and isinstance(info.value, OSError)
    assert listing(data) == []


def _md5_of_corrupt(name: str) -> str:
    body = BLOBS[name]
    return hashlib.md5(body[:-9] + bytes([body[-9] ^ 0xFF]) + body[-8:]).hexdigest()


def test_dropped_connection_leaves_nothing(tmp_path: Path, server) -> None:
    base, _ = server
    with pytest.raises(DownloadError, match="connection dropped after"):
        load_raw(SPEC, data_dir=tmp_path / "data", mirrors=[f"{base}/drop/"])
    assert listing(tmp_path / "data") == []
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
    with pytest.raises(DownloadError) as info:
        load_raw(SPEC, data_dir=tmp_path / "data", mirrors=[url])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download {FILES[0]}: {url}{FILES[0]} (")
    assert "refused" in message
    assert listing(tmp_path / "data") == []


def test_interrupt_mid_download_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def interrupted(url, out, name):
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
    monkeypatch.setattr(mnist, "MNIST", dataclasses.replace(mnist.MNIST,
                                                            resources=SPEC.resources))
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
    assert listing(tmp_path / "env" / "toy") == sorted([*FILES, "toy.npz"])

    monkeypatch.delenv("XPNET_DATA_DIR")
    monkeypatch.setattr(mnist, "MNIST", dataclasses.replace(mnist.MNIST,
                                                            resources=SPEC.resources))
    load_mnist(mirrors=[f"{base}/good/"])
    assert listing(tmp_path / "xdg-cache" / "xpnet" / "mnist") == sorted([*FILES, "mnist.npz"])


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


def test_unwritable_target_is_a_download_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DownloadError, match="cannot create .*; pass a writable --data-dir"):
        load_raw(SPEC, data_dir=blocker / "data", mirrors=["http://127.0.0.1:1/"])


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
    size = len(BLOBS[FILES[0]])
    assert terminal.getvalue() == f"\r{FILES[0]} [{'#' * 30}] 100% {size / 1e6:.1f} MB\n"
