"""What a sweep leaves behind: trial folders, results.csv, sweep.json, two pictures, a table.

Everything here runs on the client and goes through the one atomic writer. A trial's
folder holds the files of ``xpnet train``, its ``metrics.json`` written last, so a folder
whose metrics say ``finished`` or ``failed`` is complete; any other trial runs again.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, run_plots
from .dataset.atomic import atomic_write_bytes
from .errors import RunFolderError
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
from .sweep_spec import SETTINGS, trial_key

TRIALS_DIR = "trials"
DONE = ("finished", "failed")  # outcomes that depend only on the settings: never rerun
CONFIG_COLUMNS = ("dataset", "device", "dtype", "grad", "lr", "hidden", "batch_size", "iters",
                  "weight_init_std", "seed")
COLUMNS = ("trial", "status", *CONFIG_COLUMNS, "final_test_acc", "best_test_acc",
           "final_train_acc", "wall_time_s", "worker", "error")
LOG_AXIS = ("lr", "weight_init_std")


def finished_trials(out: str | Path) -> dict[str, dict[str, Any]]:
    """{trial key: metrics} of the trials done in the sweep folder ``out`` ({} if new).

    Raises RunFolderError if ``out`` is a file, or a folder holding something else.
    """
    out = Path(out)
    refuse_non_folder(out)
    if not out.exists():
        return {}
    if any(out.iterdir()) and not (out / "sweep.json").is_file():
        raise RunFolderError(f"{out} holds files but no sweep.json, so it is not a sweep's folder; "
                         "pass a new folder, or the --out of the sweep to continue")
    done = {}
    for path in sorted((out / TRIALS_DIR).glob("*/metrics.json")):
        try:
            doc = read_metrics(path.parent)
        except RunFolderError:
            continue  # unreadable: the trial runs again
        if doc.get("status") in DONE:
            done[path.parent.name] = doc
    return done


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


def rows(configs: Sequence[Any], docs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial: its key, config, status (``pending`` until done) and results."""
    table = []
    for config in configs:
        key = trial_key(config)
        doc = docs.get(key, {})
        table.append({
            "trial": key, "config": config, "status": doc.get("status", "pending"),
            **{c: getattr(config, c) for c in CONFIG_COLUMNS},
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
                     swept: Sequence[str]) -> None:
    """``out/sweep.json``: the command, the engine, the trial list and where each stands."""
    counts = {s: sum(r["status"] == s for r in table) for s in ("finished", "failed", "error",
                                                                 "pending")}
    doc = {
        "schema_version": 1,
        "status": status,
        "xpnet_version": __version__,
        "updated_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "engine": dict(engine),
        "swept": list(swept),
        "counts": {"trials": len(table), **counts},
        "trials": [{"trial": r["trial"], "folder": f"{TRIALS_DIR}/{r['trial']}",
                    "status": r["status"], "config": r["config"].to_dict()} for r in table],
    }
    write_json(out / "sweep.json", doc)


def label(config: Any, swept: Sequence[str]) -> str:
    """The swept settings of a trial, e.g. ``lr 0.1, hidden 50`` (its seed if none)."""
    swept = swept or ["seed"]
    return ", ".join(f"{k} {getattr(config, k):g}" if SETTINGS[k] == "float"
                     else f"{k} {getattr(config, k)}" for k in swept)


def table(table_rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> str:
    """A plain-text table of trials: key, swept settings and, if known, results."""
    head = ["trial", *swept]
    results = any(r.get("status") not in (None, "pending") for r in table_rows)
    if results:
        head += ["final test", "best test", "train", "time s"]
    lines = [head]
    for r in table_rows:
        config = r["config"]
        line = [r["trial"], *(f"{getattr(config, k):g}" if SETTINGS[k] == "float"
                              else str(getattr(config, k)) for k in swept)]
        if results:
            line += [_num(r.get("final_test_acc")), _num(r.get("best_test_acc")),
                     _num(r.get("final_train_acc")), _num(r.get("wall_time_s"), "{:.1f}")]
        lines.append(line)
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(v).rjust(w) for v, w in zip(row, widths, strict=True))
                     for row in lines)


def _num(value: float | None, fmt: str = "{:.4f}") -> str:
    return "-" if value is None else fmt.format(value)


LINESTYLES = ("-", "--", ":", "-.")


def plot_accuracy(path: Path, table_rows: Sequence[Mapping[str, Any]],
                  docs: Mapping[str, Mapping[str, Any]], swept: Sequence[str]) -> None:
    """Test accuracy per epoch of every finished trial, in one figure.

    The colour follows the first swept setting (dark to light as it grows), the line
    style the second, so a grid reads at a glance; the legend names every trial.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    done = [r for r in table_rows if r["status"] == "finished"]
    names = list(swept) or ["seed"]
    first = sorted({getattr(r["config"], names[0]) for r in done})
    second = sorted({getattr(r["config"], names[1]) for r in done}) if len(names) > 1 else []
    colours = colormaps["viridis"]
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    for r in done:
        epochs, _, accs = run_plots.accuracy_points(docs[r["trial"]])
        shade = first.index(getattr(r["config"], names[0])) / max(len(first) - 1, 1)
        style = (LINESTYLES[second.index(getattr(r["config"], names[1])) % len(LINESTYLES)]
                 if second else "-")
        ax.plot(epochs, accs, marker="o", markersize=2, linewidth=1.2, linestyle=style,
                color=colours(0.9 * shade), label=label(r["config"], swept))
    ax.set_xlabel("epochs")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.0)
    ax.set_title(f"test accuracy per epoch, {len(done)} of {len(table_rows)} trials")
    if 0 < len(done) <= 24:
        ax.legend(loc="lower right", fontsize=7, ncol=2 if len(done) > 8 else 1)
    save_figure(fig, path)


def plot_by_setting(path: Path, table_rows: Sequence[Mapping[str, Any]],
                    swept: Sequence[str]) -> None:
    """Final test accuracy against each swept setting (lr on a log axis).

    Each trial is a point, failed ones a red x at 0; for a setting of a few values the
    mean of the finished trials at each value is joined by a line.
    """
    from matplotlib.figure import Figure

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
        distinct = sorted(set(values))
        if SETTINGS[name] in ("int", "float"):
            x = np.asarray(values, dtype=float)
            if name in LOG_AXIS:
                ax.set_xscale("log")
            elif len(distinct) <= 12:
                ax.set_xticks(distinct, [f"{v:g}" for v in distinct])
        else:
            x = np.asarray([distinct.index(v) for v in values], dtype=float)
            ax.set_xticks(range(len(distinct)), distinct)
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
                 f"{int(failed.sum())} failed of {len(table_rows)} trials")
    save_figure(fig, path)
