"""A run's folder, owned here: its layout, claiming it, and every file in it.

::

    params.npz       the trained parameters (TwoLayerNet.load reads it)
    checkpoint.npz   parameters and history to resume from, bit for bit
    metrics.json     settings, provenance, accuracies, losses: schema version 1
    accuracy.png     the book's accuracy figure; loss.png, the mini-batch loss
    eval.json        written by xpnet eval, with confusion.png

``metrics.json`` is written first with ``"status": "running"`` and last with
``finished``, ``interrupted`` or ``failed``, so a folder whose metrics say finished holds
all the files of that run. Every file goes through the one atomic writer; JSON through
``write_json`` and pictures through ``save_figure``, which sweeps and evals use too.
A folder belongs to one run: one that already holds files is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import secrets
import socket
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import __version__, run_plots
from .dataset.atomic import atomic_write, atomic_write_bytes
from .errors import RunFolderError, first_line
from .run_config import RunConfig, RunResult
from .trainer import History, iter_per_epoch
from .two_layer_net import PARAM_NAMES, TwoLayerNet, read_params, save_params

PARAMS = "params.npz"
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.json"
ACCURACY_PNG = "accuracy.png"
LOSS_PNG = "loss.png"
EVAL_JSON = "eval.json"
CONFUSION_PNG = "confusion.png"

SCHEMA_VERSION = 1
CHECKPOINT_FORMAT = "xpnet-checkpoint/1"
LOSS_NOTE = ("train_loss_list[k]: the cross-entropy of mini-batch k in the forward pass that "
             "gave its gradient (the book recomputes it after the update); with loss_stride "
             "> 1, the mean over loss_stride consecutive mini-batches")


# -- writers ------------------------------------------------------------------------------

def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    """``doc`` as indented JSON at ``path``, atomically."""
    atomic_write_bytes(path, (json.dumps(doc, indent=2) + "\n").encode())


def save_figure(fig: Figure, path: Path) -> None:
    """``fig`` as a PNG at ``path``, atomically."""
    FigureCanvasAgg(fig)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


# -- claiming a folder ----------------------------------------------------------------------

def new_run_dir(root: str | Path = "runs") -> Path:
    """A fresh folder ``root/<YYYYmmdd-HHMMSS>-<6 hex>``, created here and never shared."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for _ in range(100):  # 24 random bits: a clash is already a one-in-millions event
        path = root / f"{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunFolderError(f"could not create a new run folder in {root}")


def refuse_non_folder(path: Path) -> None:
    """Refuse a ``path`` that exists and is not a folder."""
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{path} exists and is not a folder; pass a new folder name")


def claim_dir(out: str | Path) -> Path:
    """``out`` as an empty folder of this run; refuses files, non-empty folders, ''."""
    text = str(out)
    if not text.strip():
        raise RunFolderError("the output folder is an empty name; pass a folder name")
    out = Path(text)
    if out.is_symlink() and not out.exists():
        raise RunFolderError(f"{out} is a dangling symbolic link; pass a folder name")
    refuse_non_folder(out)
    if out.exists() and any(out.iterdir()):
        raise RunFolderError(f"{out} already holds files (another run's?); pass a new "
                             "folder, or resume the run in it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".xpnet-write-test-{secrets.token_hex(4)}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise RunFolderError(f"cannot write in {out} ({err.strerror or err}); pass a folder "
                             "you can write") from None
    return out


@contextlib.contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Within the block, an error removes ``folder`` if it is still empty."""
    try:
        yield
    except BaseException:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


# -- metrics.json ---------------------------------------------------------------------------

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
        if result is not None:
            doc.update(_results(result))
        return doc


def _results(result: RunResult) -> dict[str, Any]:
    h = result.history
    return {
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
    }


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
    """``out/metrics.json``."""
    write_json(out / METRICS, doc)


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/metrics.json`` (schema version 1), checked for what its readers use.

    The one reader: raises RunFolderError for a missing, damaged or foreign file.
    """
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise RunFolderError(f"{run_dir} holds no {METRICS}; pass a run folder written by "
                             "xpnet train")
    try:
        metrics = json.loads(path.read_text())
        config = metrics["config"]
        ok = metrics["schema_version"] == SCHEMA_VERSION and isinstance(config["dataset"], str)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise RunFolderError(f"{path} is damaged ({first_line(err)})") from None
    if not ok:
        raise RunFolderError(f"{path} is not a {METRICS} of schema version {SCHEMA_VERSION} "
                             f"(schema_version {metrics['schema_version']!r})")
    return metrics


# -- the whole folder -----------------------------------------------------------------------

def write_run(out: str | Path, result: RunResult) -> dict[str, Any]:
    """Write a run's folder from its result: what ``run(out=...)`` leaves, in this order.

    checkpoint.npz, params.npz and the plots come first and metrics.json last, so a
    folder whose metrics.json says finished holds all the files of that run. A sweep's
    client writes each trial's folder with it from the result a worker sent back.
    Returns the metrics.json document written.
    """
    out = Path(out)
    result.out = out
    write_checkpoint(out, result.config, result.params, result.history,
                     result.record.started_at)
    save_params(out / PARAMS, result.params)
    doc = result.record.metrics(result=result)
    save_figure(run_plots.accuracy_figure(doc), out / ACCURACY_PNG)
    save_figure(run_plots.loss_figure(doc), out / LOSS_PNG)
    write_metrics(out, doc)
    return doc


def load_net(run_dir: Path, device: Any = None) -> tuple[TwoLayerNet, dict[str, Any]]:
    """(the net of ``run_dir/params.npz``, its metrics.json); one-line errors."""
    if not run_dir.is_dir():
        what = "is not a folder" if run_dir.exists() else "does not exist"
        raise RunFolderError(f"{run_dir} {what}; pass a run folder written by xpnet train")
    metrics = read_metrics(run_dir)
    params = run_dir / PARAMS
    if not params.is_file():
        raise RunFolderError(f"{run_dir} holds no {PARAMS} (its {METRICS} says the run is "
                             f"{metrics.get('status')}); finish the run first (xpnet train "
                             f"--resume {run_dir})")
    return TwoLayerNet.load(params, device=device), metrics


def write_eval(run_dir: Path, doc: Mapping[str, Any]) -> None:
    """``run_dir/eval.json``: what ``xpnet eval`` found."""
    write_json(run_dir / EVAL_JSON, doc)


# -- checkpoints --------------------------------------------------------------------------

def write_checkpoint(out: Path, config: RunConfig, params: Mapping[str, np.ndarray],
                     history: History, started: dt.datetime) -> None:
    """``out/checkpoint.npz``: what ``run(resume=True)`` needs to continue, bit for bit."""
    state = {
        "config": config.to_dict(),
        "started_at": started.isoformat(),
        "history": {k: v for k, v in dataclasses.asdict(history).items()
                    if k != "train_loss_list"},
    }
    arrays = {k: params[k] for k in PARAM_NAMES}
    atomic_write(out / CHECKPOINT, lambda f: np.savez(
        f, format=np.array(CHECKPOINT_FORMAT), state=np.array(json.dumps(state)),
        train_loss_list=np.asarray(history.train_loss_list, dtype=np.float64), **arrays))


def read_checkpoint(out: str | Path) -> dict[str, Any]:
    """The checkpoint in ``out``: ``config``, ``params``, ``history``, ``started_at``."""
    path = Path(out) / CHECKPOINT
    if not path.is_file():
        if Path(out).is_dir() and not any(Path(out).iterdir()):
            raise RunFolderError(f"{out} is empty: its run stopped before training began; "
                                 "start it again instead (its settings were never saved)")
        raise RunFolderError(f"{out} holds no {CHECKPOINT}: it is not a run folder that can "
                             "be resumed")
    try:
        params = read_params(path)
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["format"]) != CHECKPOINT_FORMAT:
                raise ValueError(f"format {npz['format']}")
            state = json.loads(str(npz["state"]))
            losses = npz["train_loss_list"]
        config = RunConfig.from_dict(state["config"])
        fields = state["history"]
        fields["loss_pending"] = tuple(fields["loss_pending"])
        history = History(train_loss_list=losses.tolist(), **fields)
    except (KeyError, ValueError, TypeError, OSError) as err:
        raise RunFolderError(f"{path} is damaged ({first_line(err)}); it cannot be "
                             "resumed") from None
    return {"config": config, "params": params, "history": history,
            "started_at": state["started_at"]}
