"""A run's folder, owned here: its layout, claiming it, and every file in it.

::

    params.npz       the trained parameters by the net's param_names (TwoLayerNet.load
                     reads a two-layer run's; the book's load_params the other nets')
    checkpoint.npz   parameters, optimizer state and history to resume from, bit for bit
    metrics.json     settings, provenance, accuracies, losses: schema version 1
    accuracy.png     the book's accuracy figure; loss.png, the mini-batch loss
    eval.json        written by xpnet eval, with confusion.png
    .xpnet.lock      while a command holds the folder (xpnet.folder_lock): its PID

``metrics.json`` is written first with ``"status": "running"`` and last with
``finished``, ``interrupted`` or ``failed``, so a folder whose metrics say finished holds
all the files of that run. Every file goes through the one atomic writer; JSON through
``write_json`` and pictures through ``save_figure``, which sweeps and evals use too.
A folder belongs to one run: one that already holds files is refused. A folder belongs
to one process at a time: ``claimed`` and ``held`` hold its ``xpnet.folder_lock``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import secrets
import socket
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import __version__, folder_lock, nets, run_plots
from .common import params_file
from .dataset import npy
from .dataset.atomic import atomic_write, atomic_write_bytes
from .errors import InputError, RunFolderError, first_line
from .run_config import RunConfig, RunResult
from .trainer import History, iter_per_epoch
from .two_layer_net import PARAM_NAMES, TwoLayerNet, save_params

PARAMS = "params.npz"
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.json"
ACCURACY_PNG = "accuracy.png"
LOSS_PNG = "loss.png"
EVAL_JSON = "eval.json"
CONFUSION_PNG = "confusion.png"
LOCK_FILE = folder_lock.LOCK_FILE
# The files only the run itself writes: no other command's output may replace them.
RUN_FILES = (PARAMS, CHECKPOINT, METRICS, ACCURACY_PNG, LOSS_PNG, LOCK_FILE)

SCHEMA_VERSION = 1
# Every data set a run trains on: 28x28 images of 10 classes.
FEATURES, CLASSES = 784, 10
CHECKPOINT_FORMAT = "xpnet-checkpoint/1"
LOSS_NOTE = ("train_loss_list[k]: the cross-entropy of mini-batch k in the forward pass that "
             "gave its gradient (the book recomputes it after the update); with loss_stride "
             "> 1, the mean over loss_stride consecutive mini-batches")


# -- writers ------------------------------------------------------------------------------

NON_FINITE_NOTE = "numbers that are not finite are written as null (JSON has no such numbers)"


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    """``doc`` as indented JSON at ``path``, atomically.

    JSON has no NaN or Infinity: such numbers become null, and a top-level
    ``non_finite_note`` says so; no literal another reader would reject is ever written.
    """
    replaced: list[bool] = []
    clean = _finite(doc, replaced)
    if replaced and isinstance(clean, dict):
        clean["non_finite_note"] = NON_FINITE_NOTE
    atomic_write_bytes(path, (json.dumps(clean, indent=2, allow_nan=False) + "\n").encode())


def _finite(value: Any, replaced: list[bool]) -> Any:
    if isinstance(value, float | np.floating):
        if math.isfinite(value):
            return float(value)
        replaced.append(True)
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v, replaced) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, replaced) for v in value]
    return value


def save_figure(fig: Figure, path: Path) -> None:
    """``fig`` as a PNG at ``path``, atomically."""
    FigureCanvasAgg(fig)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


# -- claiming a folder ----------------------------------------------------------------------

def _run_name() -> str:
    """A new run's folder name: ``<YYYYmmdd-HHMMSS>-<6 hex>``."""
    return f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def new_run_dir(root: str | Path = "runs") -> Path:
    """A fresh folder ``root/<YYYYmmdd-HHMMSS>-<6 hex>``, created here and never shared."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # 24 random bits: a clash is already a one-in-millions event
        path = root / _run_name()
        try:
            path.mkdir()  # never exist_ok: a folder that exists is someone else's
        except FileExistsError:
            continue
        return path
    raise RunFolderError(f"could not create a new run folder in {root}")


def refuse_non_folder(path: Path) -> None:
    """Refuse a ``path`` that exists and is not a folder."""
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{path} exists and is not a folder; pass a new folder name")


def _entries(folder: Path) -> list[Path]:
    """What ``folder`` holds, its lock file aside."""
    return [p for p in folder.iterdir() if p.name != LOCK_FILE]


def claim_dir(out: str | Path) -> Path:
    """``out`` as an empty folder of this run; refuses files, non-empty folders, ''.

    The emptiness is judged while holding the folder's lock, so of two processes
    claiming one folder together one gets it and the other a FolderBusyError. The lock
    is let go on return; ``claimed`` keeps it for the life of a block.
    """
    with claimed(out):
        pass
    return Path(str(out))


def _check_new(out: str | Path) -> Path:
    text = str(out)
    if not text.strip():
        raise RunFolderError("the output folder is an empty name; pass a folder name")
    out = Path(text)
    if out.is_symlink() and not out.exists():
        raise RunFolderError(f"{out} is a dangling symbolic link; pass a folder name")
    refuse_non_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"cannot write in {out} ({err.strerror or err}); pass a folder "
                             "you can write") from None
    return out


@contextlib.contextmanager
def claimed(out: str | Path | None, root: str | Path = "runs") -> Iterator[Path]:
    """A new run's folder, this process's alone within the block.

    ``out``: a folder that is new or empty (else RunFolderError); None: a fresh one under
    ``root``. An error in the block removes the folder if it is left without files.
    """
    folder = _check_new(out) if out is not None else new_run_dir(root)
    with held(folder), removed_if_left_empty(folder):
        if out is not None and _entries(folder):
            raise RunFolderError(f"{folder} already holds files (another run's?); pass a "
                                 "new folder, or resume the run in it")
        try:
            probe = folder / f".xpnet-write-test-{secrets.token_hex(4)}"
            probe.touch()
            probe.unlink()
        except OSError as err:
            raise RunFolderError(f"cannot write in {folder} ({err.strerror or err}); pass a "
                                 "folder you can write") from None
        yield folder


@contextlib.contextmanager
def held(folder: str | Path, what: str = "run") -> Iterator[Path]:
    """Within the block ``folder`` is this process's alone (FolderBusyError if not)."""
    with folder_lock.hold(folder, what=what):
        yield Path(folder)


@contextlib.contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Within the block, an error removes ``folder`` if it holds nothing but its lock."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            if folder.is_dir() and not _entries(folder):
                (folder / LOCK_FILE).unlink(missing_ok=True)
                folder.rmdir()
        raise


# -- metrics.json ---------------------------------------------------------------------------

@dataclass
class RunRecord:
    """The parts of metrics.json known before training starts."""

    config: RunConfig
    started_at: dt.datetime
    command: list[str] | None  # the command that started the run
    data: dict[str, Any]
    environment: dict[str, Any] = field(default_factory=lambda: environment())
    # each --resume: command, started_at, from_iteration, device; finished_at and
    # to_iteration once it ended
    resumes: list[dict[str, Any]] = field(default_factory=list)
    # the optimizer's state where the run ended, (arrays, scalars) of
    # xpnet.common.optimizer.state, for the checkpoint write_run writes (None: fresh)
    optimizer_state: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None
    net: str | None = None  # the net in words (its describe())

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
            **({"net": self.net} if self.net is not None else {}),
            "data": self.data,
            "environment": self.environment,
            "iter_per_epoch": int(per_epoch) if per_epoch == int(per_epoch) else per_epoch,
        }
        if self.resumes:
            doc["resumes"] = [dict(r) for r in self.resumes]
        verdict = result.verdict if result is not None else None
        if verdict:
            doc["verdict"] = verdict
        if error is not None:
            doc["error"] = error
        if wall_time_s is not None:
            doc["wall_time_s"] = wall_time_s
        if result is not None:
            doc.update(_results(result))
            # what the final accuracies were measured on (the first N of each set)
            n = self.config.eval_samples
            train_size = self.data["train_size"]
            doc.update(eval_samples=n,
                       final_train_acc_samples=min(n, train_size) if n else train_size,
                       final_test_acc_samples=self.data["test_size"])
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
                     result.record.started_at, result.record,
                     optimizer=result.record.optimizer_state)
    write_params(out / PARAMS, result.config, result.params)
    doc = result.record.metrics(result=result)
    save_figure(run_plots.accuracy_figure(doc), out / ACCURACY_PNG)
    save_figure(run_plots.loss_figure(doc), out / LOSS_PNG)
    write_metrics(out, doc)
    return doc


def refuse_run_folder(folder: Path) -> None:
    """Refuse, in one line, a ``folder`` that is not a run's: one naming the run to use.

    A sweep's folder offers its best finished trial; a folder of runs, its latest run.
    """
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise RunFolderError(f"{folder} {what}; pass a run folder written by xpnet train")
    if (folder / METRICS).is_file():
        return
    runs = []
    # A folder of runs holds them; a sweep's holds its trials in trials/.
    for parent in (folder, folder / "trials"):
        with contextlib.suppress(OSError):
            for sub in sorted(parent.iterdir()):
                if (sub / METRICS).is_file():
                    with contextlib.suppress(RunFolderError):
                        runs.append((sub, read_metrics(sub)))
    finished = [(p, m) for p, m in runs if m.get("status") == "finished"
                and isinstance(m.get("final_test_acc"), float | int)]
    if finished and ((folder / "sweep.json").is_file() or (folder / "results.csv").is_file()):
        best, m = max(finished, key=lambda pm: pm[1]["final_test_acc"])
        raise RunFolderError(f"{folder} is a sweep's folder, not a run's; its best trial is "
                             f"{best} (test accuracy {m['final_test_acc']:.4f}): pass that")
    if runs:
        latest, m = max(runs, key=lambda pm: str(pm[1].get("started_at")))
        raise RunFolderError(f"{folder} holds runs, not a run's files; the latest is {latest} "
                             f"(started {m.get('started_at')}, {m.get('status')}): pass that")
    raise RunFolderError(f"{folder} holds no {METRICS}; pass a run folder written by "
                         "xpnet train")


def refuse_run_file(path: Path, run_dir: Path, flag: str) -> None:
    """Refuse an output ``path`` that would replace a run's own file (``RUN_FILES``)."""
    folder = path.parent
    same = False
    with contextlib.suppress(OSError):
        same = folder.resolve() == run_dir.resolve()
    ours = same or (folder / METRICS).is_file() or (folder / CHECKPOINT).is_file()
    if ours and (path.name in RUN_FILES or same and path.name == EVAL_JSON):
        raise RunFolderError(f"{flag} {path} would replace a run's own {path.name}; only the "
                             "run writes its files: pass another file name")


def load_net(run_dir: Path, device: Any = None) -> tuple[Any, dict[str, Any]]:
    """(the net of ``run_dir/params.npz``, its metrics.json); one-line errors.

    A two-layer run's is ``TwoLayerNet.load``; another net is built from the run's
    recorded config (``xpnet.nets.build``) and given the file's parameters.
    """
    refuse_run_folder(run_dir)
    metrics = read_metrics(run_dir)
    params = run_dir / PARAMS
    if not params.is_file():
        raise RunFolderError(f"{run_dir} holds no {PARAMS} (its {METRICS} says the run is "
                             f"{metrics.get('status')}); finish the run first (xpnet train "
                             f"--resume {run_dir})")
    try:
        config = RunConfig.from_dict(metrics["config"])
    except (InputError, TypeError) as err:
        raise RunFolderError(f"{run_dir}/{METRICS} is damaged ({first_line(err)})") from None
    if config.net == "two-layer":
        check_npz(params)
        return TwoLayerNet.load(params, device=device), metrics
    net = build_net(config, device)
    check_npz(params, net.param_names)
    net.set_params(_read_arrays(params, net.param_names))
    return net, metrics


def build_net(config: RunConfig, device: Any, features: int = FEATURES) -> Any:
    """The net ``config`` trains, on ``device``, with its initial weights."""
    return nets.build(config.net, features=features, classes=CLASSES, hidden=config.hidden,
                      activation=config.activation, weight_init_std=config.weight_init_std,
                      weight_decay=config.weight_decay, dtype=config.dtype, device=device,
                      seed=config.seed)


def write_params(path: Path, config: RunConfig, params: Mapping[str, np.ndarray]) -> None:
    """``params.npz``: TwoLayerNet.save's file for a two-layer run; for another net its
    arrays alone, by name, as the book's ``save_params`` writes them."""
    if config.net == "two-layer":
        save_params(path, params)
    else:
        params_file.save(path, params)


def _read_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The members ``names`` of an ``.npz`` already checked by ``check_npz``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise RunFolderError(f"{path} is damaged ({first_line(err)}); it cannot be used: "
                             "restore it from a copy, or train the run again") from None


def write_eval(run_dir: Path, doc: Mapping[str, Any]) -> None:
    """``run_dir/eval.json``: what ``xpnet eval`` found."""
    write_json(run_dir / EVAL_JSON, doc)


# -- checkpoints --------------------------------------------------------------------------

def write_checkpoint(out: Path, config: RunConfig, params: Mapping[str, np.ndarray],
                     history: History, started: dt.datetime,
                     record: RunRecord | None = None, *,
                     optimizer: tuple[Mapping[str, np.ndarray], Mapping[str, Any]] | None = None,
                     ) -> None:
    """``out/checkpoint.npz``: what ``run(resume=True)`` needs to continue, bit for bit.

    ``params``: the net's parameters by name, in its ``param_names`` order. ``optimizer``:
    its state as ``xpnet.common.optimizer.state`` gives it (None: a fresh one). The
    state's JSON names the members (``param_names``, the optimizer's ``arrays``), so the
    members depend on the net and optimizer. With ``record``, also the run's command,
    resumes and data identity, so a resume can keep the first and check the last.
    """
    opt_arrays, opt_scalars = optimizer if optimizer is not None else ({}, {})
    state: dict[str, Any] = {
        "config": config.to_dict(),
        "started_at": started.isoformat(),
        "history": {k: v for k, v in dataclasses.asdict(history).items()
                    if k != "train_loss_list"},
        "param_names": list(params),
        "optimizer": {"name": config.optimizer, "arrays": list(opt_arrays),
                      "scalars": dict(opt_scalars)},
    }
    if record is not None:
        state.update(command=record.command, resumes=record.resumes, data=record.data)
    arrays = {**params, **opt_arrays}
    text = json.dumps(_finite(state, []), allow_nan=False)
    atomic_write(out / CHECKPOINT, lambda f: np.savez(
        f, format=np.array(CHECKPOINT_FORMAT), state=np.array(text),
        train_loss_list=np.asarray(history.train_loss_list, dtype=np.float64), **arrays))


# Every checkpoint's; the rest its state names (a two-layer run of an older xpnet's:
# PARAM_NAMES and no optimizer state).
CHECKPOINT_MEMBERS = ("format", "state", "train_loss_list")


def check_npz(path: Path, names: tuple[str, ...] = PARAM_NAMES) -> None:
    """Refuse, in one line, an ``.npz`` that is damaged, before anything is allocated.

    Every member's CRC is checked, and every ``.npy`` header's claimed size against
    what its member holds, so a byte-flipped or cut file, or one whose header claims
    gigabytes, is a RunFolderError, never an allocation or a traceback.
    """
    def damaged(why: str) -> RunFolderError:
        return RunFolderError(f"{path} is damaged ({why}); it cannot be used: restore it "
                              "from a copy, or train the run again")

    try:
        with zipfile.ZipFile(path) as zf:
            missing = [n for n in names if f"{n}.npy" not in zf.namelist()]
            if missing:
                raise damaged(f"no {', '.join(missing)}")
            npy.whole_headers(zf, names)
    except RunFolderError:
        raise
    except FileNotFoundError:
        raise RunFolderError(f"{path} does not exist") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            zipfile.LargeZipFile) as err:
        raise damaged(first_line(err)) from None


def read_checkpoint(out: str | Path) -> dict[str, Any]:
    """The checkpoint in ``out``: ``config``, ``params``, ``history``, ``started_at``,
    and what later checkpoints add: ``command``, ``resumes``, ``data`` (None if absent).

    Every field of its state is checked against its config; a damaged or edited one is
    a RunFolderError in one line.
    """
    path = Path(out) / CHECKPOINT
    if not path.is_file():
        if Path(out).is_dir() and not _entries(Path(out)):
            raise RunFolderError(f"{out} is empty: its run stopped before training began; "
                                 "start it again instead (its settings were never saved)")
        raise RunFolderError(f"{out} holds no {CHECKPOINT}: it is not a run folder that can "
                             "be resumed")
    check_npz(path, CHECKPOINT_MEMBERS)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["format"]) != CHECKPOINT_FORMAT:
                raise ValueError(f"format {npz['format']}")
            state = json.loads(str(npz["state"]))
            losses = npz["train_loss_list"]
        # a checkpoint of an older xpnet evaluated every image
        config = RunConfig.from_dict({"eval_samples": 0, **state["config"]})
        names = _names(state.get("param_names", PARAM_NAMES), "param_names")
        opt = state.get("optimizer", {"name": config.optimizer, "arrays": [], "scalars": {}})
        if not isinstance(opt, dict) or opt.get("name") != config.optimizer:
            raise ValueError(f"its optimizer state is not its config's {config.optimizer}'s")
        opt_names = _names(opt.get("arrays"), "optimizer arrays")
        scalars = opt.get("scalars")
        if not isinstance(scalars, dict):
            raise ValueError(f"optimizer scalars {scalars!r}")
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise RunFolderError(f"{path} is damaged ({first_line(err)}); it cannot be "
                             "resumed") from None
    check_npz(path, (*names, *opt_names))  # a missing member: one line
    params = _read_arrays(path, names)
    opt_arrays = _read_arrays(path, opt_names)
    try:
        history = _history(state["history"], losses, config)
        started = dt.datetime.fromisoformat(state["started_at"])
        extra = {k: state.get(k) for k in ("command", "resumes", "data")}
        if not isinstance(extra["resumes"] or [], list):
            raise ValueError("resumes is not a list")
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise RunFolderError(f"{path} is damaged ({first_line(err)}); it cannot be "
                             "resumed") from None
    return {"config": config, "params": params, "history": history,
            "optimizer": (opt_arrays, scalars),
            "started_at": started.isoformat(), **extra,
            "resumes": list(extra["resumes"] or [])}


def _names(value: Any, what: str) -> tuple[str, ...]:
    """A checkpoint's list of member names, checked; ValueError if it is not one."""
    if not isinstance(value, list | tuple) or not all(
            isinstance(v, str) and v and v not in CHECKPOINT_MEMBERS for v in value) \
            or len(set(value)) != len(value):
        raise ValueError(f"{what} {value!r} is not a list of member names")
    return tuple(value)


def _history(fields: dict[str, Any], losses: np.ndarray, config: RunConfig) -> History:
    """A checkpoint's History, each field checked; ValueError says which is wrong."""
    def number(name: str, value: Any, *, integer: bool = False) -> Any:
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            raise ValueError(f"{name} is {value!r}, not {'an integer' if integer else 'a number'}")
        return value

    expected = {f.name for f in dataclasses.fields(History)} - {"train_loss_list"}
    if not isinstance(fields, dict) or set(fields) != expected:
        raise ValueError("its history does not have the fields of a run's")
    iterations = number("iterations", fields["iterations"], integer=True)
    if not 0 <= iterations <= config.iters:
        raise ValueError(f"iterations {iterations} is not within 0..{config.iters} of its run")
    per_epoch = number("iter_per_epoch", fields["iter_per_epoch"])
    if per_epoch < 1:
        raise ValueError(f"iter_per_epoch {per_epoch} is below 1")
    stride = number("loss_stride", fields["loss_stride"], integer=True)
    if stride < 1:
        raise ValueError(f"loss_stride {stride} is below 1")
    if fields["seed"] != config.seed:
        raise ValueError(f"its seed {fields['seed']!r} is not its config's {config.seed}")
    number("wall_time_s", fields["wall_time_s"])
    pending = fields["loss_pending"]
    if not (isinstance(pending, list) and len(pending) == 2):
        raise ValueError(f"loss_pending is {pending!r}")
    number("loss_pending", pending[0])
    count = number("loss_pending", pending[1], integer=True)
    if losses.ndim != 1 or losses.dtype != np.float64:
        raise ValueError(f"train_loss_list is {losses.dtype} {losses.shape}")
    if not 0 <= count < stride or losses.size * stride + count != iterations:
        raise ValueError(f"{losses.size} losses of stride {stride} (+{count}) do not make "
                         f"its {iterations} iterations")
    evals = [fields[k] for k in ("train_acc_list", "test_acc_list", "eval_iterations")]
    if not all(isinstance(v, list) for v in evals) or len({len(v) for v in evals}) != 1:
        raise ValueError("its accuracy lists differ in length")
    for name in ("train_acc_list", "test_acc_list"):
        for v in fields[name]:
            if not 0 <= number(name, v) <= 1:
                raise ValueError(f"{name} holds {v!r}, not an accuracy")
    for v in fields["eval_iterations"]:
        if not 0 <= number("eval_iterations", v, integer=True) < max(iterations, 1):
            raise ValueError(f"eval_iterations holds {v!r}, past its {iterations} iterations")
    return History(train_loss_list=losses.tolist(), **{**fields,
                                                       "loss_pending": (pending[0], count)})
