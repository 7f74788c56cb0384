"""``xpnet sweep``: many training runs in parallel on Dask, collected and compared."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import (
    EVAL_SAMPLES_HELP,
    NET_DEFAULT_HELP,
    add_data_args,
    pick_dataset,
    positive_int,
    seed_int,
)

SETTING_HELP = {
    "net": "two-layer, multi-layer, simple-conv and/or deep-conv (default: two-layer); "
           "each net takes the book's values for the settings not given",
    "optimizer": f"sgd, momentum, nesterov, adagrad, rmsprop and/or adam (default: "
                 f"{NET_DEFAULT_HELP['optimizer']})",
    "lr": f"learning rate(s) (default: {NET_DEFAULT_HELP['lr']})",
    "weight_decay": "L2 weight decay(s) >= 0 of multi-layer, e.g. log:1e-8:1e-4 as the "
                    f"book's ch. 6.5 search (default: {NET_DEFAULT_HELP['weight_decay']})",
    "hidden": "hidden units; a comma separates the values to try, as for every setting "
              "(50,100: two nets of one layer), so one value names all of a net's layers, "
              "spelled as in xpnet train: 100x6 (six layers of 100), 100x2+50 (layers joined "
              "by +), 50-200:50x4 (four layers of each width); 100,100 is refused, as it "
              f"would try 100 twice (default: {NET_DEFAULT_HELP['hidden']})",
    "activation": f"relu and/or sigmoid (default: {NET_DEFAULT_HELP['activation']})",
    "seed": "seed(s) of weights and batches (default: one seed drawn from --sweep-seed, "
            "the same for every trial)",
    "dtype": "float64 and/or float32 (default: float64)",
    "iters": "iterations (default: 10000)",
    "batch_size": "mini-batch size (default: 100)",
    "weight_init_std": "standard deviation(s) of the initial weights: numbers, and for "
                       "multi-layer he/relu, xavier/sigmoid (default: "
                       f"{NET_DEFAULT_HELP['weight_init_std']})",
    "grad": "backprop and/or numerical (default: backprop)",
    "eval_samples": f"N: {EVAL_SAMPLES_HELP}",
}


def register(sub: Any) -> None:
    """Add ``sweep`` to the xpnet subcommands ``sub``."""
    from ..sweep_spec import MAX_TRIALS, SCHEDULER_ENV, SETTINGS, flag

    p = sub.add_parser(
        "sweep", help="many training runs in parallel (Dask), collected and compared",
        description="Train a net once per trial, in parallel on Dask, and compare. "
                    "Each setting takes one value, a list (0.01,0.1,1), an integer range "
                    "(0-4, 50-200:50) or, with --trials N, a distribution drawn N times "
                    "(log:1e-4:1, uniform:0.01:0.1, int:20:500). Lists and ranges are "
                    "crossed into a grid. Ctrl-C keeps the finished trials; the same "
                    "command with the same --out runs only the rest.",
        epilog="examples: xpnet sweep --dataset fashion-mnist --lr 0.01,0.1,1 --hidden 50,100 "
               "--seed 0-1 --iters 2000 --out sweeps/lr-hidden; the book's hyperparameter "
               "search (ch. 6.5): xpnet sweep --net multi-layer --hidden 100x6 --lr "
               "log:1e-6:1e-2 --weight-decay log:1e-8:1e-4 --trials 100 --iters 2000")
    add_data_args(p)
    for name in SETTINGS:
        p.add_argument(flag(name), dest=name, metavar="SPEC", default=None,
                       help=SETTING_HELP[name])
    p.add_argument("--trials", type=positive_int, default=None, metavar="N",
                   help="random search: N draws from the distributions, each crossed with "
                        "the grid")
    p.add_argument("--sweep-seed", type=seed_int, default=0, metavar="S",
                   help="seed of the draws and of the default trial seed (default: 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="sweep folder, this command's alone while it runs; the same sweep's "
                        "folder continues it, another sweep's is refused (default: a new "
                        "sweeps/<time>-<id>)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes of the local cluster (default and most: one per "
                        "core, and one per trial to run)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help=f"an existing Dask scheduler, e.g. tcp://host:8786, or tls://... "
                        f"with Dask's TLS settings (DASK_DISTRIBUTED__COMM__TLS__*) (default: "
                        f"${SCHEDULER_ENV}; unset: a local cluster for this command)")
    p.add_argument("--top", type=positive_int, default=5, metavar="K",
                   help="best trials shown at the end (default: 5)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the trials and exit (any number: it runs nothing)")
    p.add_argument("--yes", action="store_true",
                   help=f"run a sweep of more than {MAX_TRIALS:,} trials")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)


def _plan(args: argparse.Namespace, scheduler: str | None) -> tuple[list[Any], str]:
    """(the trials the options ask for, the dataset note to print when the sweep starts).

    Everything that can be refused before a trial runs is refused here, in one line: the
    note on the default dataset is held back, so that a mistake prints only the error.
    """
    from .. import sweep_spec
    from ..run import absolute
    from ..sweep import SweepError, trial_device

    options = {name: sweep_spec.parse(name, getattr(args, name))
               for name in sweep_spec.SETTINGS if getattr(args, name) is not None}
    grid = {k: v for k, v in options.items() if isinstance(v, sweep_spec.Values)}
    total = sweep_spec.count(grid, args.trials or 1)
    if total > sweep_spec.HARD_LIMIT:
        raise SweepError(f"this sweep has {total:,} trials, more than "
                         f"{sweep_spec.HARD_LIMIT:,}; sweep fewer values")
    if scheduler and args.workers is not None:
        raise SweepError("--workers sizes the local cluster; with --scheduler the "
                         "cluster's own workers run the trials")
    held = io.StringIO()
    with contextlib.redirect_stderr(held):
        dataset = pick_dataset(args)
    base = {"dataset": dataset, "device": trial_device(args.device, scheduler),
            "data_dir": absolute(args.data_dir) if args.data_dir else None}
    return sweep_spec.trials(base, options, args.trials, args.sweep_seed), held.getvalue()


def cmd_sweep(args: argparse.Namespace) -> int:
    from .. import sweep_report as sr
    from ..run import load_data, provenance, stop_on_signals
    from ..run_folder import new_run_dir
    from ..sweep import SweepError, trial_keys
    from ..sweep_spec import MAX_TRIALS, SCHEDULER_ENV, swept_of

    scheduler = args.scheduler or os.environ.get(SCHEDULER_ENV) or None
    configs, dataset_note = _plan(args, scheduler)
    if not args.dry_run and len(configs) > MAX_TRIALS and not args.yes:
        raise SweepError(f"this sweep has {len(configs):,} trials, more than {MAX_TRIALS:,}; "
                         "pass --yes to run them all (or --dry-run to list them)")
    data = load_data(configs[0])  # before the signal handlers: a Ctrl-C here just ends it
    if args.dry_run:  # runs nothing, so no --yes
        sys.stderr.write(dataset_note)
        keys = trial_keys(configs, provenance(data))
        print(sr.table(sr.rows(configs, keys, {}), swept_of(configs) or ["seed"]))
        print(f"{len(configs)} trials")
        return 0
    out = args.out if args.out is not None else new_run_dir("sweeps")
    command = ["xpnet", *sys.argv[1:]] if sys.argv[1:2] == ["sweep"] else None
    with stop_on_signals(raise_again=False) as received:
        table = _run(args, scheduler, configs, data, out, command, dataset_note, received)
    signum = received()
    if signum is None and table is not None:
        _print_best(table, swept_of(configs), args.top, out)
        return 0
    again = shlex.join(command or ["xpnet", "sweep", "..."])
    if args.out is None:
        again += f" --out {shlex.quote(str(out))}"
    print(f"xpnet sweep: interrupted; the finished trials are kept in {out}. "
          f"Continue with: {again}", file=sys.stderr)
    return 128 + (signum or signal.SIGINT)


def _run(args: argparse.Namespace, scheduler: str | None, configs: list[Any], data: Any,
         out: Path, command: list[str] | None, dataset_note: str,
         asked: Callable[[], int | None]) -> list[dict[str, Any]] | None:
    """The sweep, from claiming ``out`` to closing the cluster: its table (None if stopped).

    ``asked``: the stop flag's reader, read by each step.
    """
    from tqdm import tqdm

    from ..run import provenance
    from ..sweep import claim, connect, describe, local_workers, sweep, trial_keys

    with claim(out, configs, data) as finished, contextlib.ExitStack() as stack:
        todo = sum(k not in finished for k in trial_keys(configs, provenance(data)))
        client = None
        engine: dict[str, Any] = {"kind": "none", "workers": 0}
        if todo and not asked():
            workers = None
            if not scheduler:
                workers, cores = local_workers(args.workers, todo)
                if args.workers is not None and args.workers > cores:
                    print(f"xpnet sweep: --workers {args.workers}: this machine has {cores} "
                          f"core{'s' if cores > 1 else ''}; using {workers}", file=sys.stderr)
            client = stack.enter_context(connect(scheduler, workers, stop=asked))
            engine = describe(client, scheduler)
        sys.stderr.write(dataset_note)
        plural = "" if len(configs) == 1 else "s"
        print(f"xpnet sweep: {len(configs)} trial{plural}, {len(configs) - todo} already "
              f"done; {engine['workers']} workers ({engine['kind']}); writing {out}", flush=True)
        if client is not None:
            _print_dashboard(client, scheduler)
        if asked():
            return None
        table = sweep(configs, out=out, client=client, data=data, command=command,
                      engine=engine, progress=False if args.no_progress else None,
                      finished=finished, stop=asked,
                      say=lambda line: tqdm.write(f"xpnet sweep: {line}", file=sys.stderr))
    return None if asked() else table


def _print_dashboard(client: Any, scheduler: str | None) -> None:
    import importlib.util

    link = getattr(client, "dashboard_link", None)
    if not link:
        return
    if scheduler:
        need = " (served if bokeh is installed where the scheduler runs)"
    elif importlib.util.find_spec("bokeh") is None:
        need = " (pip install 'bokeh>=3.1.0' to see it)"
    else:
        need = ""
    print(f"xpnet sweep: Dask dashboard at {link}{need}", flush=True)


def _print_best(table: list[dict[str, Any]], swept: list[str], top: int, out: Path) -> None:
    from .. import sweep_report as sr

    best = sorted((r for r in table if r["status"] == "finished"),
                  key=lambda r: -r["final_test_acc"])[:top]
    unfinished = len(table) - sum(r["status"] == "finished" for r in table)
    print(f"best {len(best)} of {len(table)} trials by final test accuracy"
          + (f" ({unfinished} did not finish: see results.csv)" if unfinished else "") + ":")
    if best:
        print(sr.table(best, swept or ["seed"]))
    print(f"wrote {out}/results.csv, sweep.json, accuracy.png, by_setting.png and "
          f"{sr.TRIALS_DIR}/<trial>/")
