"""What a run leaves behind for people and tools: metrics.json and the two plots.

``metrics.json`` has a ``schema_version``; version 1 is laid out by ``RunRecord.metrics``
and nowhere else. Every file goes through the one atomic writer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import __version__
from .dataset.atomic import atomic_write, atomic_write_bytes
from .trainer import iter_per_epoch

if TYPE_CHECKING:
    from .run import RunConfig, RunResult

SCHEMA_VERSION = 1
LOSS_NOTE = ("train_loss_list[k]: the cross-entropy of mini-batch k in the forward pass that "
             "gave its gradient (the book recomputes it after the update); with loss_stride "
             "> 1, the mean over loss_stride consecutive mini-batches")


@dataclass
class RunRecord:
    """The parts of metrics.json known before training starts."""

    config: RunConfig
    started_at: dt.datetime
    command: list[str] | None
    data: dict[str, Any]
    environment: dict[str, Any] = field(default_factory=lambda: environment())

    def metrics(self, *, status: str | None = None, result: RunResult | None = None,
                error: str | None = None, wall_time_s: float | None = None) -> dict[str, Any]:
        """metrics.json, schema version 1: a run ``running``, ``failed`` or a result's."""
        per_epoch = iter_per_epoch(self.data["train_size"], self.config.batch_size)
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "status": result.status if result is not None else status,
            "xpnet_version": __version__,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "command": self.command,
            "config": self.config.to_dict(),
            "data": self.data,
            "environment": self.environment,
            "iter_per_epoch": int(per_epoch) if per_epoch == int(per_epoch) else per_epoch,
        }
        if error is not None:
            doc["error"] = error
        if wall_time_s is not None:
            doc["wall_time_s"] = wall_time_s
        if result is None:
            return doc
        h = result.history
        doc.update({
            "finished_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "iterations_done": h.iterations,
            "epochs": [
                {"epoch": k, "iteration": i, "train_acc": a, "test_acc": b}
                for k, (i, a, b) in enumerate(zip(h.eval_iterations, h.train_acc_list,
                                                 h.test_acc_list, strict=True))
            ],
            "final_train_acc": result.final_train_acc,
            "final_test_acc": result.final_test_acc,
            "best_test_acc": result.best_test_acc,
            "train_wall_time_s": h.wall_time_s,
            "wall_time_s": result.wall_time_s,
            "train_loss_note": LOSS_NOTE,
            "loss_stride": h.loss_stride,
            "train_loss_list": h.train_loss_list,
        })
        return doc


def environment() -> dict[str, Any]:
    """Library versions, host and threads: what a later reader needs to compare runs."""
    libraries = {}
    for name in ("numpy", "numba", "cupy", "matplotlib"):
        if name == "cupy" and "cupy" not in sys.modules:
            continue  # only when the run used it
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = None
    return {
        "python": platform.python_version(),
        "libraries": libraries,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "blas_threads": _blas_threads(),
        "numba_threads": _numba_threads(),
    }


def _blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info

        return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
                   default=None)
    except Exception:  # it inspects native libraries; a record must never fail on it
        return None


def _numba_threads() -> int | None:
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:
        return None


def write_metrics(out: Path, doc: Mapping[str, Any]) -> None:
    """``out/metrics.json``, indented."""
    atomic_write_bytes(out / "metrics.json", (json.dumps(doc, indent=2) + "\n").encode())


def read_metrics(out: str | Path) -> dict[str, Any]:
    """A run folder's metrics.json as a dict (any schema version; check ``schema_version``)."""
    return json.loads((Path(out) / "metrics.json").read_text())


def _title(result: RunResult) -> str:
    c = result.config
    final = "" if result.final_test_acc is None else f", test acc {result.final_test_acc:.4f}"
    return (f"{c.dataset}, {c.device}, {c.dtype}, {c.grad}: lr {c.lr:g}, hidden {c.hidden}, "
            f"batch {c.batch_size}, seed {c.seed}{final}")


def save_figure(fig: Figure, path: Path) -> None:
    """``fig`` as a PNG at ``path``, atomically."""
    FigureCanvasAgg(fig)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


def accuracy_points(result: RunResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, train acc, test acc): each evaluation, then the end of the run if later."""
    h = result.history
    per_epoch = h.iter_per_epoch
    epochs = [i / per_epoch for i in h.eval_iterations]
    train, test = list(h.train_acc_list), list(h.test_acc_list)
    end = h.iterations / per_epoch
    if result.final_test_acc is not None and (not epochs or end > epochs[-1]):
        epochs.append(end)
        train.append(result.final_train_acc)
        test.append(result.final_test_acc)
    return np.asarray(epochs), np.asarray(train), np.asarray(test)


def plot_accuracy(result: RunResult, path: Path) -> None:
    """The book's figure: train (solid) and test (dashed) accuracy per epoch, y in [0, 1].

    Points are marked, and the accuracy after the last iteration is the last point, so
    even a run shorter than an epoch draws a line.
    """
    epochs, train, test = accuracy_points(result)
    fig = Figure(figsize=(7.2, 4.8))
    ax = fig.add_subplot()
    ax.plot(epochs, train, marker="o", markersize=3, label="train acc")
    ax.plot(epochs, test, marker="s", markersize=3, linestyle="--", label="test acc")
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="lower right")
    ax.set_title(_title(result), fontsize=9)
    save_figure(fig, path)


def centred_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over ``window`` values centred on each point (shorter at the ends)."""
    kernel = np.ones(window)
    sums = np.convolve(values, kernel, mode="same")
    counts = np.convolve(np.ones_like(values), kernel, mode="same")
    return sums / counts


def plot_loss(result: RunResult, path: Path) -> None:
    """Mini-batch loss per iteration, with a centred mean over one epoch."""
    h = result.history
    loss = np.asarray(h.train_loss_list)
    iterations = (np.arange(loss.size) + 0.5) * h.loss_stride - 0.5
    fig = Figure(figsize=(7.2, 4.8))
    ax = fig.add_subplot()
    ax.plot(iterations, loss, linewidth=0.5, alpha=0.5, label="mini-batch loss")
    window = int(round(h.iter_per_epoch / h.loss_stride))
    if loss.size >= window > 1:
        ax.plot(iterations, centred_mean(loss, window),
                label=f"centred mean over one epoch ({window * h.loss_stride} iterations)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right")
    ax.set_title(_title(result), fontsize=9)
    save_figure(fig, path)
