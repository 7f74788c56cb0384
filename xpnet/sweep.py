"""``xpnet sweep``: many training runs in parallel on Dask, collected and compared.

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

import argparse
import contextlib
import datetime as dt
import os
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .inputs import InputError

MAX_TRIALS = 10_000  # more needs --yes
CONNECT_TIMEOUT_S = 5  # an unreachable --scheduler is given up after this
WORKER_WAIT_S = 30  # and one without workers after this
SCHEDULER_ENV = "XPNET_SCHEDULER"
NO_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
RETRIES = 1  # for an exception a second try may not repeat (a worker short of memory)
CSV_EVERY_S = 1.0  # results.csv is rewritten at most this often (and at the end)


class SweepError(InputError):
    """A sweep cannot start as asked (its size, folder, cluster, or Dask missing)."""


def register(sub: Any) -> None:
    """Add ``xpnet sweep`` to the CLI's subparsers."""
    from .cli import add_data_args, positive_int, seed_int
    from .sweep_spec import SETTINGS, flag

    p = sub.add_parser(
        "sweep", help="many training runs in parallel (Dask), collected and compared",
        description="Train the TwoLayerNet once per trial, in parallel on Dask, and compare. "
                    "Each setting takes one value, a list (0.01,0.1,1), an integer range "
                    "(0-4, 50-200:50) or, with --trials N, a distribution drawn N times "
                    "(log:1e-4:1, uniform:0.01:0.1, int:20:500). Lists and ranges are "
                    "crossed into a grid. Ctrl-C keeps the finished trials; the same "
                    "command with the same --out runs only the rest.",
        epilog="example: xpnet sweep --dataset fashion-mnist --lr 0.01,0.1,1 --hidden 50,100 "
               "--seed 0-1 --iters 2000 --out sweeps/lr-hidden")
    add_data_args(p)
    helps = {
        "lr": "learning rate(s) (default: 0.1)",
        "hidden": "hidden units (default: 50)",
        "seed": "seed(s) of weights and batches (default: one seed drawn from --sweep-seed, "
                "the same for every trial)",
        "dtype": "float64 and/or float32 (default: float64)",
        "iters": "iterations (default: 10000)",
        "batch_size": "mini-batch size (default: 100)",
        "weight_init_std": "standard deviation of the initial weights (default: 0.01)",
        "grad": "backprop and/or numerical (default: backprop)",
    }
    for name in SETTINGS:
        p.add_argument(flag(name), dest=name, metavar="SPEC", default=None, help=helps[name])
    p.add_argument("--trials", type=positive_int, default=None, metavar="N",
                   help="random search: N draws from the distributions, each crossed with "
                        "the grid")
    p.add_argument("--sweep-seed", type=seed_int, default=0, metavar="S",
                   help="seed of the draws and of the default trial seed (default: 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="sweep folder; an existing sweep's folder continues it (default: a "
                        "new sweeps/<time>-<id>)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help=f"an existing Dask scheduler, e.g. tcp://host:8786 (default: "
                        f"${SCHEDULER_ENV}; unset: a local cluster for this command)")
    p.add_argument("--top", type=positive_int, default=5, metavar="K",
                   help="best trials shown at the end (default: 5)")
    p.add_argument("--dry-run", action="store_true", help="print the trials and exit")
    p.add_argument("--yes", action="store_true",
                   help=f"run a sweep of more than {MAX_TRIALS:,} trials")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from . import sweep_report as sr
    from . import sweep_spec as spec
    from .cli import pick_dataset

    # Everything that can be refused is checked before anything is written or started.
    specs = {name: spec.parse(name, getattr(args, name)) for name in spec.SETTINGS
             if getattr(args, name) is not None}
    total = spec.count({k: v for k, v in specs.items() if isinstance(v, spec.Values)},
                       args.trials or 1)
    if total > spec.HARD_LIMIT:
        raise SweepError(f"this sweep has {total:,} trials, more than "
                         f"{spec.HARD_LIMIT:,}; sweep fewer values")
    if total > MAX_TRIALS and not args.yes:
        raise SweepError(f"this sweep has {total:,} trials, more than {MAX_TRIALS:,}; "
                         "pass --yes to run them all")
    scheduler = args.scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler and args.workers is not None:
        raise SweepError("--workers sizes the local cluster; with --scheduler the "
                         "cluster's own workers run the trials")
    base = {"dataset": pick_dataset(args), "device": trial_device(args.device, scheduler),
            "data_dir": str(args.data_dir) if args.data_dir else None}
    configs = spec.trials(base, specs, args.trials, args.sweep_seed)
    swept = spec.swept(configs)
    if args.dry_run:
        print(sr.table(sr.rows(configs, {}), swept or ["seed"]))
        print(f"{len(configs)} trials")
        return 0
    done = sr.finished_trials(args.out) if args.out is not None else {}
    todo = [c for c in configs if spec.trial_key(c) not in done]
    command = ["xpnet", *sys.argv[1:]] if sys.argv[1:2] == ["sweep"] else None
    with contextlib.ExitStack() as stack:
        client = data = None
        engine: dict[str, Any] = {"kind": "none", "workers": 0}
        if todo:
            from .run import load_data

            data = load_data(todo[0])
            client = stack.enter_context(connect(scheduler, args.workers or os.cpu_count() or 1))
            engine = describe(client, scheduler)
        if args.out is not None:
            out = args.out
        else:
            from .run import new_run_dir

            out = new_run_dir("sweeps")
        plural = "" if len(configs) == 1 else "s"
        print(f"xpnet sweep: {len(configs)} trial{plural}, {len(configs) - len(todo)} already "
              f"done; {engine['workers']} workers ({engine['kind']}); writing {out}", flush=True)
        from .run import stop_on_signals

        try:
            with stop_on_signals(at_once=True) as received:
                table = sweep(configs, out=out, client=client, data=data, command=command,
                              engine=engine, progress=False if args.no_progress else None,
                              done=done)
        except KeyboardInterrupt:
            again = shlex.join(command or ["xpnet", "sweep", "..."])
            if args.out is None:
                again += f" --out {shlex.quote(str(out))}"
            print(f"xpnet sweep: interrupted; the finished trials are kept in {out}. "
                  f"Continue with: {again}", file=sys.stderr)
            return 128 + (received() or signal.SIGINT)
    best = sorted((r for r in table if r["status"] == "finished"),
                  key=lambda r: -r["final_test_acc"])[: args.top]
    unfinished = len(table) - sum(r["status"] == "finished" for r in table)
    print(f"best {len(best)} of {len(table)} trials by final test accuracy"
          + (f" ({unfinished} did not finish: see results.csv)" if unfinished else "") + ":")
    if best:
        print(sr.table(best, swept or ["seed"]))
    print(f"wrote {out}/results.csv, sweep.json, accuracy.png, by_setting.png and "
          f"{sr.TRIALS_DIR}/<trial>/")
    return 0


def trial_device(spec: str | None, scheduler: str | None) -> str:
    """The trials' device: resolved here for a local cluster, only named for a remote one.

    A remote cluster's workers may have GPUs this machine lacks, so ``cuda`` is checked
    there, not here; ``auto`` is refused, as it could mean other devices on other workers.
    """
    from .backend import ENV_VAR, VALID_DEVICES, DeviceError, parse_device

    if not scheduler:
        return str(parse_device(spec))
    name = (spec or os.environ.get(ENV_VAR) or "cpu").strip().lower()
    index = name.partition(":")[2]
    if name == "cpu" or name == "cuda" or (name.startswith("cuda:") and index.isdigit()):
        return "cuda:0" if name == "cuda" else name
    if name == "auto":
        raise DeviceError("--device auto could mean different devices on different workers; "
                          "with --scheduler say cpu or cuda")
    raise DeviceError(f"unknown device {name!r}: valid values are {VALID_DEVICES}")


def sweep(configs: Sequence[Any], *, out: str | Path, client: Any, data: Any = None,
          command: list[str] | None = None, engine: dict[str, Any] | None = None,
          progress: bool | None = False,
          done: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run the trials (``RunConfig``s) not yet done in ``out`` on ``client``'s cluster.

    ``client``: a ``distributed.Client`` (may be None when every trial is done). ``data``:
    the loaded dataset (``run.load_data``), shipped to each worker once. Writes every
    file under ``out`` as trials finish; returns one row per trial (``sweep_report.rows``).
    Ctrl-C (KeyboardInterrupt) stops it after writing what is finished.
    """
    import numpy as np
    from tqdm import tqdm

    from . import sweep_report as sr
    from .sweep_spec import swept as swept_of
    from .sweep_spec import trial_key

    out = Path(out)
    done = sr.finished_trials(out) if done is None else done
    docs = {trial_key(c): done[trial_key(c)] for c in configs if trial_key(c) in done}
    todo = [c for c in configs if trial_key(c) not in docs]
    if todo and data is None:
        from .run import load_data

        data = load_data(todo[0])
    from .run import provenance

    data_info = provenance(data) if data is not None else {}
    swept = swept_of(configs)
    if engine is None:
        engine = describe(client, None) if client is not None else {"kind": "none"}
    try:
        (out / sr.TRIALS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SweepError(f"cannot write in {out} ({err.strerror or err}); pass a folder you "
                         "can write") from None

    def save(status: str) -> None:
        table = sr.rows(configs, docs)
        sr.write_results(out, table)
        sr.write_sweep_json(out, table, status=status, command=command, engine=engine,
                            swept=swept)
        if status != "running":
            with np.errstate(over="ignore", invalid="ignore"):  # axes reaching lr 1e308
                sr.plot_accuracy(out / "accuracy.png", table, docs, swept)
                sr.plot_by_setting(out / "by_setting.png", table, swept)

    save("running")
    finished = [d["final_test_acc"] for d in docs.values() if d["status"] == "finished"]
    bar = tqdm(total=len(configs), initial=len(docs), unit="trial", desc="sweep",
               disable=None if progress is None else not progress)
    status, saved = "interrupted", time.monotonic()
    try:
        if finished:
            bar.set_postfix_str(f"best test acc {max(finished):.4f}")
        for config, outcome in _outcomes(client, data, todo):
            key = trial_key(config)
            if outcome["status"] == "error":  # not a result: kept out of the folder, rerun
                docs[key] = {"status": "error", "error": outcome["error"]}
            else:
                docs[key] = sr.write_trial(out / sr.TRIALS_DIR / key, outcome, data_info,
                                           command)
            if docs[key]["status"] == "finished":
                finished.append(docs[key]["final_test_acc"])
                bar.set_postfix_str(f"best test acc {max(finished):.4f}", refresh=False)
            bar.update()
            if time.monotonic() - saved >= CSV_EVERY_S:
                sr.write_results(out, sr.rows(configs, docs))
                saved = time.monotonic()
        status = "finished"
    finally:
        bar.close()
        save(status)
    return sr.rows(configs, docs)


def _outcomes(client: Any, data: Any, configs: Sequence[Any]) -> Iterator[tuple[Any, dict]]:
    """(config, outcome) for each trial, in the order they finish."""
    if not configs:
        return
    from distributed import as_completed

    from .sweep_spec import trial_key

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
                outcome = {"status": "error", "error": _one_line(err)}
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
    from . import report
    from .inputs import InputError
    from .run import RunConfig, run
    from .trainer import DivergenceError

    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    outcome: dict[str, Any] = {"config": config, "started_at": started, "worker": _worker()}
    with one_core():
        try:
            result = run(RunConfig.from_dict(config), data=data)
            outcome.update(status=result.status, result=result)
        except (DivergenceError, InputError) as err:  # an outcome of these settings
            outcome.update(status="failed", error=" ".join(str(err).split()),
                           environment=report.environment())
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
                         f"{CONNECT_TIMEOUT_S} s ({_one_line(err)}); start it (dask scheduler) "
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


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
