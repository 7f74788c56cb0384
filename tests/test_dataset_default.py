"""Which data a command reads when the user names none, and the folder the user named.

The book's reader expects MNIST: found here or downloaded. Only offline, with a
Fashion-MNIST on the machine, does the command line fall back to it, with one note. A
``data_dir`` given is where the files are or go: a missing folder is named as missing,
and a copy read from elsewhere is named with its files. Mirrors are local HTTP servers.
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from pathlib import Path

import pytest
from dataset_helpers import (
    FILES,
    blobs_for,
    flat,
    isolate,
    listing,
    load_raw,
    make_arrays,
    mirror_server,
    toy_spec,
    write_files,
)
from xpnet.dataset import (
    DataElsewhereWarning,
    DataNotFoundError,
    DownloadError,
    source,
    specs,
)
from xpnet.dataset.mnist import load_mnist

from xpnet import cli
from xpnet.cli.common import error_line, pick_dataset

pytestmark = pytest.mark.timeout(120)

DIGITS = make_arrays(seed=31)  # served as "MNIST"
CLOTHES = make_arrays(seed=32)  # the machine's "Fashion-MNIST"
DIGIT_BLOBS, CLOTHES_BLOBS = blobs_for(DIGITS), blobs_for(CLOTHES)
TOY = toy_spec(DIGIT_BLOBS)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)
    # MNIST's official MD5s cannot be served from here: MNIST takes the toy files' sums.
    monkeypatch.setitem(specs.SPECS, "mnist", dataclasses.replace(
        specs.MNIST, resources=TOY.resources, content_md5=TOY.content_md5))


@pytest.fixture
def system_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Fashion-MNIST installed on the machine (a system folder)."""
    system = tmp_path / "usr-share" / "fashion-mnist"
    write_files(system, CLOTHES_BLOBS)
    monkeypatch.setattr(source, "SYSTEM_DIRS", {"fashion-mnist": (system,)})
    return system


def args(dataset: str | None = None, data_dir: Path | None = None) -> argparse.Namespace:
    return argparse.Namespace(dataset=dataset, data_dir=data_dir)


def mnist_cache(tmp_path: Path) -> Path:
    return tmp_path / "xdg-cache" / "xpnet" / "mnist"


def test_online_the_default_downloads_mnist_though_fashion_is_here(
        tmp_path, system_fashion, monkeypatch, capsys) -> None:
    with mirror_server(DIGIT_BLOBS) as (base, requests):
        monkeypatch.setenv("XPNET_MNIST_MIRRORS", f"{base}/good/")
        assert pick_dataset(args()) == "mnist"
        assert [p for p, _ in requests] == [f"/good/{name}" for name in FILES]
        assert listing(mnist_cache(tmp_path)) == sorted(FILES)
        assert capsys.readouterr().err == ""
        assert pick_dataset(args()) == "mnist"  # found now: no second download
        assert len(requests) == len(FILES)


def test_the_default_end_to_end_trains_on_downloaded_mnist(
        tmp_path, system_fashion, monkeypatch, capsys) -> None:
    with mirror_server(DIGIT_BLOBS) as (base, _):
        monkeypatch.setenv("XPNET_MNIST_MIRRORS", f"{base}/good/")
        assert cli.main(["gradcheck", "--seed", "0", "--samples", "2", "--hidden", "3"]) == 0
    out, err = capsys.readouterr()
    assert "samples of mnist," in out and err == ""


def test_offline_the_default_falls_back_to_fashion_with_one_note(
        tmp_path, system_fashion, capsys) -> None:
    assert pick_dataset(args()) == "fashion-mnist"  # the isolated mirrors: a closed port
    [line] = capsys.readouterr().err.splitlines()
    assert line == ("xpnet: MNIST is not on this machine but Fashion-MNIST is: using it, as "
                    "MNIST could not be downloaded (no network?); pass --dataset mnist or "
                    "--dataset fashion-mnist to choose")
    assert not mnist_cache(tmp_path).exists()  # the download folder went again

    assert cli.main(["gradcheck", "--seed", "0", "--samples", "2", "--hidden", "3"]) == 0
    out, err = capsys.readouterr()
    # The note once; besides it only warnings (the test files' "unverified", which Python
    # shows once per place, so not again when another test said it first).
    notes = [line for line in err.splitlines() if not line.startswith("xpnet: warning:")]
    assert "samples of fashion-mnist," in out
    assert len(notes) == 1 and notes[0].startswith("xpnet: MNIST is not on this machine but")


def test_offline_without_fashion_the_default_is_an_error_about_mnist(tmp_path, capsys) -> None:
    with pytest.raises(DownloadError) as info:
        pick_dataset(args())
    assert error_line(info.value).startswith(
        "MNIST is not on this machine and could not be downloaded (no network?). Put ")
    assert capsys.readouterr().err == ""


def test_an_unwritable_cache_is_an_error_not_a_fallback(
        tmp_path, system_fashion, monkeypatch, capsys) -> None:
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    with pytest.raises(DownloadError, match="cannot create .*to a writable folder$"):
        pick_dataset(args())
    assert capsys.readouterr().err == ""


def test_a_named_dataset_or_folder_is_never_second_guessed(tmp_path, system_fashion,
                                                           monkeypatch, capsys) -> None:
    with mirror_server(DIGIT_BLOBS) as (base, requests):
        monkeypatch.setenv("XPNET_MNIST_MIRRORS", f"{base}/good/")
        assert pick_dataset(args("fashion-mnist")) == "fashion-mnist"
        assert pick_dataset(args("mnist")) == "mnist"
        # --data-dir: the folder decides (loading names it in any error); nothing fetched here
        assert pick_dataset(args(data_dir=tmp_path / "mine")) == "mnist"
        assert requests == []
    assert capsys.readouterr().err == ""


def test_load_mnist_offline_never_returns_fashion(tmp_path, system_fashion) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no copy read from elsewhere either
        for kwargs in ({}, {"data_dir": empty}, {"download": False}):
            with pytest.raises((DownloadError, DataNotFoundError)) as info:
                load_mnist(**kwargs)
            assert str(info.value).startswith("MNIST is not on this machine"), kwargs
            assert "Fashion-MNIST is on this machine: load_fashion_mnist() reads it" in str(
                info.value)


# ------------------------------------------------------------------ the folder given


def test_a_missing_data_dir_is_named_first_in_the_api_and_the_cli(tmp_path) -> None:
    missing = tmp_path / "nonexistent"
    files = ", ".join(FILES)
    with pytest.raises(DownloadError) as info:
        load_mnist(data_dir=missing)
    assert str(info.value) == (
        f"data_dir {missing} does not exist and MNIST could not be downloaded into it (no "
        f"network?): pass the folder that holds the MNIST files ({files})")
    assert error_line(info.value) == (
        f"--data-dir {missing} does not exist and MNIST could not be downloaded into it (no "
        f"network?): pass the folder that holds the MNIST files ({files})")
    assert info.value.details and "refused" in info.value.details[0]
    assert not missing.exists()
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(data_dir=missing, download=False)
    assert error_line(info.value) == (
        f"--data-dir {missing} does not exist and downloading is off: pass the folder that "
        f"holds the MNIST files ({files})")


def test_a_missing_data_dir_in_the_command_line_is_one_line(tmp_path, capsys) -> None:
    missing = tmp_path / "nonexistent"
    assert cli.main(["gradcheck", "--data-dir", str(missing)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"xpnet gradcheck: error: --data-dir {missing} does not exist "
                           "and MNIST could not be downloaded into it")


def test_online_an_empty_data_dir_receives_the_download(tmp_path, system_fashion) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    # the Fashion-MNIST spec with the toy clothes' sums, served by the mirror
    clothes = toy_spec(CLOTHES_BLOBS, "fashion-mnist")
    spec = dataclasses.replace(specs.FASHION_MNIST, resources=clothes.resources,
                               content_md5=clothes.content_md5)
    with mirror_server(CLOTHES_BLOBS) as (base, requests), warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = source.load_spec(spec, data_dir=empty, mirrors=[f"{base}/good/"])
    assert ds.directory == empty and listing(empty) == sorted(FILES)
    assert len(requests) == len(FILES)


def test_offline_an_empty_data_dir_reads_the_copy_elsewhere_naming_its_files(
        tmp_path, system_fashion) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    spec = dataclasses.replace(specs.FASHION_MNIST, resources=toy_spec(CLOTHES_BLOBS).resources)
    with pytest.warns(DataElsewhereWarning) as caught:
        raw = load_raw(spec, data_dir=empty)  # the isolated mirrors: a closed port
    for key, value in flat(CLOTHES).items():
        assert (raw[key] == value).all()
    [warning] = [w for w in caught if w.category is DataElsewhereWarning]
    assert str(warning.message) == (
        f"{empty} does not hold the Fashion-MNIST files and they could not be downloaded (no "
        f"network?): read the copy in {system_fashion} ({', '.join(FILES)})")
    assert listing(empty) == []

    with pytest.warns(DataElsewhereWarning, match=f"^{tmp_path / 'typo'} does not exist and "
                                                  "downloading is off: read the copy in "):
        load_raw(spec, data_dir=tmp_path / "typo", download=False)
    assert not (tmp_path / "typo").exists()


def test_offline_a_missing_data_dir_with_a_cached_copy(tmp_path) -> None:
    write_files(mnist_cache(tmp_path), DIGIT_BLOBS)  # MNIST downloaded on an earlier day
    with pytest.warns(DataElsewhereWarning, match="MNIST could not be downloaded into it"):
        (x, _), _ = load_mnist(normalize=False, data_dir=tmp_path / "new")
    assert (x == flat(DIGITS)["x_train"]).all()

