"""Sweep throughput: trials on a 2-worker LocalCluster against the same trials in a loop.

Both sides do the same work: ``run(config, data=...)`` on one core (as a worker does) and
the same files per trial (metrics.json, params.npz, checkpoint.npz, two plots). The
overhead per trial is the worker time not spent inside ``run``: scheduling, shipping the
data and the results, and the client's writing, ``(wall * workers - sum(run)) / trials``.

With ``--benchmark-disable`` (plain ``pytest``) the same code runs on 2000 training
images, 50 iterations and a thread-based cluster, and checks the sweep's numbers against
the loop's; timing uses the real data, 2000 (throughput) or 10000 (overhead) iterations
and worker processes. Both sides are warmed up first (imports, Numba's cache, the data
on the workers): the LocalCluster's start is a fixed cost of a few seconds, not counted.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
from benchlib import FASHION_DIR, record
from support import require_fashion_mnist

from xpnet.run import load_data, run
from xpnet.run_config import RunConfig
from xpnet.run_folder import claim_dir
from xpnet.sweep import connect, one_core, sweep
from xpnet.sweep_spec import trial_key

WORKERS = 2


@pytest.fixture(scope="module")
def data():
    require_fashion_mnist()
    return load_data(RunConfig(dataset="fashion-mnist", data_dir=str(FASHION_DIR)))


def trials(n: int, iters: int) -> list[RunConfig]:
    return [RunConfig(dataset="fashion-mnist", data_dir=str(FASHION_DIR), iters=iters,
                      hidden=50, lr=0.1, seed=seed) for seed in range(n)]


def small(data):
    """The correctness pass's data: the first 2000 training and 500 test images."""
    return dataclasses.replace(data, x_train=data.x_train[:2000], t_train=data.t_train[:2000],
                               x_test=data.x_test[:500], t_test=data.t_test[:500])


def sequential(configs, data, out):
    """The trials one after another in this process, each on one core, each its folder."""
    results = []
    for config in configs:
        with one_core():
            results.append(run(config, data=data, out=claim_dir(out / trial_key(config))))
    return results


def local_client(timed: bool):
    """The command's own LocalCluster when timing; a quick thread-based one otherwise."""
    if timed:
        return connect(None, WORKERS)
    from distributed import Client

    return Client(n_workers=WORKERS, threads_per_worker=1, processes=False,  # owns its cluster
                  dashboard_address="127.0.0.1:0")


@pytest.mark.parametrize("backend", ["one process", "LocalCluster 2 workers"])
def test_sweep_throughput(benchmark, backend, data, tmp_path) -> None:
    n, iters = (8, 2000) if benchmark.enabled else (2, 50)
    if not benchmark.enabled:
        data = small(data)
    configs = trials(n, iters)
    rounds = itertools.count()

    def fresh():
        return (tmp_path / f"round{next(rounds)}",), {}

    record(benchmark, f"{n} trials of {iters} iterations, Fashion-MNIST", backend,
           baseline=backend == "one process", trials=n, iters=iters)
    # imports and Numba's cache loaded, the data on the workers; not worth it untimed
    warm = [dataclasses.replace(configs[0], iters=10)] if benchmark.enabled else []
    if backend == "one process":
        sequential(warm, data, tmp_path / "warm")
        results = benchmark.pedantic(lambda out: sequential(configs, data, out), setup=fresh,
                                     rounds=2 if benchmark.enabled else 1)
        assert all(r.status == "finished" for r in results)
        return
    with local_client(benchmark.enabled) as client:
        client.wait_for_workers(WORKERS, timeout=120)
        if warm:
            sweep(warm, out=tmp_path / "warm", client=client, data=data)
        table = benchmark.pedantic(lambda out: sweep(configs, out=out, client=client,
                                                     data=data),
                                   setup=fresh, rounds=2 if benchmark.enabled else 1)
    assert [r["status"] for r in table] == ["finished"] * n
    if benchmark.enabled:
        wall = benchmark.stats.stats.median
        own = sum(r["wall_time_s"] for r in table)
        benchmark.extra_info["measured"] = {"overhead_per_trial_s": (wall * WORKERS - own) / n,
                                            "mean_trial_s": own / n}
    else:  # the numbers of a loop of run(), whichever worker ran each trial
        expected = sequential(configs, data, tmp_path / "loop")
        for row, result in zip(table, expected, strict=True):
            doc = json.loads((tmp_path / "round0" / "trials" / row["trial"] /
                              "metrics.json").read_text())
            assert doc["final_test_acc"] == result.final_test_acc == row["final_test_acc"]
            assert doc["train_loss_list"] == result.history.train_loss_list


@pytest.mark.slow
def test_sweep_overhead_on_default_trials(benchmark, data, tmp_path) -> None:
    """Default-length trials (10000 iterations), two per worker: the time around them."""
    n, iters = (2 * WORKERS, 10000) if benchmark.enabled else (WORKERS, 50)
    if not benchmark.enabled:
        data = small(data)
    configs = trials(n, iters)
    record(benchmark, f"overhead per trial, {n} trials of {iters} iterations",
           "LocalCluster 2 workers", trials=n, iters=iters)
    with local_client(benchmark.enabled) as client:
        client.wait_for_workers(WORKERS, timeout=120)
        if benchmark.enabled:
            warm = [dataclasses.replace(configs[0], iters=10)]
            sweep(warm, out=tmp_path / "warm", client=client, data=data)
        table = benchmark.pedantic(lambda: sweep(configs, out=tmp_path / "timed",
                                                 client=client, data=data), rounds=1)
    assert [r["status"] for r in table] == ["finished"] * n
    if benchmark.enabled:
        wall = benchmark.stats.stats.median
        own = sum(r["wall_time_s"] for r in table)
        benchmark.extra_info["measured"] = {"overhead_per_trial_s": (wall * WORKERS - own) / n,
                                            "overhead_fraction": (wall * WORKERS - own) / own}


def test_stop_latency(benchmark, tmp_path) -> None:
    """Ctrl-C to an `xpnet sweep` process group while its 2 workers run trials: the time
    until the command has exited (its trials' folders and sweep.json written)."""
    require_fashion_mnist()
    import os
    import signal
    import subprocess
    import sys
    import time

    rounds = itertools.count()
    procs = []

    def started():
        out = tmp_path / f"round{next(rounds)}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "xpnet", "sweep", "--dataset", "fashion-mnist",
             "--data-dir", str(FASHION_DIR), "--lr", "0.1", "--hidden", "20", "--seed",
             "0-3", "--iters", "3000", "--workers", str(WORKERS), "--no-progress", "--out",
             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        proc.stdout.readline()  # the start line: the cluster is up
        time.sleep(1.0)  # the trials are running
        procs.append(proc)
        return (proc,), {}

    errors = []

    def stop(proc):
        os.killpg(proc.pid, signal.SIGINT)
        errors.append(proc.communicate(timeout=60)[1])

    record(benchmark, "stop latency: Ctrl-C to exit, 4 trials on 2 workers",
           "LocalCluster 2 workers", workers=WORKERS)
    try:
        benchmark.pedantic(stop, setup=started, rounds=5 if benchmark.enabled else 1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    for proc, stderr in zip(procs, errors, strict=True):
        assert proc.returncode == 130, stderr
        assert stderr.startswith("xpnet sweep: interrupted;") and stderr.count("\n") == 1, stderr
