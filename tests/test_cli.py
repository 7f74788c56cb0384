"""`xpnet` end to end, as a user runs it: files written, one-line errors, exit codes, signals."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import FASHION_DIR

from xpnet.backend import cuda_unavailable_reason
from xpnet.run_folder import read_checkpoint

FASHION = ("--dataset", "fashion-mnist", "--data-dir", str(FASHION_DIR))


def env_for(extra: dict | None = None) -> dict:
    return {**os.environ, "XPNET_DEVICE": "cpu", **(extra or {})}


def xpnet(*args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "xpnet", *args], capture_output=True,
                          text=True, env=env_for(env), cwd=cwd, timeout=600)


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "xpnet", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_for(), cwd=cwd)


def wait_for_line(proc: subprocess.Popen, prefix: str, limit_s: float = 120) -> str:
    """Read stdout until a line starts with ``prefix`` (bounded in time)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no line {prefix!r}: {proc.stderr.read()}")


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def params_of(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "params.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in ("W1", "b1", "W2", "b2")}


@pytest.mark.slow
def test_train_writes_its_files(fashion, tmp_path) -> None:
    out = tmp_path / "run"
    r = xpnet("train", *FASHION, "--iters", "1200", "--seed", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    epoch_lines = [ln for ln in r.stdout.splitlines() if ln.startswith("train acc, test acc | ")]
    assert len(epoch_lines) == 2  # iterations 0 and 600
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "finished"
    assert metrics["config"]["iters"] == 1200 and metrics["config"]["seed"] == 1
    assert metrics["config"]["device"] == "cpu"
    assert metrics["data"]["directory"] == str(FASHION_DIR)
    assert metrics["data"]["verified"] == "content"
    assert [e["iteration"] for e in metrics["epochs"]] == [0, 600]
    assert len(metrics["train_loss_list"]) == 1200
    assert 0.70 <= metrics["final_test_acc"] <= 1.0  # after the last iteration
    assert metrics["epochs"][0]["test_acc"] < 0.3  # before training: chance
    assert metrics["wall_time_s"] > 0
    for png in ("accuracy.png", "loss.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert {k: v.shape for k, v in params_of(out).items()} == {
        "W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files
    assert f"wrote {out}/metrics.json" in r.stdout and "(seed 1)" in r.stdout


@pytest.mark.slow
def test_training_with_the_numerical_gradient_matches_backprop(fashion, tmp_path) -> None:
    accuracy = {}
    for grad in ("numerical", "backprop"):
        out = tmp_path / grad
        r = xpnet("train", *FASHION, "--grad", grad, "--iters", "300", "--seed", "3",
                  "--out", str(out), "--no-progress")
        assert r.returncode == 0, r.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["config"]["grad"] == grad
        accuracy[grad] = metrics["final_test_acc"]
    assert accuracy["backprop"] > 0.5
    assert abs(accuracy["numerical"] - accuracy["backprop"]) <= 0.01, accuracy


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_saves_and_the_run_resumes_to_the_same_numbers(fashion, tmp_path,
                                                                      signum, code) -> None:
    common = (*FASHION, "--iters", "1300", "--seed", "4", "--no-progress")
    whole = tmp_path / "whole"
    assert xpnet("train", *common, "--out", str(whole)).returncode == 0
    out = tmp_path / "stopped"
    proc = start("train", *common, "--out", str(out))
    wait_for_line(proc, "train acc, test acc | ")  # training has begun
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"continue with: xpnet train --resume {out}" in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["iterations_done"] < 1300
    assert (out / "accuracy.png").is_file() and (out / "params.npz").is_file()
    r = xpnet("train", "--resume", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    for key, value in params_of(whole).items():
        np.testing.assert_array_equal(params_of(out)[key], value)
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (whole, out))
    for key in ("status", "epochs", "final_test_acc", "final_train_acc", "train_loss_list"):
        assert a[key] == b[key], key


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_run_that_resumes_exactly(fashion, tmp_path) -> None:
    common = (*FASHION, "--iters", "1500", "--seed", "8", "--no-progress",
              "--checkpoint-every", "50")
    whole = tmp_path / "whole"
    assert xpnet("train", *common, "--out", str(whole)).returncode == 0
    out = tmp_path / "killed"
    chance = random.Random(20261129)
    proc = start("train", *common, "--out", str(out))
    wait_for_line(proc, "train acc, test acc | ")  # training has begun: a checkpoint exists
    for _ in range(3):  # killed three times, at random moments of training or start-up
        time.sleep(chance.uniform(0.2, 1.0))
        proc.kill()
        proc.communicate(timeout=60)
        state = read_checkpoint(out)  # loadable whenever the kill came
        assert state["history"].iterations < 1500
        assert json.loads((out / "metrics.json").read_text())["status"] == "running"
        proc = start("train", "--resume", str(out), "--no-progress")
        wait_for_line(proc, "xpnet ")  # the resumed run has loaded its data
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    for key, value in params_of(whole).items():
        np.testing.assert_array_equal(params_of(out)[key], value)
    assert json.loads((out / "metrics.json").read_text())["status"] == "finished"
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]  # stale ones removed


@pytest.mark.slow
def test_runs_started_together_get_their_own_folders(fashion, tmp_path) -> None:
    procs = [start("train", *FASHION, "--iters", "20", "--seed", str(s), "--no-progress",
                   cwd=tmp_path) for s in range(3)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 3
    seeds = {json.loads((f / "metrics.json").read_text())["config"]["seed"] for f in folders}
    assert seeds == {0, 1, 2}


@pytest.mark.slow
def test_memory_does_not_grow_with_iterations(fashion, tmp_path) -> None:
    # 10**8 iterations would need 75 GiB of batch indices if drawn up front.
    proc = start("train", *FASHION, "--iters", "100000000", "--out", str(tmp_path / "r"),
                 "--no-progress")
    wait_for_line(proc, "train acc, test acc | ")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr


@pytest.mark.slow
def test_a_batch_too_big_for_memory_is_refused_and_nothing_is_written(fashion, tmp_path) -> None:
    line = one_line_error(xpnet("train", *FASHION, "--batch-size", "300000000",
                                "--out", str(tmp_path / "r")))
    assert "batch_size 300000000 needs about" in line and "GiB" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_gradcheck_prints_the_books_four_small_differences_and_its_seed(fashion) -> None:
    r = xpnet("gradcheck", *FASHION, "--seed", "0")
    assert r.returncode == 0, r.stderr
    assert "seed 0" in r.stdout.splitlines()[0]
    diffs = dict(line.split(":") for line in r.stdout.splitlines()[1:5])
    assert set(diffs) == {"W1", "b1", "W2", "b2"}
    assert r.stdout.splitlines()[5].startswith("OK: every mean difference is below 1e-06")
    # The hidden layer agrees to ~1e-10. The output layer differs by ~1e-7 because the
    # book's loss has log(y + 1e-7), which backprop's (y - t) / B leaves out.
    assert float(diffs["W1"]) < 1e-8 and float(diffs["b1"]) < 1e-8, diffs
    assert float(diffs["W2"]) < 1e-6 and float(diffs["b2"]) < 1e-6, diffs


@pytest.mark.slow
def test_without_mnist_the_default_is_fashion_mnist_and_it_says_so(fashion, tmp_path) -> None:
    # No mirror answers (offline): MNIST cannot be had, so the default falls back.
    env = {"XDG_CACHE_HOME": str(tmp_path / "c"), "XPNET_DATA_DIR": str(tmp_path / "d"),
           "XPNET_MNIST_MIRRORS": "http://127.0.0.1:9/"}
    r = xpnet("gradcheck", env=env)
    assert r.returncode == 0, r.stderr
    assert "MNIST is not on this machine but Fashion-MNIST is: using it" in r.stderr
    assert "samples of fashion-mnist" in r.stdout
    assert "seed " in r.stdout.splitlines()[0]  # a random seed, printed


@pytest.mark.slow
def test_fashion_files_given_as_mnist_are_refused_naming_the_flag(fashion, tmp_path) -> None:
    line = one_line_error(xpnet("train", "--data-dir", str(FASHION_DIR), "--iters", "10",
                                "--out", str(tmp_path / "r")))
    assert "Fashion-MNIST" in line and "--dataset fashion-mnist" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--lr", "abc"], "argument --lr: expected a positive number, got 'abc'"),
        (["train", "--iters", "0"], "argument --iters: expected a positive integer"),
        (["train", "--seed", "-3"], "argument --seed: expected a seed in 0..2**63-1"),
        (["train", "--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["fly"], "invalid choice: 'fly'"),
        (["train", "--device", "tpu"], "unknown device 'tpu': valid values are cpu, cuda"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args, expected, tmp_path) -> None:
    line = one_line_error(xpnet(*args, "--out", str(tmp_path / "o")) if args[0] == "train"
                          else xpnet(*args))
    assert expected in line
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(cuda_unavailable_reason() is None, reason="this machine has CUDA")
def test_cuda_requested_without_cuda_exits_2_with_one_line(tmp_path) -> None:
    line = one_line_error(xpnet("train", "--out", str(tmp_path / "o"),
                                env={"XPNET_DEVICE": "cuda"}))
    assert "CUDA was requested" in line and "(XPNET_DEVICE=cpu)" in line
    assert not (tmp_path / "o").exists()
    # The flag asked for CUDA: the way back is the flag, not the environment variable.
    line = one_line_error(xpnet("train", "--device", "cuda", "--out", str(tmp_path / "o")))
    assert "CUDA was requested" in line and "(--device cpu)" in line
    assert "XPNET_DEVICE" not in line and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("make", "expected"), [
    (lambda tmp: str(tmp / "file" / "run"), "cannot write in"),
    (lambda tmp: "", "empty name"),
    (lambda tmp: str(tmp / "dangling"), "dangling symbolic link"),
    (lambda tmp: "/proc/xpnet-run", "cannot write in /proc/xpnet-run"),
    (lambda tmp: str(tmp / "old"), "already holds files"),
])
def test_an_unusable_output_folder_is_refused_before_loading_data(make, expected,
                                                                  tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "old" / "metrics.json").mkdir(parents=True)  # even a folder of that name
    # The dataset here does not exist: an output check after loading would fail differently.
    line = one_line_error(xpnet("train", "--dataset", "mnist", "--out", make(tmp_path),
                                env={"XPNET_MNIST_MIRRORS": "http://127.0.0.1:9/",
                                     "XDG_CACHE_HOME": str(tmp_path / "env" / "c"),
                                     "XPNET_DATA_DIR": str(tmp_path / "env" / "d")}))
    assert expected in line
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "env") == [
        "dangling", "file", "old"]
    assert list((tmp_path / "old").iterdir()) == [tmp_path / "old" / "metrics.json"]


def test_no_data_offline_exits_2_naming_the_ways_out(tmp_path) -> None:
    env = {"XPNET_MNIST_MIRRORS": "http://127.0.0.1:9/", "XDG_CACHE_HOME": str(tmp_path),
           "XPNET_DATA_DIR": str(tmp_path / "data")}
    line = one_line_error(xpnet("train", "--dataset", "mnist", "--out", str(tmp_path / "o"),
                                env=env))
    assert line.startswith("xpnet train: error: MNIST is not on this machine")
    assert "train-images-idx3-ubyte.gz" in line and "passed as --data-dir" in line
    assert "XPNET_DATA_DIR" in line and "XPNET_MNIST_MIRRORS" in line
    # the dataset's own terms are translated into flags
    assert "data_dir" not in line and "load_fashion_mnist" not in line
    if FASHION_DIR.is_dir():
        assert "Fashion-MNIST is on this machine: --dataset fashion-mnist uses it" in line
        assert "apt-get" not in line
    assert len(line) < 400
    assert not (tmp_path / "o").exists()  # a failed run leaves no empty output folder


def test_resume_of_a_folder_without_a_checkpoint_is_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    line = one_line_error(xpnet("train", "--resume", str(tmp_path)))
    assert "holds no checkpoint.npz" in line


def test_resume_refuses_new_settings_instead_of_ignoring_them(tmp_path) -> None:
    line = one_line_error(xpnet("train", "--resume", str(tmp_path), "--iters", "20000",
                                "--lr", "0.5"))
    assert "--resume continues a run with its own settings; drop --iters, --lr" in line


def test_version_and_help_work_without_a_writable_home() -> None:
    env = {"HOME": "/proc/nonexistent", "XDG_CACHE_HOME": "", "NUMBA_CACHE_DIR": ""}
    r = xpnet("--version", env=env)
    assert r.returncode == 0 and r.stdout.startswith("xpnet ")
    r = xpnet("--help", env=env)
    assert r.returncode == 0 and "`" not in r.stdout
    for command in ("train", "gradcheck", "eval", "predict", "sweep"):
        assert command in r.stdout
    r = xpnet("train", "--help", env=env)
    assert r.returncode == 0
    for flag in ("--device", "--dataset", "--data-dir", "--iters", "--batch-size", "--lr",
                 "--hidden", "--seed", "--dtype", "--grad", "--out", "--resume",
                 "--checkpoint-every", "--weight-init-std"):
        assert flag in r.stdout
    r = xpnet("gradcheck", "--help", env=env)
    assert "random, printed" in r.stdout and "recorded" not in r.stdout


def test_ctrl_c_during_start_up_is_one_line(tmp_path) -> None:
    proc = start("train", "--dataset", "fashion-mnist", "--iters", "5", cwd=tmp_path)
    time.sleep(0.3)  # still importing or loading
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert proc.returncode in (0, 130), stderr


def test_an_internal_error_is_not_dressed_up_as_a_usage_error(monkeypatch, tmp_path) -> None:
    # Only typed user errors become one line and exit 2; a bug keeps its traceback.
    from xpnet import cli, run

    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside")

    monkeypatch.setattr(run, "load_data", broken)
    with pytest.raises(ValueError, match="a bug deep inside"):
        cli.main(["train", "--dataset", "fashion-mnist", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()  # and the empty folder it claimed is gone


def test_output_piped_into_head_ends_quietly(monkeypatch) -> None:
    # xpnet eval RUN | head -3: the reader closes the pipe while xpnet still writes.
    from xpnet import cli

    read, write = os.pipe()
    os.close(read)
    stdout = os.fdopen(write, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        code = cli.main(["sweep", "--dataset", "fashion-mnist", "--lr", "0.1,1", "--dry-run"])
        assert code == 128 + signal.SIGPIPE
    finally:
        stdout.close()


def test_dataset_errors_are_worded_for_the_command_line_from_their_fields(tmp_path) -> None:
    # The dataset package writes its sentence once; the CLI passes its own ways out.
    from xpnet.dataset.errors import Absent, DataNotFoundError, DownloadError, Unwritable

    from xpnet.cli.common import error_line

    absent = Absent(title="MNIST", name="mnist", files=("a.gz", "b.gz"),
                    why="downloading is off", data_dir_env="XPNET_DATA_DIR",
                    others=(("fashion-mnist", "Fashion-MNIST", "load_fashion_mnist()"),))
    err = DataNotFoundError(absent=absent, dataset="mnist")
    assert str(err) == ("MNIST is not on this machine and downloading is off. Put a.gz, b.gz "
                        "in data_dir or $XPNET_DATA_DIR/mnist, or allow downloading. "
                        "Fashion-MNIST is on this machine: load_fashion_mnist() reads it.")
    assert error_line(err) == ("MNIST is not on this machine and downloading is off. Put "
                               "a.gz, b.gz in a folder passed as --data-dir, or in "
                               "$XPNET_DATA_DIR/mnist, or allow downloading. Fashion-MNIST "
                               "is on this machine: --dataset fashion-mnist uses it.")
    problem = f"cannot download MNIST into {tmp_path}: not writable"
    err = DownloadError(unwritable=Unwritable(tmp_path, "MNIST", problem, "XPNET_DATA_DIR"))
    assert str(err) == f"{problem}; set data_dir or XPNET_DATA_DIR to a writable folder"
    assert error_line(err) == (f"{problem}; pass --data-dir or set XPNET_DATA_DIR to a "
                               "writable folder")


def test_every_user_error_is_one_class_for_the_command_line() -> None:
    from xpnet.dataset.errors import DatasetError

    from xpnet.errors import (
        DeviceError,
        DivergenceError,
        InputError,
        ModelFileError,
        RunFolderError,
        UserError,
    )
    from xpnet.sweep import SweepError

    for kind in (DatasetError, DeviceError, DivergenceError, InputError, ModelFileError,
                 RunFolderError, SweepError):
        assert issubclass(kind, UserError), kind
    assert not issubclass(UserError, ValueError)  # a bug's ValueError is not a user error
