"""Sweeps: many training runs in parallel on Dask, collected and compared.

Each trial is ``run(config, data=...)`` on a Dask worker, on one core (BLAS and Numba on
one thread), so its numbers depend only on its settings and seed, never on which worker
ran it or how often. The data set is shipped to every worker once. The client writes
everything under ``--out``: each trial's folder (the files of ``xpnet train``), the
results CSV as trials finish, ``sweep.json``, the two pictures and, at the end, the best
trials as a table. A trial is known by a hash of its settings, so running the same
command again with the same ``--out`` only runs the trials not yet done.

By default the command starts a ``LocalCluster`` (one single-threaded worker process per
core) and stops it at the end; ``--scheduler ADDRESS`` (or ``XPNET_SCHEDULER``) uses an
existing cluster instead, whose workers need xpnet installed but not the data files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import sweep_report as sr
from .backend import DeviceError, device_name, parse_device
from .errors import DivergenceError, InputError, one_line
from .run import load_data, provenance, run
from .run_config import RunConfig
from .run_folder import environment
from .sweep_spec import swept_of, trial_key

MAX_TRIALS = 10_000  # more needs --yes
CONNECT_TIMEOUT_S = 5  # an unreachable --scheduler is given up after this
WORKER_WAIT_S = 30  # and one without workers after this
SCHEDULER_ENV = "XPNET_SCHEDULER"
NO_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
RETRIES = 1  # for an exception a second try may not repeat (a worker short of memory)
CSV_EVERY_S = 1.0  # results.csv is rewritten at most this often (and at the end)


class SweepError(InputError):
    """A sweep cannot start as asked (its size, folder, cluster, or Dask missing)."""


def trial_device(device: str | None, scheduler: str | None) -> str:
    """The trials' device: resolved here for a local cluster, only named for a remote one.

    A remote cluster's workers may have GPUs this machine lacks, so ``cuda`` is checked
    there, not here; ``auto`` is refused, as it could mean other devices on other workers.
    """
    if not scheduler:
        return str(parse_device(device))
    name = device_name(device)
    if name == "auto":
        raise DeviceError("--device auto could mean different devices on different workers; "
                          "with --scheduler say cpu or cuda")
    return name


def sweep(configs: Sequence[RunConfig], *, out: str | Path, client: Any, data: Any = None,
          command: list[str] | None = None, engine: dict[str, Any] | None = None,
          progress: bool | None = False,
          finished: Mapping[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run the trials (``RunConfig``s) not yet done in ``out`` on ``client``'s cluster.

    ``client``: a ``distributed.Client`` (may be None when every trial is done). ``data``:
    the loaded dataset (``run.load_data``), shipped to each worker once. ``finished``:
    ``sweep_report.finished_trials(out)`` if already read. Writes every file under
    ``out`` as trials finish; returns one row per trial (``sweep_report.rows``).
    Ctrl-C (KeyboardInterrupt) stops it after writing what is finished.
    """
    from tqdm import tqdm

    out = Path(out)
    finished = sr.finished_trials(out) if finished is None else finished
    docs = {trial_key(c): finished[trial_key(c)] for c in configs if trial_key(c) in finished}
    todo = [c for c in configs if trial_key(c) not in docs]
    if todo and data is None:
        data = load_data(todo[0])
    if engine is None:
        engine = describe(client, None) if client is not None else {"kind": "none"}
    files = _SweepFolder(out, configs, docs, command, engine)
    files.save("running")
    best = [d["final_test_acc"] for d in docs.values() if d["status"] == "finished"]
    bar = tqdm(total=len(configs), initial=len(docs), unit="trial", desc="sweep",
               disable=None if progress is None else not progress)
    status = "interrupted"
    try:
        if best:
            bar.set_postfix_str(f"best test acc {max(best):.4f}")
        data_info = provenance(data) if data is not None else {}
        for config, outcome in _outcomes(client, data, todo):
            doc = files.add(config, outcome, data_info)
            if doc["status"] == "finished":
                best.append(doc["final_test_acc"])
                bar.set_postfix_str(f"best test acc {max(best):.4f}", refresh=False)
            bar.update()
        status = "finished"
    finally:
        bar.close()
        files.save(status)
    return sr.rows(configs, docs)


class _SweepFolder:
    """The files of a sweep folder as trials come in: trial folders, CSV, JSON, pictures."""

    def __init__(self, out: Path, configs: Sequence[RunConfig], docs: dict[str, Any],
                 command: list[str] | None, engine: dict[str, Any]) -> None:
        self.out, self.configs, self.docs = out, configs, docs
        self.command, self.engine = command, engine
        self.swept = swept_of(configs)
        self.csv_saved = time.monotonic()
        try:
            (out / sr.TRIALS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SweepError(f"cannot write in {out} ({err.strerror or err}); pass a folder "
                             "you can write") from None

    def add(self, config: RunConfig, outcome: dict[str, Any],
            data_info: Mapping[str, Any]) -> dict[str, Any]:
        """Record a trial's outcome (its folder, unless it is an error); its metrics."""
        key = trial_key(config)
        if outcome["status"] == "error":  # not a result: kept out of the folder, rerun
            self.docs[key] = {"status": "error", "error": outcome["error"]}
        else:
            self.docs[key] = sr.write_trial(self.out / sr.TRIALS_DIR / key, outcome,
                                            data_info, self.command)
        if time.monotonic() - self.csv_saved >= CSV_EVERY_S:
            sr.write_results(self.out, sr.rows(self.configs, self.docs))
            self.csv_saved = time.monotonic()
        return self.docs[key]

    def save(self, status: str) -> None:
        """results.csv and sweep.json; the pictures too once the sweep is over."""
        import numpy as np

        table = sr.rows(self.configs, self.docs)
        sr.write_results(self.out, table)
        sr.write_sweep_json(self.out, table, status=status, command=self.command,
                            engine=self.engine, swept=self.swept)
        if status != "running":
            with np.errstate(over="ignore", invalid="ignore"):  # axes reaching lr 1e308
                sr.plot_accuracy(self.out / "accuracy.png", table, self.docs, self.swept)
                sr.plot_by_setting(self.out / "by_setting.png", table, self.swept)


def _outcomes(client: Any, data: Any, configs: Sequence[Any]) -> Iterator[tuple[Any, dict]]:
    """(config, outcome) for each trial, in the order they finish."""
    if not configs:
        return
    from distributed import as_completed

    remote = client.scatter(data, broadcast=True)  # once per worker, not once per trial
    tag = uuid.uuid4().hex[:8]  # this sweep's tasks, never a result held from another
    by_key = {}
    for config in configs:
        # retries: for exceptions only; when a worker dies the scheduler itself reruns its
        # tasks elsewhere (distributed.scheduler.allowed-failures, 3 by default)
        future = client.submit(run_trial, config.to_dict(), remote, retries=RETRIES,
                               key=f"xpnet-trial-{trial_key(config)}-{tag}")
        by_key[future.key] = (future, config)
    try:
        for future in as_completed([f for f, _ in by_key.values()]):
            config = by_key[future.key][1]
            try:
                outcome = future.result()
            except Exception as err:  # a bug, or a trial whose workers all died
                outcome = {"status": "error", "error": _error_line(err)}
            future.release()
            yield config, outcome
    finally:
        client.cancel([f for f, _ in by_key.values() if not f.done()])


def run_trial(config: dict[str, Any], data: Any) -> dict[str, Any]:
    """One trial here, on one core: ``run(config, data=data)`` and where and when it ran.

    Returns ``status``, ``config``, ``started_at``, ``wall_time_s``, ``worker`` (the Dask
    worker's address) and either ``result`` (the RunResult, status finished) or, for
    settings that cannot train (status failed), ``error`` (one line) and ``environment``.
    """
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    outcome: dict[str, Any] = {"config": config, "started_at": started, "worker": _worker()}
    with one_core():
        try:
            result = run(RunConfig.from_dict(config), data=data)
            outcome.update(status=result.status, result=result)
        except (DivergenceError, InputError) as err:  # an outcome of these settings
            outcome.update(status="failed", error=one_line(err), environment=environment())
    outcome["wall_time_s"] = time.perf_counter() - t0
    return outcome


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """Within the block, BLAS and Numba's parallel kernels use one thread.

    A worker runs one trial per core; more threads per trial would only fight over cores.
    """
    import numba
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def connect(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A ``distributed.Client``: of the scheduler at ``scheduler``, else of a LocalCluster.

    The local cluster has ``workers`` single-threaded worker processes on 127.0.0.1;
    Dask's nannies start them with OMP/MKL/OPENBLAS_NUM_THREADS=1. Raises
    SweepError if the scheduler cannot be reached within CONNECT_TIMEOUT_S seconds or has
    no worker within WORKER_WAIT_S.
    """
    import logging

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("xpnet sweep needs Dask: pip install 'xpnet[sweep]' (in a source "
                         "checkout: pip install -e '.[sweep]')") from None

    if not scheduler:
        import dask

        # A worker stopped by Ctrl-C leaves a semaphore that multiprocessing's resource
        # tracker cleans up, saying so in a warning that would end the command's output.
        # The tracker takes its warning filters from these options when it starts.
        quiet = "ignore:resource_tracker:UserWarning"
        if quiet not in sys.warnoptions:
            sys.warnoptions.append(quiet)

        # Dask's nannies set MALLOC_TRIM_THRESHOLD_ in a worker's environment, which turns
        # off glibc's adaptive mmap threshold: every array over 128 KiB is then mapped
        # afresh, and a trial runs 1.6x slower. Its other settings (one BLAS thread) stay.
        with dask.config.set({NO_MALLOC_TRIM: None}), LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                # the scheduler's HTTP server on a free loopback port: two sweeps at once
                # do not contend for 8787 (nor warn about it)
                dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as err:
        raise SweepError(f"cannot reach the Dask scheduler at {scheduler} within "
                         f"{CONNECT_TIMEOUT_S} s ({_error_line(err)}); start it (dask scheduler) "
                         f"or fix --scheduler or ${SCHEDULER_ENV}") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            raise SweepError(f"the Dask scheduler at {scheduler} has no workers after "
                         f"{WORKER_WAIT_S} s; start some (dask worker {scheduler})") from None
        yield client


def describe(client: Any, scheduler: str | None) -> dict[str, Any]:
    """The engine for sweep.json: kind, scheduler address, workers and threads."""
    import distributed

    threads = client.nthreads()
    return {"kind": "scheduler" if scheduler else "LocalCluster",
            "address": client.scheduler.address, "workers": len(threads),
            "threads": sum(threads.values()), "distributed": distributed.__version__}


def _worker() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # called outside a Dask worker
        import socket

        return f"{socket.gethostname()}:{os.getpid()}"


def _error_line(err: BaseException) -> str:
    """The error's class and text on one line, for a trial that failed by a bug."""
    text = one_line(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
