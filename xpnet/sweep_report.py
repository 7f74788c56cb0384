"""What a sweep leaves behind: trial folders, results.csv, sweep.json, two pictures, a table.

Everything here runs on the client and goes through the one atomic writer. A trial's
folder holds the files of ``xpnet train``, its ``metrics.json`` written last, so a folder
whose metrics say ``finished`` or ``failed`` is complete; any other trial runs again.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from . import __version__, run_plots
from .dataset.atomic import atomic_write_bytes
from .dataset.specs import SPECS
from .errors import RunFolderError, first_line
from .folder_lock import LOCK_FILE
from .inputs import NETS
from .run_config import RunConfig
from .run_folder import (
    RunRecord,
    read_metrics,
    refuse_non_folder,
    save_figure,
    write_json,
    write_metrics,
    write_run,
)
from .sweep_spec import show, trial_key

TRIALS_DIR = "trials"
SWEEP_JSON = "sweep.json"
SCHEMA_VERSION = 1
DONE = ("finished", "failed")  # outcomes that depend only on the settings: never rerun
CONFIG_COLUMNS = ("dataset", "device", "net", "optimizer", "dtype", "grad", "lr",
                  "weight_decay", "hidden", "activation", "batch_size", "iters",
                  "weight_init_std", "seed", "eval_samples")
COLUMNS = ("trial", "status", *CONFIG_COLUMNS, "final_test_acc", "best_test_acc",
           "final_train_acc", "wall_time_s", "worker", "error")
LOG_AXIS = ("lr", "weight_init_std", "weight_decay")


def read_sweep(out: str | Path) -> dict[str, Any] | None:
    """``out/sweep.json``, checked; None for a folder that is new, or empty but for its lock.

    Raises RunFolderError for a file, a folder holding something else, or a damaged
    sweep.json.
    """
    out = Path(out)
    refuse_non_folder(out)
    path = out / SWEEP_JSON
    if not out.exists() or (not path.exists()
                            and all(p.name == LOCK_FILE for p in out.iterdir())):
        return None
    if not path.is_file():
        raise RunFolderError(f"{out} holds files but no {SWEEP_JSON}, so it is not a sweep's "
                             "folder; pass a new folder, or the --out of the sweep to continue")
    try:
        doc = json.loads(path.read_text())
        keys = [t["trial"] for t in doc["trials"]]
        ok = doc["schema_version"] == SCHEMA_VERSION and all(isinstance(k, str) for k in keys)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise RunFolderError(f"{path} is damaged ({first_line(err)}); pass a new "
                             "folder") from None
    if not ok:
        raise RunFolderError(f"{path} is not a {SWEEP_JSON} of schema version {SCHEMA_VERSION}; "
                             "pass a new folder")
    return doc


def finished_trials(out: str | Path, trials: Mapping[str, Any],
                    data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{trial key: metrics} of the trials (``{key: RunConfig}``) done in the folder ``out``.

    Done: a trial folder whose metrics.json is readable, says ``finished`` (with its
    results) or ``failed`` (with its error), and names this trial's settings and ``data``
    (``run.provenance``). Anything else (missing, damaged, hand-edited) is not done: the
    trial runs again.
    """
    done = {}
    for key, config in trials.items():
        folder = Path(out) / TRIALS_DIR / key
        try:
            doc = read_metrics(folder)
        except RunFolderError:
            continue
        if _complete(doc, config, data):
            done[key] = doc
    return done


def _complete(doc: Mapping[str, Any], config: Any, data: Mapping[str, Any]) -> bool:
    """Whether a trial's metrics are those of ``config`` on ``data``, done, and usable."""
    try:
        same = (trial_key(RunConfig.from_dict(doc["config"])) == trial_key(config)
                and doc["data"]["identity"] == data.get("identity"))
        if not same:
            return False
        if doc["status"] == "failed":
            return isinstance(doc["error"], str)
        if doc["status"] != "finished":
            return False
        numbers = [doc["final_test_acc"], doc["final_train_acc"], doc["wall_time_s"],
                   *run_plots.accuracy_points(doc)[2]]
        return all(isinstance(x, int | float) and not isinstance(x, bool)
                   and math.isfinite(x) for x in numbers)
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError):
        return False


def write_trial(folder: Path, outcome: Mapping[str, Any], data_info: Mapping[str, Any],
                command: list[str] | None) -> dict[str, Any]:
    """The trial's folder from a worker's outcome (``sweep.run_trial``); its metrics.

    The files are those of ``xpnet train`` (``run.write_run``), metrics.json last; the
    environment is the worker's, with ``dask_worker`` naming it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    result = outcome.get("result")
    if result is None:
        record = RunRecord(config=RunConfig.from_dict(outcome["config"]),
                                  started_at=outcome["started_at"], command=command,
                                  data=dict(data_info), environment=outcome["environment"])
        record.environment["dask_worker"] = outcome["worker"]
        doc = record.metrics(status=outcome["status"], error=outcome["error"],
                             wall_time_s=outcome["wall_time_s"])
        write_metrics(folder, doc)
        return doc
    result.record.command = command
    result.record.environment["dask_worker"] = outcome["worker"]
    return write_run(folder, result)


def rows(configs: Sequence[Any], keys: Sequence[str],
         docs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial: its key, config, status (``pending`` until done) and results.

    ``keys``: the trials' keys (``trial_key`` with the data's identity), as ``configs``.
    """
    table = []
    for config, key in zip(configs, keys, strict=True):
        doc = docs.get(key, {})
        table.append({
            "trial": key, "config": config, "status": doc.get("status", "pending"),
            # hidden as a sweep writes it (100x4), not a Python tuple
            **{c: getattr(config, c) for c in CONFIG_COLUMNS},
            "hidden": show(config.hidden),
            "final_test_acc": doc.get("final_test_acc"),
            "best_test_acc": doc.get("best_test_acc"),
            "final_train_acc": doc.get("final_train_acc"),
            "wall_time_s": doc.get("wall_time_s"),
            "worker": doc.get("environment", {}).get("dask_worker"),
            "error": doc.get("error"),
        })
    return table


def write_results(out: Path, table: Sequence[Mapping[str, Any]]) -> None:
    """``out/results.csv``: one row per trial, pending ones included."""
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    atomic_write_bytes(out / "results.csv", text.getvalue().encode())


def write_sweep_json(out: Path, table: Sequence[Mapping[str, Any]], *, status: str,
                     command: list[str] | None, engine: Mapping[str, Any],
                     swept: Sequence[str], data: Mapping[str, Any]) -> None:
    """``out/sweep.json``: the command, the engine, the data (``run.provenance``), the
    trial list and where each stands."""
    counts = {s: sum(r["status"] == s for r in table) for s in ("finished", "failed", "error",
                                                                 "pending")}
    doc = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "xpnet_version": __version__,
        "updated_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "engine": dict(engine),
        "swept": list(swept),
        "data": dict(data),
        "counts": {"trials": len(table), **counts},
        "trials": [{"trial": r["trial"], "folder": f"{TRIALS_DIR}/{r['trial']}",
                    "status": r["status"], "config": r["config"].to_dict()} for r in table],
    }
    write_json(out / SWEEP_JSON, doc)


def label(config: Any, swept: Sequence[str]) -> str:
    """The swept settings of a trial, e.g. ``lr 0.1, hidden 50`` (its seed if none)."""
    swept = swept or ["seed"]
    return ", ".join(f"{k.replace('_', ' ')} {show(getattr(config, k))}" for k in swept)


def table(table_rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> str:
    """A plain-text table of trials: key, swept settings and, if known, results."""
    head = ["trial", *swept]
    results = any(r.get("status") not in (None, "pending") for r in table_rows)
    if results:
        head += ["final test", "best test", "train", "time s"]
    lines = [head]
    for r in table_rows:
        config = r["config"]
        line = [r["trial"], *(show(getattr(config, k)) for k in swept)]
        if results:
            line += [_num(r.get("final_test_acc")), _num(r.get("best_test_acc")),
                     _num(r.get("final_train_acc")), _num(r.get("wall_time_s"), "{:.1f}")]
        lines.append(line)
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(v).rjust(w) for v, w in zip(row, widths, strict=True))
                     for row in lines)


def ordered(values: Any) -> list[Any]:
    """A setting's distinct values in order: numbers first by size, then the rest (names,
    layer lists) each sorted among its own kind."""
    return sorted(set(values), key=lambda v: (not _number(v),
                                              "" if _number(v) else type(v).__name__, v))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num(value: float | None, fmt: str = "{:.4f}") -> str:
    return "-" if value is None else fmt.format(value)


LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_accuracy(path: Path, table_rows: Sequence[Mapping[str, Any]],
                  docs: Mapping[str, Mapping[str, Any]], swept: Sequence[str]) -> None:
    """``accuracy_figure`` saved at ``path``."""
    save_figure(accuracy_figure(table_rows, docs, swept), path)


def accuracy_figure(table_rows: Sequence[Mapping[str, Any]],
                    docs: Mapping[str, Mapping[str, Any]], swept: Sequence[str]) -> Figure:
    """Test accuracy per epoch of every finished trial, in one figure.

    The colour follows the first swept setting other than the seed (dark to light as it
    grows), the line style the second, the marker the seed, so a grid reads at a glance
    and trials that differ only by seed stay apart; the legend names every trial.
    """
    from matplotlib import colormaps

    done = [r for r in table_rows if r["status"] == "finished"]
    names = [k for k in swept if k != "seed"]
    first = ordered({getattr(r["config"], names[0]) for r in done}) if names else []
    second = ordered({getattr(r["config"], names[1]) for r in done}) if len(names) > 1 else []
    seeds = sorted({r["config"].seed for r in done})
    colours = colormaps["viridis"]
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    for r in done:
        config = r["config"]
        epochs, _, accs = run_plots.accuracy_points(docs[r["trial"]])
        shade = (first.index(getattr(config, names[0])) / max(len(first) - 1, 1)
                 if first else 0.0)
        style = (LINESTYLES[second.index(getattr(config, names[1])) % len(LINESTYLES)]
                 if second else "-")
        marker = MARKERS[seeds.index(config.seed) % len(MARKERS)]
        ax.plot(epochs, accs, marker=marker, markersize=2 if len(seeds) == 1 else 4,
                linewidth=1.2, linestyle=style, color=colours(0.9 * shade),
                label=label(config, swept))
    ax.set_xlabel("epochs")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.0)
    ax.set_title(f"test accuracy per epoch, {len(done)} of {len(table_rows)} trials\n"
                 f"{what_data(table_rows)}", fontsize=10)
    if 0 < len(done) <= 24:
        ax.legend(loc="lower right", fontsize=7, ncol=2 if len(done) > 8 else 1)
    return fig


def what_data(table_rows: Sequence[Mapping[str, Any]]) -> str:
    """The net(s), data set(s) and iterations of the trials, e.g. ``two-layer net on
    Fashion-MNIST, 2,000 iterations``."""
    configs = [r["config"] for r in table_rows]
    nets = sorted({c.net for c in configs}, key=NETS.index)
    names = ", ".join(SPECS[d].title for d in sorted({c.dataset for c in configs}))
    iters = sorted({c.iters for c in configs})
    span = f"{iters[0]:,}" if len(iters) == 1 else f"{iters[0]:,} to {iters[-1]:,}"
    return f"{', '.join(nets)} net{'s' * (len(nets) > 1)} on {names}, {span} iterations"


def plot_by_setting(path: Path, table_rows: Sequence[Mapping[str, Any]],
                    swept: Sequence[str]) -> None:
    """``by_setting_figure`` saved at ``path``."""
    save_figure(by_setting_figure(table_rows, swept), path)


def by_setting_figure(table_rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> Figure:
    """Final test accuracy against each swept setting (lr on a log axis).

    Each trial is a point, failed ones a red x at 0; for a setting of a few values the
    mean of the finished trials at each value is joined by a line.
    """
    names = list(swept) or ["seed"]
    columns = min(len(names), 3)
    rows_n = -(-len(names) // columns)
    finished = np.asarray([r["status"] == "finished" for r in table_rows], dtype=bool)
    failed = np.asarray([r["status"] in ("failed", "error") for r in table_rows], dtype=bool)
    acc = np.asarray([r["final_test_acc"] if r["status"] == "finished" else 0.0
                      for r in table_rows], dtype=float)
    fig = Figure(figsize=(4.2 * columns, 3.6 * rows_n), layout="constrained")
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows_n, columns, i + 1)
        values = [getattr(r["config"], name) for r in table_rows]
        distinct = ordered(set(values))
        if all(_number(v) for v in values):
            x = np.asarray(values, dtype=float)
            if name in LOG_AXIS:
                # a weight decay of 0 among others: linear up to the smallest one above 0
                above = x[x > 0]
                if len(above) == len(x):
                    ax.set_xscale("log")
                elif len(above):
                    ax.set_xscale("symlog", linthresh=float(above.min()))
            elif len(distinct) <= 12:
                ax.set_xticks(distinct, [f"{v:g}" for v in distinct])
        else:  # choices, layer lists, weight scales by name: one place each
            x = np.asarray([distinct.index(v) for v in values], dtype=float)
            ax.set_xticks(range(len(distinct)), [show(v) for v in distinct],
                          rotation=30 if len(distinct) > 4 else 0)
        ax.scatter(x[finished], acc[finished], s=18, alpha=0.7)
        if len(distinct) <= 12 and len(distinct) < len(values):
            at = np.unique(x[finished])
            ax.plot(at, [acc[finished][x[finished] == a].mean() for a in at],
                    color="tab:gray", linewidth=1, label="mean")
        if failed.any():
            ax.scatter(x[failed], acc[failed], marker="x", color="tab:red", label="failed")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=7)
        ax.set_xlabel(name.replace("_", " "))
        ax.set_ylabel("final test accuracy")
        ax.set_ylim(-0.03, 1.0)
    fig.suptitle(f"final test accuracy by setting: {int(finished.sum())} finished, "
                 f"{int(failed.sum())} failed of {len(table_rows)} trials\n"
                 f"{what_data(table_rows)}", fontsize=10)
    return fig
