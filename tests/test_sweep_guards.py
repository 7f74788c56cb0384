"""What xpnet sweep refuses or repairs: a folder another command holds, another sweep's
folder, other data, hand-edited trials, trials that cannot be built, too many workers,
schedulers that do not answer, and the lines it prints (toy data: seconds a sweep)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from run_toys import toy_dataset

from xpnet import cli
from xpnet.errors import InputError
from xpnet.run import load_data, provenance
from xpnet.run_config import RunConfig
from xpnet.sweep import CONNECT_TIMEOUT_S, SweepError, probe, trial_keys
from xpnet.sweep_report import accuracy_figure, by_setting_figure, rows


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return toy_dataset(tmp_path_factory.mktemp("toy") / "data")


def toy_args(toy: Path, workers: bool = True) -> list[str]:
    return ["--dataset", "fashion-mnist", "--data-dir", str(toy), "--batch-size", "20",
            "--hidden", "8", "--seed", "1", "--no-progress",
            *(["--workers", "1"] if workers else [])]


def run_cli(*args: object) -> tuple[int, str, str]:
    """``xpnet sweep ARGS`` here: (status, stdout, stderr but the toy data's warning)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cli.main(["sweep", *map(str, args)])
    return status, stdout.getvalue(), unwarned(stderr.getvalue())


def unwarned(stderr: str) -> str:
    """``stderr`` without the warning that the toy files are no known data set's."""
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not (line.startswith("xpnet: warning: the Fashion-MNIST files in")
                           and "unverified" in line))


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- one process, one sweep, one data set per folder ---------------------------------------

def test_a_second_sweep_on_the_same_out_is_refused_at_once_naming_the_first(toy, tmp_path):
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "xpnet", "sweep", *toy_args(toy), "--lr", "0.1",
               "--iters", "10,1000000", "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "results.csv").exists():  # the first one is at work
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        t0 = time.monotonic()
        second = subprocess.run(command, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
        assert second.returncode == 2, second.stderr
        assert unwarned(second.stderr) == (f"xpnet sweep: error: {out} is in use by another xpnet "
                                 f"process (pid {first.pid}): wait for it to end, or use "
                                 "another sweep folder\n")
        assert took < 15  # no cluster started, no trial run: Python's start and the data
        os.killpg(first.pid, signal.SIGINT)
        _, stderr = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate()
    assert first.returncode == 130, stderr
    assert unwarned(stderr).startswith("xpnet sweep: interrupted;")
    summary = json.loads((out / "sweep.json").read_text())  # the first sweep's, whole
    assert summary["command"][-6:] == command[-6:] and summary["counts"]["trials"] == 2


def test_another_sweep_into_an_out_is_refused_and_the_same_one_continues(toy, tmp_path):
    out = tmp_path / "sweep"
    status, stdout, stderr = run_cli(*toy_args(toy), "--lr", "0.1", "--iters", "20",
                                     "--out", out)
    assert status == 0, stderr
    before = snapshot(out)
    status, _, stderr = run_cli(*toy_args(toy), "--lr", "0.2", "--iters", "20", "--out", out)
    assert status == 2
    assert stderr.startswith(f"xpnet sweep: error: {out} holds another sweep")
    assert stderr.endswith("; pass a new --out, or that sweep's own command to continue "
                           "it\n") and stderr.count("\n") == 1
    assert snapshot(out) == before
    status, stdout, stderr = run_cli(*toy_args(toy), "--lr", "0.1", "--iters", "20",
                                     "--out", out)
    assert status == 0, stderr
    assert "1 trial, 1 already done; 0 workers (none)" in stdout
    # A sweep of an xpnet whose trial keys named no data: said so, not "another sweep".
    summary = json.loads((out / "sweep.json").read_text())
    del summary["data"]
    for trial in summary["trials"]:
        trial["trial"] = "0123456789ab"
    (out / "sweep.json").write_text(json.dumps(summary))
    status, _, stderr = run_cli(*toy_args(toy), "--lr", "0.1", "--iters", "20", "--out", out)
    assert status == 2 and f"{out} holds a sweep of an older xpnet" in stderr


def test_a_sweep_on_other_data_is_refused_and_keys_name_the_data(toy, tmp_path):
    other = toy_dataset(tmp_path / "other", seed=6)  # same names, other contents
    out = tmp_path / "sweep"
    assert run_cli(*toy_args(toy), "--lr", "0.1", "--iters", "20", "--out", out)[0] == 0
    before = snapshot(out)
    args = toy_args(toy)
    args[args.index(str(toy))] = str(other)
    status, _, stderr = run_cli(*args, "--lr", "0.1", "--iters", "20", "--out", out)
    assert status == 2 and stderr.count("\n") == 1
    assert f"{out} holds a sweep on other data (fashion-mnist in {toy}" in stderr
    assert f"now {other}, content " in stderr
    assert snapshot(out) == before
    config = RunConfig(dataset="fashion-mnist", data_dir=str(toy))
    a = provenance(load_data(config))
    b = provenance(load_data(RunConfig(dataset="fashion-mnist", data_dir=str(other))))
    assert trial_keys([config], a) != trial_keys([config], b)


def test_a_relative_data_dir_is_made_absolute(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(toy.parent)
    out = tmp_path / "sweep"
    args = toy_args(toy)
    args[args.index(str(toy))] = toy.name
    assert run_cli(*args, "--lr", "0.1", "--iters", "20", "--out", out)[0] == 0
    trial = json.loads((out / "sweep.json").read_text())["trials"][0]
    assert trial["config"]["data_dir"] == str(toy)


def test_hand_edited_or_damaged_trials_run_again(toy, tmp_path):
    out = tmp_path / "sweep"
    args = [*toy_args(toy), "--lr", "0.1,0.2,0.3,0.4,0.5,0.6", "--iters", "20", "--out", out]
    assert run_cli(*args)[0] == 0
    files = sorted((out / "trials").glob("*/metrics.json"))
    good = {p: json.loads(p.read_text()) for p in files}
    edits = [b"[]", b"garbage\xff", {"final_test_acc": None}, {"config": "lr 5"},
             {"status": "running"}]
    for path, edit in zip(files, edits, strict=False):  # the last trial stays as it was
        if isinstance(edit, bytes):
            path.write_bytes(edit)
        else:
            doc = {k: v for k, v in {**good[path], **edit}.items() if v is not None}
            path.write_text(json.dumps(doc))
    status, stdout, stderr = run_cli(*args)
    assert status == 0, stderr
    assert "6 trials, 1 already done" in stdout
    for path, doc in good.items():
        again = json.loads(path.read_text())
        assert (again["config"], again["final_test_acc"]) == (doc["config"],
                                                              doc["final_test_acc"])


def test_a_trial_that_cannot_be_built_is_failed_once_in_one_line(toy, tmp_path):
    out = tmp_path / "sweep"
    args = [*toy_args(toy), "--lr", "0.1", "--iters", "20", "--out", out]
    args[args.index("--hidden") + 1] = "8,1000000000"  # 7.8e9 weights: does not fit
    status, stdout, stderr = run_cli(*args)
    assert status == 0, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Compute Failed" not in stderr, stderr
    assert lines[0].startswith("xpnet sweep: trial ")
    assert "(hidden 1000000000) failed: " in lines[0]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["counts"] == {"trials": 2, "finished": 1, "failed": 1, "error": 0,
                                 "pending": 0}
    status, stdout, stderr = run_cli(*args)  # failed is an outcome: not run again
    assert (status, stderr) == (0, "")
    assert "2 trials, 2 already done" in stdout


# -- bounded: workers and schedulers ------------------------------------------------------

def test_workers_are_capped_by_the_cores_and_the_trials(toy, tmp_path):
    from dask.system import cpu_count

    out = tmp_path / "sweep"
    args = toy_args(toy, workers=False)
    status, stdout, stderr = run_cli(*args, "--lr", "0.1", "--iters", "20", "--workers",
                                     "1000", "--out", out)
    assert status == 0, stderr
    cores = cpu_count()
    assert stderr == (f"xpnet sweep: --workers 1000: this machine has {cores} "
                      f"core{'s' if cores > 1 else ''}; using 1\n")  # one trial: one worker
    assert json.loads((out / "sweep.json").read_text())["engine"]["workers"] == 1
    status, _, stderr = run_cli(*args, "--workers", "100000", "--out", tmp_path / "s2")
    assert status == 2 and "--workers 100,000 is more than a local cluster can run" in stderr
    assert not (tmp_path / "s2").exists()


class FakeServer:
    """A TCP server on 127.0.0.1 that accepts and then stays silent or sends ``reply``."""

    def __init__(self, reply: bytes | None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply, self.done, self.conns = reply, threading.Event(), []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.conns.append(conn)
            if self.reply is not None:
                conn.sendall(self.reply)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize(("reply", "fragment"), [
    (None, "no Dask scheduler answered at {address} within 1 s"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "{address} is not a Dask scheduler"),
    (b"\xff" * 64, "{address} is not a Dask scheduler"),
])
def test_a_scheduler_that_does_not_answer_is_given_up_within_the_deadline(reply, fragment):
    with FakeServer(reply) as server:
        t0 = time.monotonic()
        with pytest.raises(SweepError) as info:
            probe(server.address, timeout=1)
        assert time.monotonic() - t0 < 3
    assert fragment.format(address=server.address) in str(info.value)
    assert "\n" not in str(info.value)


def test_the_command_gives_up_a_garbage_scheduler_in_one_line(toy, tmp_path):
    with FakeServer(b"HTTP/1.1 400 Bad Request\r\n\r\n") as server:
        status, stdout, stderr = run_cli(
            *toy_args(toy, workers=False), "--iters", "20",
            "--scheduler", server.address, "--out", tmp_path / "sweep")
    assert status == 2 and stdout == ""
    assert stderr == (f"xpnet sweep: error: {server.address} is not a Dask scheduler (it "
                      "answered in another protocol: MemoryError); fix --scheduler or "
                      "$XPNET_SCHEDULER\n")
    assert not (tmp_path / "sweep").exists()
    assert CONNECT_TIMEOUT_S <= 10


@pytest.mark.parametrize(("address", "fragment"), [
    ("tls://127.0.0.1:1", "is a TLS address but Dask has no TLS settings here"),
    ("127.0.0.1", "is not a Dask address"),
])
def test_scheduler_addresses_that_cannot_work_are_refused_at_once(address, fragment):
    with pytest.raises(SweepError, match=fragment):
        probe(address, timeout=1)


# -- what it prints ------------------------------------------------------------------------

def test_a_mistake_prints_only_the_error_not_the_dataset_note(toy, tmp_path, monkeypatch):
    from xpnet.cli import common
    from xpnet.cli import sweep as cli_sweep

    def pick_with_a_note(args):  # as on a machine with Fashion-MNIST only
        common.note("MNIST is not on this machine but Fashion-MNIST is: using it")
        return "fashion-mnist"

    monkeypatch.setattr(cli_sweep, "pick_dataset", pick_with_a_note)
    args = [a for a in toy_args(toy) if a not in ("--dataset", "fashion-mnist")]
    status, _, stderr = run_cli(*args, "--seed", "0-10000", "--out", tmp_path / "s")
    assert status == 2 and stderr.count("\n") == 1 and "pass --yes" in stderr
    status, stdout, stderr = run_cli(*args, "--iters", "20", "--out", tmp_path / "s")
    assert status == 0
    assert stderr == "xpnet: MNIST is not on this machine but Fashion-MNIST is: using it\n"
    assert "Dask dashboard at http://127.0.0.1:" in stdout  # and where to watch it


def test_eval_samples_is_swept_and_shown_where_it_varies(toy, tmp_path):
    status, stdout, stderr = run_cli(*toy_args(toy), "--eval-samples", "0,500", "--dry-run")
    assert (status, stderr) == (0, "")
    lines = stdout.splitlines()
    assert lines[0].split() == ["trial", "eval_samples"]
    assert [line.split()[1] for line in lines[1:3]] == ["0", "500"]
    assert lines[1].split()[0] != lines[2].split()[0] and lines[-1] == "2 trials"
    status, stdout, _ = run_cli(*toy_args(toy), "--lr", "0.1,1", "--eval-samples", "5",
                                "--dry-run")
    assert status == 0 and stdout.splitlines()[0].split() == ["trial", "lr"]


def test_a_negative_eval_samples_is_one_line_exit_2(toy, tmp_path):
    status, stdout, stderr = run_cli(*toy_args(toy), "--eval-samples", "0,-1", "--dry-run")
    assert (status, stdout) == (2, "")
    assert stderr.count("\n") == 1
    assert "--eval-samples: -1 is out of range (it must be >= 0)" in stderr


def test_trials_that_differ_only_by_seed_look_different_and_pictures_name_the_data():
    configs = [RunConfig(dataset="fashion-mnist", lr=lr, seed=seed, iters=300)
               for lr in (0.1, 1.0) for seed in (0, 1, 2)]
    keys = [f"k{i}" for i in range(len(configs))]
    docs = {k: {"status": "finished", "final_test_acc": 0.5, "final_train_acc": 0.5,
                "iter_per_epoch": 100, "iterations_done": 300, "wall_time_s": 1.0,
                "epochs": [{"iteration": i * 100, "train_acc": 0.1 * i, "test_acc": 0.1 * i}
                           for i in range(3)]} for k in keys}
    table = rows(configs, keys, docs)
    fig = accuracy_figure(table, docs, ["lr", "seed"])
    looks = [(line.get_color(), line.get_linestyle(), line.get_marker())
             for line in fig.axes[0].get_lines()]
    assert len(set(looks)) == len(configs)  # a legend can tell every trial apart
    assert "Fashion-MNIST, 300 iterations" in fig.axes[0].get_title()
    assert "Fashion-MNIST, 300 iterations" in by_setting_figure(table, ["lr", "seed"]
                                                                 )._suptitle.get_text()
    with pytest.raises(InputError):  # the toy's settings are checked like any run's
        RunConfig(dataset="fashion-mnist", lr=-1)
