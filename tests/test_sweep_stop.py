"""Stopping ``xpnet sweep``: a signal is a flag its loop reads, whenever it comes.

Real processes, real signals, sent to the whole process group as a terminal's Ctrl-C
is, so the Dask workers get it too: every stop must exit 130 (143 for SIGTERM) with the
one line that says so, nothing else on stderr, and keep every finished trial whole.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import FASHION_DIR, require_fashion_mnist

from xpnet.folder_lock import LOCK_FILE

DATA = ["--dataset", "fashion-mnist", "--data-dir", str(FASHION_DIR)]
# Two short trials and one that outlasts every test: a stop always meets a sweep at work.
TRIALS = ["--lr", "0.1", "--hidden", "20", "--seed", "0", "--iters", "50,100,300000"]


def start_sweep(out: Path, workers: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "xpnet", "sweep", *DATA, *TRIALS, "--workers", str(workers),
         "--no-progress", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def assert_stopped_cleanly(out: Path, proc: subprocess.Popen, stderr: str, code: int) -> None:
    assert proc.returncode == code, stderr
    assert stderr.startswith(f"xpnet sweep: interrupted; the finished trials are kept in {out}."
                             ), stderr
    assert stderr.count("\n") == 1, stderr  # that line alone: no Dask log, no traceback
    if not (out / "sweep.json").exists():
        return  # stopped before the sweep wrote anything
    assert json.loads((out / "sweep.json").read_text())["status"] == "interrupted"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert rows[-1]["status"] == "pending"  # the long one never finished
    for row in rows:
        metrics = out / "trials" / row["trial"] / "metrics.json"
        if row["status"] == "finished":
            doc = json.loads(metrics.read_text())
            assert doc["status"] == "finished" and doc["iterations_done"] == int(row["iters"])
        else:
            assert not metrics.exists() or json.loads(metrics.read_text())["status"] != (
                "finished")


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_at_random_moments_always_stops_cleanly(tmp_path):
    require_fashion_mnist()
    rng = random.Random(19)
    # Two sweeps at a time, each stopped at a random moment of its first 3.5 s after it
    # claimed its folder: cluster start, data shipping, trials running and finishing.
    moments = [rng.uniform(0.0, 3.5) for _ in range(20)]
    for pair in range(0, len(moments), 2):
        procs = []
        for i in (pair, pair + 1):
            out = tmp_path / f"sweep{i}"
            procs.append((out, start_sweep(out, workers=1 + i % 2), moments[i]))
        for out, proc, _ in procs:
            wait_for(out / LOCK_FILE, proc)
        begun = time.monotonic()
        for _, proc, moment in sorted(procs, key=lambda p: p[2]):
            time.sleep(max(0.0, begun + moment - time.monotonic()))
            os.killpg(proc.pid, signal.SIGINT)
        for out, proc, _ in procs:
            _, stderr = finish(proc)
            assert_stopped_cleanly(out, proc, stderr, 130)


@pytest.mark.slow
def test_sigterm_exits_143_however_often_it_comes(tmp_path):
    require_fashion_mnist()
    out = tmp_path / "sweep"
    proc = start_sweep(out)
    wait_for(out / "results.csv", proc)
    for _ in range(5):
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.05)
    _, stderr = finish(proc)
    assert_stopped_cleanly(out, proc, stderr, 143)


@pytest.mark.slow
def test_ctrl_c_while_waiting_for_a_clusters_first_worker_stops_at_once(tmp_path):
    require_fashion_mnist()
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as empty:  # a scheduler, no worker
        out = tmp_path / "sweep"
        proc = subprocess.Popen(
            [sys.executable, "-m", "xpnet", "sweep", *DATA, *TRIALS, "--no-progress",
             "--scheduler", empty.scheduler_address, "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        wait_for(out / LOCK_FILE, proc)
        time.sleep(2.0)  # connected by now, waiting for a worker (up to 30 s)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = finish(proc)
        assert time.monotonic() - t0 < 10
    assert_stopped_cleanly(out, proc, stderr, 130)


def test_dask_logs_while_the_local_cluster_closes_stay_quiet() -> None:
    # The scheduler logs each connection a stop cuts (INFO, with a traceback) while the
    # cluster closes, after LocalCluster has given its own log quieting back: that line
    # must not follow the sweep's last line. Its own process: Dask's log handler writes to
    # the stderr it found at import.
    script = """
import logging
from distributed import LocalCluster
from xpnet import sweep

close = LocalCluster.close

def close_then_log(self, *args, **kwargs):
    result = close(self, *args, **kwargs)
    logging.getLogger("distributed.batched").info("Batched Comm Closed (a stand-in)")
    return result

if __name__ == "__main__":
    LocalCluster.close = close_then_log
    with sweep._local_cluster(1) as client:
        assert client.submit(sum, [1, 2]).result(timeout=60) == 3
    print("closed")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "closed\n", done.stderr
    assert "Batched Comm Closed" not in done.stderr, done.stderr
