"""Sweeps: many training runs in parallel on Dask, collected and compared.

Each trial is ``run(config, data=...)`` on a Dask worker, on one core (BLAS and Numba on
one thread), so its numbers depend only on its settings and seed, never on which worker
ran it or how often. The data set is shipped to every worker once. The client writes
everything under ``--out``: each trial's folder (the files of ``xpnet train``), the
results CSV as trials finish, ``sweep.json``, the two pictures and, at the end, the best
trials as a table. A trial is known by a hash of its settings and of its data's content,
so running the same command again with the same ``--out`` only runs the trials not yet
done, and never reports one data set's numbers for another's. The folder is the sweep's
alone while it runs (``folder_lock``) and holds one sweep: another is refused.

A stop (Ctrl-C, SIGTERM) is a flag the client's wait loop reads between short waits;
the local workers never see SIGINT, and the ones still running a trial at the end are
killed at once: a stop takes about a second and prints nothing of Dask's.

By default the command starts a ``LocalCluster`` (one single-threaded worker process per
core) and stops it at the end; ``--scheduler ADDRESS`` (or ``XPNET_SCHEDULER``) uses an
existing cluster instead, whose workers need xpnet installed but not the data files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import sweep_report as sr
from .backend import DeviceError, device_name, parse_device
from .errors import InputError, UserError, one_line
from .folder_lock import hold
from .run import load_data, provenance, run
from .run_config import RunConfig
from .run_folder import environment, removed_if_left_empty
from .sweep_spec import SCHEDULER_ENV, swept_of, trial_key

MAX_WORKERS = 1024  # a --workers above this is a mistake, not a machine
CONNECT_TIMEOUT_S = 10  # a --scheduler that has not answered, handshake included, by then
WORKER_WAIT_S = 30  # and one without workers after this
POLL_S = 0.2  # the wait for trials reads the stop flag this often
# A local worker still running a trial at the end is killed after 0.8 x this, not given
# Dask's 4 s to finish a trial whose result would be dropped (a graceful close racing
# the running trial can also make it log errors). 0 would skip Dask's join of the
# killed process, which then warns that its exit status was read elsewhere.
CLOSE_WAIT_S = 0.1
NO_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
CSV_EVERY_S = 1.0  # results.csv is rewritten at most this often (and at the end)
NEEDS_DASK = ("xpnet sweep needs Dask: pip install 'xpnet[sweep]' (in a source checkout: "
              "pip install -e '.[sweep]')")


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
          finished: Mapping[str, dict[str, Any]] | None = None,
          stop: Callable[[], Any] | None = None,
          say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run the trials (``RunConfig``s) not yet done in ``out`` on ``client``'s cluster.

    ``client``: a ``distributed.Client`` (may be None when every trial is done). ``data``:
    the loaded dataset (``run.load_data``; loaded here if None), shipped to each worker
    once; a trial is known by its settings and this data's identity. ``finished``: what
    ``claim(out, configs, data)`` gave, when the caller holds the folder; else it is
    claimed here. ``stop``: asked between waits of at most POLL_S seconds; when true,
    the trials not yet back are left, ``sweep.json`` says ``interrupted`` and this
    returns. ``say``: given one line for each trial that fails. Writes every file under
    ``out`` as trials finish; returns one row per trial (``sweep_report.rows``). Ctrl-C
    (KeyboardInterrupt) stops it too, after writing what is finished.
    """
    out = Path(out)
    if data is None:
        data = load_data(configs[0])
    data_info = provenance(data)
    with contextlib.ExitStack() as stack:
        if finished is None:
            finished = stack.enter_context(claim(out, configs, data))
        else:
            stack.enter_context(hold(out, what="sweep"))  # the caller's hold, nested
        return _sweep(configs, out, client, data, data_info, command, engine, progress,
                      finished, stop, say)


def _sweep(configs: Sequence[RunConfig], out: Path, client: Any, data: Any,
           data_info: dict[str, Any], command: list[str] | None,
           engine: dict[str, Any] | None, progress: bool | None,
           finished: Mapping[str, dict[str, Any]], stop: Callable[[], Any] | None,
           say: Callable[[str], None] | None) -> list[dict[str, Any]]:
    from tqdm import tqdm

    keys = trial_keys(configs, data_info)
    docs = {k: finished[k] for k in keys if k in finished}
    todo = [(k, c) for k, c in zip(keys, configs, strict=True) if k not in docs]
    if engine is None:
        engine = describe(client, None) if client is not None else {"kind": "none"}
    files = _SweepFolder(out, configs, keys, docs, command, engine, data_info)
    files.save("running")
    best = [d["final_test_acc"] for d in docs.values() if d["status"] == "finished"]
    bar = tqdm(total=len(configs), initial=len(docs), unit="trial", desc="sweep",
               disable=None if progress is None else not progress)
    back = 0
    try:
        if best:
            bar.set_postfix_str(f"best test acc {max(best):.4f}")
        for key, config, outcome in _outcomes(client, data, todo, stop):
            back += 1
            doc = files.add(key, config, outcome)
            if doc["status"] == "finished":
                best.append(doc["final_test_acc"])
                bar.set_postfix_str(f"best test acc {max(best):.4f}", refresh=False)
            elif say is not None:
                say(f"trial {key} ({sr.label(config, files.swept)}) {doc['status']}: "
                    f"{doc['error']}")
            bar.update()
    finally:
        bar.close()
        files.save("finished" if back == len(todo) else "interrupted")
    return sr.rows(configs, keys, files.docs)


def trial_keys(configs: Sequence[RunConfig], data_info: Mapping[str, Any]) -> list[str]:
    """Each trial's key: its settings and the content identity of its data."""
    return [trial_key(c, data_info["identity"]) for c in configs]


@contextlib.contextmanager
def claim(out: str | Path, configs: Sequence[RunConfig], data: Any) -> Iterator[dict[str, Any]]:
    """Within the block ``out`` is this sweep's folder, held by this process alone.

    Yields the trials already done in it (``sweep_report.finished_trials``). Raises
    FolderBusyError when another process holds it, RunFolderError when it holds something
    else or another sweep (other trials, or the same on other data). A folder created
    here is removed again if the block fails before anything was written in it.
    """
    out = Path(out)
    sr.read_sweep(out)  # a file or a foreign folder: refused before anything is created
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SweepError(f"cannot write in {out} ({err.strerror or err}); pass a folder "
                         "you can write") from None
    data_info = provenance(data)
    keys = trial_keys(configs, data_info)
    with removed_if_left_empty(out), hold(out, what="sweep"):
        previous = sr.read_sweep(out)  # again: what counts is what it holds once held
        if previous is not None:
            _refuse_another_sweep(out, previous, keys, data_info)
        yield sr.finished_trials(out, dict(zip(keys, configs, strict=True)), data_info)


def _refuse_another_sweep(out: Path, previous: Mapping[str, Any], keys: Sequence[str],
                          data_info: Mapping[str, Any]) -> None:
    if {t["trial"] for t in previous["trials"]} == set(keys):
        return  # the same sweep, continued
    before = previous.get("data") if isinstance(previous.get("data"), dict) else {}
    if not before.get("identity"):
        raise SweepError(f"{out} holds a sweep of an older xpnet, whose trials do not name "
                         "their data; pass a new --out (its results stay readable there)")
    if before["identity"] != data_info["identity"]:
        raise SweepError(
            f"{out} holds a sweep on other data ({before.get('name')} in "
            f"{before.get('directory')}, content {before.get('identity')}; now "
            f"{data_info['directory']}, content {data_info['identity']}): pass a new --out")
    if _keyed_otherwise(previous, keys, data_info):
        raise SweepError(f"{out} holds this sweep as xpnet {previous.get('xpnet_version')} "
                         "named its trials, before a trial's name held the net's settings; "
                         "pass a new --out (its results stay readable there)")
    command = previous.get("command")
    made = f" (made by: {shlex.join(command)})" if isinstance(command, list) else ""
    raise SweepError(f"{out} holds another sweep{made}; pass a new --out, or that sweep's "
                     "own command to continue it")


def _keyed_otherwise(previous: Mapping[str, Any], keys: Sequence[str],
                     data_info: Mapping[str, Any]) -> bool:
    """Whether ``previous`` holds these trials under the keys of an older trial_key."""
    try:
        again = {trial_key(RunConfig.from_dict(t["config"]), data_info["identity"])
                 for t in previous["trials"]}
    except (InputError, KeyError, TypeError):
        return False
    return again == set(keys)


class _SweepFolder:
    """The files of a sweep folder as trials come in: trial folders, CSV, JSON, pictures."""

    def __init__(self, out: Path, configs: Sequence[RunConfig], keys: Sequence[str],
                 docs: dict[str, Any], command: list[str] | None, engine: dict[str, Any],
                 data_info: dict[str, Any]) -> None:
        self.out, self.configs, self.keys, self.docs = out, configs, keys, docs
        self.command, self.engine, self.data_info = command, engine, data_info
        self.swept = swept_of(configs)
        self.csv_saved = time.monotonic()

    def add(self, key: str, config: RunConfig, outcome: dict[str, Any]) -> dict[str, Any]:
        """Record a trial's outcome (its folder, unless it is an error); its metrics."""
        if outcome["status"] == "error":  # not a result: kept out of the folder, rerun
            self.docs[key] = {"status": "error", "error": outcome["error"]}
        else:
            self.docs[key] = sr.write_trial(self.out / sr.TRIALS_DIR / key, outcome,
                                            self.data_info, self.command)
        if time.monotonic() - self.csv_saved >= CSV_EVERY_S:
            sr.write_results(self.out, sr.rows(self.configs, self.keys, self.docs))
            self.csv_saved = time.monotonic()
        return self.docs[key]

    def save(self, status: str) -> None:
        """results.csv and sweep.json; the pictures too once every trial is back.

        A stopped sweep draws none: a stop must be quick, and its next run draws them.
        """
        import numpy as np

        table = sr.rows(self.configs, self.keys, self.docs)
        sr.write_sweep_json(self.out, table, status=status, command=self.command,
                            engine=self.engine, swept=self.swept, data=self.data_info)
        sr.write_results(self.out, table)
        if status == "finished":
            with np.errstate(over="ignore", invalid="ignore"):  # axes reaching lr 1e308
                sr.plot_accuracy(self.out / "accuracy.png", table, self.docs, self.swept)
                sr.plot_by_setting(self.out / "by_setting.png", table, self.swept)


def _outcomes(client: Any, data: Any, todo: Sequence[tuple[str, RunConfig]],
              stop: Callable[[], Any] | None) -> Iterator[tuple[str, RunConfig, dict]]:
    """(key, config, outcome) for each trial, in the order they finish, until ``stop()``.

    The wait is a loop of short waits that reads ``stop`` between them: a stop asked by a
    signal handler is a flag read here, never an exception raised wherever Python was.
    """
    if not todo:
        return
    from distributed import wait

    remote = client.scatter(data, broadcast=True)  # once per worker, not once per trial
    tag = uuid.uuid4().hex[:8]  # this sweep's tasks, never a result held from another
    # No retries: run_trial returns every outcome of the settings; when a worker dies the
    # scheduler itself reruns its tasks elsewhere (distributed.scheduler.allowed-failures).
    futures = {client.submit(run_trial, config.to_dict(), remote,
                             key=f"xpnet-trial-{key}-{tag}"): (key, config)
               for key, config in todo}
    pending = set(futures)
    try:
        while pending and not (stop is not None and stop()):
            try:
                done, pending = wait(pending, timeout=POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            for future in done:
                try:
                    outcome = future.result()
                except Exception as err:  # a trial whose workers all died
                    outcome = {"status": "error", "error": _error_line(err)}
                future.release()
                yield (*futures[future], outcome)
    finally:
        if getattr(client, "cluster", None) is None:
            # A remote cluster: its workers would run them to the end.
            client.cancel([*pending, remote])
        else:
            # A local one is closed next, workers first (``connect``): let the scheduler
            # forget the trials and the data first, or it calls the data lost (an ERROR
            # line) as the workers go; a cancel there would race the client's close.
            for future in [*pending, remote]:
                future.release()


def run_trial(config: dict[str, Any], data: Any) -> dict[str, Any]:
    """One trial here, on one core: ``run(config, data=data)`` and where and when it ran.

    Returns ``status``, ``config``, ``started_at``, ``wall_time_s``, ``worker`` (the Dask
    worker's address) and either ``result`` (the RunResult, status finished) or ``error``
    (one line) and ``environment``: status ``failed`` for settings that cannot train or
    be built here (a user error, such as divergence, or MemoryError), ``error`` for a bug.
    It never raises for a trial: Dask sees every trial succeed and logs nothing.
    """
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    outcome: dict[str, Any] = {"config": config, "started_at": started, "worker": _worker()}
    with one_core():
        try:
            result = run(RunConfig.from_dict(config), data=data)
            outcome.update(status=result.status, result=result)
        except (UserError, MemoryError) as err:  # an outcome of these settings: kept
            line = one_line(err) if isinstance(err, UserError) else _error_line(err)
            outcome.update(status="failed", error=line, environment=environment())
        except Exception as err:  # a bug: said once, kept out of the folder, run again
            # Returned, not raised: Dask would log it as "Compute Failed" on the worker.
            outcome.update(status="error", error=_error_line(err), environment=environment())
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
def connect(scheduler: str | None, workers: int | None,
            stop: Callable[[], Any] | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: of the scheduler at ``scheduler``, else of a LocalCluster.

    The local cluster has ``workers`` single-threaded worker processes on 127.0.0.1
    (Dask's nannies start them with OMP/MKL/OPENBLAS_NUM_THREADS=1), which never see
    SIGINT: a Ctrl-C to the whole process group reaches this process alone, which stops
    them. A remote scheduler must answer, handshake included, within CONNECT_TIMEOUT_S
    (``probe``) and have a worker within WORKER_WAIT_S; else SweepError. Its TLS
    settings (``tls://`` addresses) come from Dask's configuration, as for any Client.
    ``stop``: read while waiting for a worker; when true, the client is yielded as it is.
    """
    try:
        from distributed import Client
    except ImportError:
        raise SweepError(NEEDS_DASK) from None
    if not scheduler:
        with _local_cluster(workers) as client:
            yield client
        return
    address = probe(scheduler)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as err:
        raise SweepError(f"cannot connect to the Dask scheduler at {address} "
                         f"({_error_line(err)}); {START_IT}") from None
    with client:
        deadline = time.monotonic() + WORKER_WAIT_S
        while not (stop is not None and stop()):
            try:
                client.wait_for_workers(1, timeout=POLL_S)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise SweepError(f"the Dask scheduler at {address} has no workers after "
                                     f"{WORKER_WAIT_S} s; start some (dask worker "
                                     f"{address})") from None
        yield client


START_IT = f"start it (dask scheduler) or fix --scheduler or ${SCHEDULER_ENV}"


def probe(scheduler: str, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """The scheduler's address, once it has answered as a Dask scheduler; else SweepError.

    Dask's own connect bounds only the TCP/TLS connect, not the handshake after it: a
    server that accepts and stays silent would hold ``Client`` forever, and one that
    speaks another protocol makes it allocate whatever its first bytes claim. This runs
    Dask's connect and handshake with the client's own security settings, all within
    ``timeout`` seconds.
    """
    import asyncio

    from distributed.comm import connect as comm_connect
    from distributed.comm.addressing import get_address_host, normalize_address
    from distributed.security import Security

    try:
        address = normalize_address(scheduler.strip())
        get_address_host(address)
    except ValueError as err:
        raise SweepError(f"--scheduler {scheduler!r} is not a Dask address ({_error_line(err)});"
                         " write tcp://HOST:PORT or tls://HOST:PORT") from None
    args = Security().get_connection_args("client")
    if address.startswith("tls://") and args.get("ssl_context") is None:
        raise SweepError(f"{address} is a TLS address but Dask has no TLS settings here: set "
                         "DASK_DISTRIBUTED__COMM__TLS__CA_FILE, "
                         "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT and "
                         "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY (or the same keys in "
                         "~/.config/dask/*.yaml)")

    async def handshake() -> None:
        # Dask retries a refused connect (a scheduler still starting) until its timeout:
        # within ours, so that a port nobody listens on is told from a silent server.
        comm = await comm_connect(address, timeout=0.8 * timeout, **args)
        await comm.close()

    async def bounded() -> None:
        await asyncio.wait_for(handshake(), timeout)

    try:
        asyncio.run(bounded())
    except (asyncio.TimeoutError, TimeoutError):
        raise SweepError(f"no Dask scheduler answered at {address} within {timeout:g} s; "
                         f"{START_IT}") from None
    except OSError as err:  # refused, reset, unreachable; Dask's CommClosedError too
        raise SweepError(f"cannot reach the Dask scheduler at {address} "
                         f"({_error_line(err)}); {START_IT}") from None
    except Exception as err:  # MemoryError, ValueError, struct.error: not Dask's protocol
        raise SweepError(f"{address} is not a Dask scheduler (it answered in another "
                         f"protocol: {type(err).__name__}); fix --scheduler or "
                         f"${SCHEDULER_ENV}") from None
    return address


@contextlib.contextmanager
def _local_cluster(workers: int) -> Iterator[Any]:
    import logging
    import signal
    from multiprocessing import resource_tracker

    import dask
    from distributed import Client, LocalCluster
    from distributed.utils import silence_logging_cmgr

    # A worker stopped by Ctrl-C leaves a semaphore that multiprocessing's resource
    # tracker cleans up, saying so in a warning that would end the command's output.
    # The tracker takes its warning filters from these options when it starts.
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)
    # The workers must never see SIGINT (a Ctrl-C goes to the whole process group and
    # would end them in tracebacks): SIGINT is blocked in this thread while the cluster
    # starts, so its IO-loop thread and every process that thread spawns (workers, and
    # workers restarted later) keep it blocked; a SIGINT meanwhile waits for this thread
    # and its handler. The resource tracker first: starting it unblocks SIGINT in the
    # thread that starts it.
    resource_tracker.ensure_running()
    # LocalCluster quiets this process's Dask logs only until its close() begins, and the
    # scheduler logs the connections a stop cuts (INFO, with a traceback) while it closes:
    # kept quiet here until the cluster is closed, so nothing follows the sweep's last line.
    with silence_logging_cmgr(logging.CRITICAL):
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            # Dask's nannies set MALLOC_TRIM_THRESHOLD_ in a worker's environment, which turns
            # off glibc's adaptive mmap threshold: every array over 128 KiB is then mapped
            # afresh, and a trial runs 1.6x slower. Its other settings (one BLAS thread) stay.
            with dask.config.set({NO_MALLOC_TRIM: None}):
                cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    # the scheduler's HTTP server on a free loopback port: two sweeps at once
                    # do not contend for 8787 (nor warn about it)
                    dashboard_address="127.0.0.1:0",
                    # The sweep reports every trial's outcome itself; what the workers would
                    # log at ERROR is the race of a stop (a heartbeat to a scheduler already
                    # closing), which must not follow the sweep's last line.
                    silence_logs=logging.CRITICAL)
            try:
                client = Client(cluster)
            except BaseException:
                cluster.close()
                raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        try:
            yield client
        finally:
            _close_workers(cluster)
            client.close()
            cluster.close()


def _close_workers(cluster: Any) -> None:
    """Close the local workers, giving a running trial CLOSE_WAIT_S, not Dask's 4 s."""
    import asyncio

    nannies = list(getattr(cluster, "workers", {}).values())
    if not nannies or not all(hasattr(n, "close") for n in nannies):
        return  # cluster.close() then closes them its own (slower) way

    async def close_all() -> None:
        await asyncio.gather(*(n.close(timeout=CLOSE_WAIT_S) for n in nannies),
                             return_exceptions=True)

    with contextlib.suppress(Exception):
        cluster.sync(close_all)


def local_workers(requested: int | None, trials: int) -> tuple[int, int]:
    """(workers for a local cluster, the cores here): one per core, at most one per trial.

    ``requested`` (None: one per core) is capped by the cores and the trials; above
    MAX_WORKERS it is refused (SweepError).
    """
    try:
        from dask.system import cpu_count
    except ImportError:
        raise SweepError(NEEDS_DASK) from None
    if requested is not None and requested > MAX_WORKERS:
        raise SweepError(f"--workers {requested:,} is more than a local cluster can run (at "
                         f"most {MAX_WORKERS}, and one per core is best); pass at most "
                         f"{cpu_count()} here, or use --scheduler for a bigger cluster")
    cores = cpu_count()  # affinity and cgroup quota counted, as LocalCluster does
    return max(1, min(requested or cores, cores, trials)), cores


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
