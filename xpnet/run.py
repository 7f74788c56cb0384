"""A training run: a config in, a result out, and a folder that says what happened.

``run(config)`` is what ``xpnet train`` does and what every ``xpnet sweep`` trial does;
a script can call it too. With ``out`` it keeps a folder: ``metrics.json`` (written first
with ``"status": "running"``, last with ``finished``, ``interrupted`` or ``failed``),
``checkpoint.npz`` (at each evaluation and every ``checkpoint_every`` iterations),
``params.npz``, ``accuracy.png`` and ``loss.png``, every file written atomically. A run
killed at any moment leaves its last checkpoint loadable and ``metrics.json`` saying
``running``: visibly incomplete, never mixed with another run, because a folder that
already holds files is refused unless it is the same run being resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import secrets
import signal
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import inputs, report, trainer
from .backend import asnumpy, parse_device, to_device
from .dataset import normalized
from .dataset.atomic import atomic_write
from .dataset.specs import SPECS
from .inputs import FLOAT_DTYPES, GRAD_METHODS, InputError
from .trainer import DivergenceError, History, train
from .two_layer_net import PARAM_NAMES, TwoLayerNet, save_params

DATASETS = tuple(SPECS)  # "mnist", "fashion-mnist"
CHECKPOINT = "checkpoint.npz"
CHECKPOINT_FORMAT = "xpnet-checkpoint/1"


class RunError(InputError):
    """A run cannot start or continue as asked (its folder, its checkpoint)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's numbers; the defaults are the book's."""

    dataset: str = "mnist"
    iters: int = 10000
    batch_size: int = 100
    lr: float = 0.1
    hidden: int = 50
    weight_init_std: float = 0.01
    grad: str = "backprop"
    dtype: str = "float64"
    seed: int | None = None  # None: drawn at the start of the run, and recorded
    device: str = "cpu"
    data_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("iters", "batch_size", "hidden"):
            object.__setattr__(self, name, inputs.positive_int(name, getattr(self, name)))
        for name in ("lr", "weight_init_std"):
            object.__setattr__(self, name, inputs.positive_float(name, getattr(self, name)))
        for name, allowed in (("dataset", DATASETS), ("grad", GRAD_METHODS),
                              ("dtype", FLOAT_DTYPES)):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(
                self.seed, (int, np.integer)) or not 0 <= self.seed < 2**63):
            raise InputError(f"seed must be an integer in 0..2**63-1, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """A config from ``to_dict``'s output; unknown keys are an InputError."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"unknown run settings: {', '.join(sorted(unknown))}")
        return cls(**values)


@dataclass
class RunResult:
    """What a run produced. ``status``: finished, interrupted or failed."""

    config: RunConfig  # with the seed actually used
    history: History
    status: str
    final_train_acc: float | None
    final_test_acc: float | None
    params: dict[str, np.ndarray]
    wall_time_s: float
    record: report.RunRecord | None = None  # when, where and on what it ran
    out: Path | None = None

    @property
    def best_test_acc(self) -> float | None:
        """The best test accuracy of any evaluation, the final one included."""
        accs = [*self.history.test_acc_list, *([self.final_test_acc] * (
            self.final_test_acc is not None))]
        return max(accs) if accs else None


def load_data(config: RunConfig) -> Any:
    """The config's dataset as ``xpnet.dataset.Dataset`` (raw uint8 arrays and provenance)."""
    from .dataset import load_dataset

    return load_dataset(config.dataset, data_dir=config.data_dir)


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
    raise RunError(f"could not create a new run folder in {root}")


def claim_dir(out: str | Path) -> Path:
    """``out`` as an empty folder of this run; refuses files, non-empty folders, ''."""
    text = str(out)
    if not text.strip():
        raise RunError("the output folder is an empty name; pass a folder name")
    out = Path(text)
    if out.is_symlink() and not out.exists():
        raise RunError(f"{out} is a dangling symbolic link; pass a folder name")
    if out.exists():
        if not out.is_dir():
            raise RunError(f"{out} exists and is not a folder; pass a new folder name")
        if any(out.iterdir()):
            raise RunError(f"{out} already holds files (another run's?); pass a new folder, "
                           "or resume the run in it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".xpnet-write-test-{secrets.token_hex(4)}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise RunError(f"cannot write in {out} ({err.strerror or err}); pass a folder you "
                       "can write") from None
    return out


def run(
    config: RunConfig,
    *,
    data: Any = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = False,
    on_epoch: Callable[[int, float, float], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint_every: int | None = None,
    command: list[str] | None = None,
) -> RunResult:
    """Train the book's TwoLayerNet as ``config`` says; write ``out`` if given.

    ``data``: an ``xpnet.dataset.Dataset`` already loaded (a sweep loads it once), else
    it is loaded here. ``out``: the run's folder (claimed with ``claim_dir`` unless
    ``resume``, which continues the checkpoint in it; then ``config`` must be the one
    the checkpoint was made with, which ``read_checkpoint_config`` gives). ``stop``: asked
    after each step; when True the run ends early with status ``interrupted``, its
    checkpoint written. Raises DivergenceError (after recording ``failed``), InputError.
    """
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    checkpoint = None
    if resume:
        if out is None:
            raise RunError("resume needs the run's folder")
        checkpoint = read_checkpoint(out)
        config = checkpoint["config"]
        started = dt.datetime.fromisoformat(checkpoint["started_at"])
    elif config.seed is None:
        config = dataclasses.replace(config, seed=secrets.randbelow(2**31))
    device = parse_device(config.device)
    if data is None:
        data = load_data(config)
    x_train, t_train, x_test, t_test = _as_float(data, config.dtype)

    network = TwoLayerNet(x_train.shape[1], config.hidden, 10, config.weight_init_std,
                          seed=config.seed, dtype=config.dtype, device=device)
    trainer.check_step_fits(network, config.batch_size)  # before anything is written
    history = None
    if checkpoint is not None:
        saved = checkpoint["params"]
        if saved["W1"].shape != network.params["W1"].shape:
            raise RunError(f"{out}/{CHECKPOINT} holds W1 of shape {saved['W1'].shape}, not "
                           f"{network.params['W1'].shape}; it is damaged")
        network.params = {k: to_device(saved[k].astype(network.dtype), device)
                          for k in PARAM_NAMES}
        history = checkpoint["history"]
    record = report.RunRecord(config=config, started_at=started, command=command,
                              data=provenance(data))

    def save_checkpoint(h: History) -> None:
        write_checkpoint(out, config, {k: asnumpy(network.params[k]) for k in PARAM_NAMES},
                         h, started)

    if out is not None and checkpoint is None:
        # A checkpoint at iteration 0 first: a run killed at any moment can be resumed.
        history = History(iter_per_epoch=trainer.iter_per_epoch(x_train.shape[0],
                                                                config.batch_size),
                          seed=config.seed)
        save_checkpoint(history)
        report.write_metrics(out, record.metrics(status="running"))

    try:
        history = train(network, x_train, t_train, x_test, t_test, iters_num=config.iters,
                        batch_size=config.batch_size, learning_rate=config.lr,
                        grad=config.grad, seed=config.seed, progress=progress,
                        on_epoch=on_epoch, history=history, stop=stop,
                        on_checkpoint=save_checkpoint if out is not None else None,
                        checkpoint_every=checkpoint_every)
    except DivergenceError as err:
        if out is not None:
            report.write_metrics(out, record.metrics(status="failed", error=str(err),
                                                     wall_time_s=time.perf_counter() - t0))
        raise
    status = "finished" if history.iterations == config.iters else "interrupted"
    # The book only evaluates at epoch starts; say where the run actually ended too.
    final_train = network.accuracy(x_train, t_train)
    final_test = network.accuracy(x_test, t_test)
    params = {k: asnumpy(network.params[k]) for k in PARAM_NAMES}
    result = RunResult(config=config, history=history, status=status,
                       final_train_acc=final_train, final_test_acc=final_test, params=params,
                       wall_time_s=time.perf_counter() - t0, record=record)
    if out is not None:
        write_run(out, result)
    return result


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
    save_params(out / "params.npz", result.params)
    report.plot_accuracy(result, out / "accuracy.png")
    report.plot_loss(result, out / "loss.png")
    doc = result.record.metrics(result=result)
    report.write_metrics(out, doc)
    return doc


# data set -> dtype -> its float arrays. A sweep worker runs many trials on one data set:
# converting 60000 images again for each trial cost it ~0.3 s and 376 MB (float64) a trial.
_FLOAT_ARRAYS: weakref.WeakKeyDictionary[Any, dict[str, tuple]] = weakref.WeakKeyDictionary()


def _as_float(data: Any, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The book's ``load_mnist(normalize=True)`` arrays: images float / 255, labels.

    Made once per data set and dtype, read-only, and shared by the runs that use them.
    """
    def scale(x: np.ndarray) -> np.ndarray:
        # float32 division first, as load_mnist(normalize=True), then the run's dtype
        x = normalized(x).astype(dtype, copy=False)
        x.flags.writeable = False
        return x

    try:
        by_dtype = _FLOAT_ARRAYS.setdefault(data, {})
    except TypeError:  # a data object that cannot be weakly referenced: no sharing
        by_dtype = {}
    if dtype not in by_dtype:
        by_dtype[dtype] = (scale(data.x_train), data.t_train, scale(data.x_test), data.t_test)
    return by_dtype[dtype]


def provenance(data: Any) -> dict[str, Any]:
    """Where a dataset came from, for metrics.json: name, folder, files, verification, sizes."""
    return {
        "name": getattr(data, "name", None),
        "directory": str(getattr(data, "directory", "")) or None,
        "files": [str(p) for p in getattr(data, "files", ())],
        "verified": getattr(data, "verified", None),
        "train_size": int(data.x_train.shape[0]),
        "test_size": int(data.x_test.shape[0]),
    }


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
            raise RunError(f"{out} is empty: its run stopped before training began; start "
                           "it again instead (its settings were never saved)")
        raise RunError(f"{out} holds no {CHECKPOINT}: it is not a run folder that can be "
                       "resumed")
    from .two_layer_net import read_params

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
        raise RunError(f"{path} is damaged ({str(err).splitlines()[0] if str(err) else err!r})"
                       "; it cannot be resumed") from None
    return {"config": config, "params": params, "history": history,
            "started_at": state["started_at"]}


# -- stopping on a signal -------------------------------------------------------------------

@contextlib.contextmanager
def stop_on_signals(*, at_once: bool = False) -> Iterator[Callable[[], int | None]]:
    """Within the block, SIGINT and SIGTERM ask the work to stop.

    Yields a callable: the number of the signal received so far, or None. A run asks it
    after each step (and stops cleanly); with ``at_once`` the signal raises
    KeyboardInterrupt where the program is, for work that waits on others (a sweep). A
    second signal always raises KeyboardInterrupt, so a stuck run can still be stopped.
    The handlers are installed even where SIGINT was ignored (a job started with ``&``
    from a script): a run that can stop cleanly should, whatever the shell did.
    """
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        first = not received
        received.append(signum)
        if at_once or not first:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
