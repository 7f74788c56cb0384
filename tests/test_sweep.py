"""xpnet sweep on real Dask clusters (loopback only) and the real Fashion-MNIST files.

Every sweep here must give the numbers of a plain loop of ``run(config, data=...)`` in
this process, on one core like a worker: bit for bit, whichever worker ran a trial, and
even when a worker is killed in the middle.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support import DASK, FASHION_DIR, require_fashion_mnist, start_logged, stop_processes

from xpnet import cli
from xpnet.run import load_data, provenance, run
from xpnet.run_config import RunConfig
from xpnet.sweep import one_core, sweep, trial_device, trial_keys
from xpnet.sweep_report import COLUMNS
from xpnet.sweep_spec import parse, trials
from xpnet.trainer import DivergenceError

# 2 learning rates x 2 sizes, short; lr 1e308 overflows to a NaN loss within 3 steps
GRID = ["--lr", "0.1,1e308", "--hidden", "20,30", "--seed", "3", "--iters", "200"]
DATA = ["--dataset", "fashion-mnist", "--data-dir", str(FASHION_DIR)]


def grid_configs() -> list[RunConfig]:
    specs = {"lr": parse("lr", "0.1,1e308"), "hidden": parse("hidden", "20,30"),
             "seed": parse("seed", "3"), "iters": parse("iters", "200")}
    base = {"dataset": "fashion-mnist", "device": "cpu", "data_dir": str(FASHION_DIR)}
    return trials(base, specs, None, sweep_seed=0)


def grid_keys() -> list[str]:
    """The trials' keys: their settings and the content identity of the real files."""
    data = load_data(RunConfig(dataset="fashion-mnist", data_dir=str(FASHION_DIR)))
    return trial_keys(grid_configs(), provenance(data))


@pytest.fixture(scope="module")
def data():
    require_fashion_mnist()
    return load_data(RunConfig(dataset="fashion-mnist", data_dir=str(FASHION_DIR)))


@pytest.fixture(scope="module")
def reference(data):
    """{trial key: RunResult, or the one-line error of a diverged trial}, one at a time."""
    expected = {}
    for key, config in zip(grid_keys(), grid_configs(), strict=True):
        with one_core(), np.errstate(over="ignore", invalid="ignore"):  # lr 1e308 overflows
            try:
                expected[key] = run(config, data=data)
            except DivergenceError as err:
                expected[key] = " ".join(str(err).split())
    assert sum(isinstance(v, str) for v in expected.values()) == 2  # the 1e308 ones
    return expected


@pytest.fixture(scope="module")
def local_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        yield client


def assert_like_reference(out: Path, reference: dict) -> None:
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["trial"] for r in rows] == grid_keys()
    assert list(rows[0]) == list(COLUMNS)
    for row in rows:
        expected = reference[row["trial"]]
        folder = out / "trials" / row["trial"]
        doc = json.loads((folder / "metrics.json").read_text())
        if isinstance(expected, str):
            assert (row["status"], doc["status"]) == ("failed", "failed")
            assert row["error"] == doc["error"] == expected
            assert "training diverged" in expected
            continue
        h = expected.history
        assert (row["status"], doc["status"]) == ("finished", "finished")
        assert sorted(p.name for p in folder.iterdir()) == [
            "accuracy.png", "checkpoint.npz", "loss.png", "metrics.json", "params.npz"]
        assert [e["train_acc"] for e in doc["epochs"]] == h.train_acc_list
        assert [e["test_acc"] for e in doc["epochs"]] == h.test_acc_list
        assert doc["train_loss_list"] == h.train_loss_list
        assert doc["final_test_acc"] == expected.final_test_acc
        assert doc["final_train_acc"] == expected.final_train_acc
        assert float(row["final_test_acc"]) == expected.final_test_acc
        assert doc["config"] == expected.config.to_dict()
        assert doc["environment"]["blas_threads"] in (1, None)
        assert row["worker"].startswith("tcp://127.0.0.1:")
        with np.load(folder / "params.npz", allow_pickle=False) as params:
            for key, value in expected.params.items():
                np.testing.assert_array_equal(params[key], value)
    for picture in ("accuracy.png", "by_setting.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["status"] == "finished"
    assert summary["counts"] == {"trials": 4, "finished": 2, "failed": 2, "error": 0,
                                 "pending": 0}
    assert summary["swept"] == ["lr", "hidden"]


def test_local_cluster_equals_a_sequential_loop_and_reruns_only_what_is_missing(
        tmp_path, data, reference, local_client):
    out = tmp_path / "sweep"
    table = sweep(grid_configs(), out=out, client=local_client, data=data)
    assert [r["status"] for r in table] == ["finished", "finished", "failed", "failed"]
    assert_like_reference(out, reference)
    # Again: nothing to run, so no cluster is needed; every file stays as it was.
    before = {p: p.read_bytes() for p in (out / "trials").glob("*/*")}
    sweep(grid_configs(), out=out, client=None)
    assert {p: p.read_bytes() for p in (out / "trials").glob("*/*")} == before
    # A trial lost (its folder half-written, say) runs again, alone.
    lost = grid_keys()[1]
    (out / "trials" / lost / "metrics.json").unlink()
    kept = out / "trials" / grid_keys()[0] / "metrics.json"
    kept_bytes = kept.read_bytes()
    sweep(grid_configs(), out=out, client=local_client, data=data)
    assert kept.read_bytes() == kept_bytes
    assert_like_reference(out, reference)


@pytest.mark.slow
def test_a_killed_worker_changes_nothing(tmp_path, data, reference, local_client):
    out = tmp_path / "sweep"
    pids = local_client.run(os.getpid)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            sweep(grid_configs(), out=out, client=local_client, data=data)
        except BaseException as err:  # re-raised in the test's thread below
            errors.append(err)

    thread = threading.Thread(target=go)
    thread.start()
    deadline = time.monotonic() + 120
    busy = []
    while not busy and time.monotonic() < deadline and thread.is_alive():
        busy = [w for w, tasks in local_client.processing().items()
                if any(str(t).startswith("xpnet-trial-") for t in tasks)]
        time.sleep(0.05)
    assert busy, "no trial started"
    os.kill(pids[busy[0]], signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive() and not errors, errors
    assert pids[busy[0]] not in local_client.run(os.getpid).values()
    assert_like_reference(out, reference)


def run_cli(*args: str) -> tuple[int, str, str]:
    """``xpnet sweep ARGS`` in this process: (status, stdout, stderr)."""
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cli.main(["sweep", *args])
    return status, stdout.getvalue(), stderr.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("args", "fragment"), [
    (["--lr", ""], "--lr is empty"),
    (["--lr", "0.1,,1"], "empty item"),
    (["--seed", "5-2"], "the range '5-2' is empty"),
    (["--lr", "log:1e-4"], "is not a distribution"),
    (["--lr", "log:1e-4:1"], "needs --trials"),
    (["--seed", "0-10000"], "10,001 trials, more than 10,000; pass --yes"),
    (["--scheduler", "tcp://127.0.0.1:{port}"], "cannot reach the Dask scheduler"),
    (["--scheduler", "tcp://127.0.0.1:{port}", "--workers", "2"], "--workers sizes the local"),
    (["--scheduler", "tcp://127.0.0.1:{port}", "--device", "auto"], "--device auto could mean"),
    (["--scheduler", "tcp://127.0.0.1:{port}", "--device", "gpu"], "unknown device 'gpu'"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, fragment):
    out = tmp_path / "sweep"
    args = [a.format(port=free_port()) for a in args]  # a port nobody listens on
    status, stdout, stderr = run_cli(*DATA, "--iters", "10", *args, "--out", str(out))
    assert status == 2
    assert stderr.startswith("xpnet sweep: error: ") and stderr.count("\n") == 1, stderr
    assert fragment in stderr
    assert not out.exists()


def test_a_remote_clusters_device_is_named_not_checked_here():
    # this machine may have no GPU; the cluster's workers may
    assert trial_device("cuda", "tcp://127.0.0.1:8786") == "cuda:0"
    assert trial_device(" CUDA:3", "tcp://127.0.0.1:8786") == "cuda:3"
    assert trial_device(None, "tcp://127.0.0.1:8786") == "cpu"
    assert trial_device("cpu", None) == "cpu"


def test_an_unknown_option_is_one_line_exit_2(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("--learning-rate", "0.1", "--out", str(tmp_path / "sweep"))
    assert exit_info.value.code == 2
    assert not (tmp_path / "sweep").exists()


def test_out_that_is_not_a_sweep_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    status, _, stderr = run_cli(*DATA, "--iters", "10", "--out", str(tmp_path))
    assert status == 2 and "is not a sweep's folder" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_dry_run_prints_the_trials_and_writes_nothing(tmp_path):
    status, stdout, _ = run_cli(*DATA, *GRID, "--seed", "0-1", "--dry-run",
                                "--out", str(tmp_path / "sweep"))
    assert status == 0
    lines = stdout.splitlines()
    assert lines[0].split() == ["trial", "lr", "hidden", "seed"]
    assert lines[1].split()[1:] == ["0.1", "20", "0"]
    assert lines[-1] == "8 trials"
    assert not (tmp_path / "sweep").exists()


def test_a_dry_run_of_many_trials_needs_no_yes(tmp_path):
    status, stdout, stderr = run_cli(*DATA, "--seed", "0-19999", "--iters", "10", "--dry-run",
                                     "--out", str(tmp_path / "sweep"))
    assert (status, stderr) == (0, "")
    assert stdout.splitlines()[-1] == "20000 trials"
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_separate_scheduler_and_workers(tmp_path, reference):
    from distributed import Client

    file = tmp_path / "scheduler.json"
    processes = [start_logged([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(file)],
                              tmp_path / "scheduler.log", tmp_path)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            assert processes[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for i in range(2):
            processes.append(start_logged(
                [str(DASK), "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                 "--no-dashboard", "--local-directory", str(tmp_path / f"w{i}")],
                tmp_path / f"worker{i}.log", tmp_path))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=120)
        out = tmp_path / "sweep"
        status, stdout, stderr = run_cli(*DATA, *GRID, "--scheduler", address,
                                         "--out", str(out), "--no-progress")
        assert status == 0, stderr
        assert "4 trials, 0 already done; 2 workers (scheduler)" in stdout
        assert "best 2 of 4 trials" in stdout
        engine = json.loads((out / "sweep.json").read_text())["engine"]
        assert (engine["kind"], engine["address"], engine["workers"]) == (
            "scheduler", address, 2)
        assert_like_reference(out, reference)
    finally:
        stop_processes(processes[1:])
        stop_processes(processes[:1])


@pytest.mark.slow
def test_ctrl_c_keeps_finished_trials_and_the_same_command_continues(tmp_path):
    require_fashion_mnist()
    out = tmp_path / "sweep"
    # One short trial and two long ones: whichever order they run in, when the first
    # "finished" shows in results.csv a long one is still running, so Ctrl-C meets it.
    command = [sys.executable, "-m", "xpnet", "sweep", *DATA, "--lr", "0.1",
               "--hidden", "20", "--seed", "0", "--iters", "200,6000,7000", "--workers", "1",
               "--no-progress", "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and first.poll() is None:
            results = out / "results.csv"
            if results.exists() and "finished" in results.read_text():
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, stderr
    assert "interrupted; the finished trials are kept in" in stderr
    assert stderr.rstrip().endswith("Continue with: " + shlex.join(["xpnet", *command[3:]]))
    rows = list(csv.DictReader((out / "results.csv").open()))
    done = {r["trial"]: (out / "trials" / r["trial"] / "metrics.json").read_bytes()
            for r in rows if r["status"] == "finished"}
    assert 1 <= len(done) < 3
    assert json.loads((out / "sweep.json").read_text())["status"] == "interrupted"

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"3 trials, {len(done)} already done" in again.stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["status"] for r in rows] == ["finished"] * 3
    for key, content in done.items():  # not run again
        assert (out / "trials" / key / "metrics.json").read_bytes() == content


def test_the_local_clusters_resource_tracker_keeps_quiet_about_stopped_workers(tmp_path):
    # Ctrl-C stops workers that hold a semaphore; multiprocessing's resource tracker then
    # warns as it cleans up, after the command's last line. It must start with the filter.
    script = tmp_path / "tracker.py"
    script.write_text(
        "from multiprocessing import resource_tracker\n"
        "from xpnet.sweep import connect\n"
        "if __name__ == '__main__':\n"
        "    with connect(None, 1):\n"
        "        pid = resource_tracker._resource_tracker._pid\n"
        "        print(open(f'/proc/{pid}/cmdline').read().replace(chr(0), ' '))\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "-Wignore:resource_tracker:UserWarning" in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_sweep_started_in_the_background_still_stops_on_a_signal(tmp_path, signum, code):
    # A job started with '&' from a script inherits SIGINT ignored; the sweep must stop
    # all the same, like xpnet train, and SIGTERM too.
    require_fashion_mnist()
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xpnet", "sweep", *DATA, "--lr", "0.1", "--hidden", "20",
         "--seed", "0", "--iters", "20000", "--workers", "1", "--no-progress", "--out",
         str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        # once this line is out, the trial is running
        assert proc.stdout.readline().startswith("xpnet sweep: 1 trial, 0 already done")
        time.sleep(1.0)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert "xpnet sweep: interrupted; the finished trials are kept in" in stderr
    assert json.loads((out / "sweep.json").read_text())["status"] == "interrupted"
