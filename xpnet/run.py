"""A training run: a config in, a result out, and a folder that says what happened.

``run(config)`` is what ``xpnet train`` does and what every ``xpnet sweep`` trial does;
a script can call it too. With ``out`` it keeps a run folder (``xpnet.run_folder`` owns
its layout): ``metrics.json`` first with ``"status": "running"``, a checkpoint at each
evaluation and every ``checkpoint_every`` iterations, and at the end the parameters, the
plots and ``metrics.json`` saying ``finished``, ``interrupted`` or ``failed``. A run
killed at any moment leaves its last checkpoint loadable and ``metrics.json`` saying
``running``: visibly incomplete, never mixed with another run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import signal
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import inputs, trainer
from .backend import parse_device, to_device, use_device
from .common import optimizer as optimizers
from .dataset import normalized
from .dataset.atomic import WriteFaultError
from .errors import DivergenceError, InputError, RunFolderError, first_line
from .run_config import RunConfig, RunResult
from .run_folder import (
    CHECKPOINT,
    RunRecord,
    build_net,
    held,
    read_checkpoint,
    read_metrics,
    write_checkpoint,
    write_metrics,
    write_run,
)
from .trainer import History, train


def load_data(config: RunConfig) -> Any:
    """The config's dataset as ``xpnet.dataset.Dataset`` (raw uint8 arrays and provenance)."""
    from .dataset import load_dataset

    return load_dataset(config.dataset, data_dir=config.data_dir)


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
    on_start: Callable[[str], None] | None = None,
) -> RunResult:
    """Train the net ``config.net`` with ``config.optimizer`` as ``config`` says; write
    ``out`` if given.

    ``data``: an ``xpnet.dataset.Dataset`` already loaded (a sweep loads it once), else
    it is loaded here. ``out``: the run's folder (claimed with ``run_folder.claim_dir``
    unless ``resume``, which continues the checkpoint in it with the checkpoint's
    settings; only ``config.device`` and ``config.cuda_graph`` are taken from ``config``
    then). The folder is held (``xpnet.folder_lock``) for the whole run. ``stop``: asked
    after each step; when True the run ends early with status ``interrupted``, its
    checkpoint written. ``on_start(net)``: called once the net is built and checked, before
    training, with the net in words (its ``describe()``). A resume refuses other data than
    the run trained on. Raises
    DivergenceError or a WriteFaultError (after recording ``failed`` where it can),
    RunFolderError, InputError.
    """
    out = Path(out) if out is not None else None
    with held(out) if out is not None else contextlib.nullcontext():
        return _run(config, data, out, resume, progress, on_epoch, stop, checkpoint_every,
                    command, on_start)


def _run(config: RunConfig, data: Any, out: Path | None, resume: bool,
         progress: bool | None, on_epoch: Callable[[int, float, float], None] | None,
         stop: Callable[[], bool] | None, checkpoint_every: int | None,
         command: list[str] | None, on_start: Callable[[str], None] | None) -> RunResult:
    t0 = time.perf_counter()
    config, checkpoint, started = _start(config, out, resume)
    if data is None:
        data = load_data(config)
    info = provenance(data)
    if checkpoint is not None:
        check_same_data(out, checkpoint.get("data"), info)
    x_train, t_train, x_test, t_test = float_arrays(data, config.dtype)
    network = build_net(config, parse_device(config.device), features=x_train.shape[1])
    optimizer = optimizers.make(config.optimizer, config.lr)
    # before anything is written
    trainer.check_step_fits(network, config.batch_size, optimizer)
    # Once, for the training and the final accuracies alike: on a GPU each upload of the
    # training set is 188 MB (float32) and a wait.
    x_train, t_train, x_test, t_test = (to_device(a, network.device)
                                        for a in (x_train, t_train, x_test, t_test))
    per_epoch = trainer.iter_per_epoch(x_train.shape[0], config.batch_size)
    record = RunRecord(config=config, started_at=started, command=command, data=info,
                       net=network.describe())
    if checkpoint is not None:
        history = _restore(network, optimizer, checkpoint, out)
        if history.iter_per_epoch != per_epoch:
            raise RunFolderError(f"{out}/{CHECKPOINT} says an epoch is "
                                 f"{history.iter_per_epoch:g} iterations, not the {per_epoch:g} "
                                 "of this data and batch size; it is damaged")
        record.command = checkpoint["command"]
        record.resumes = [*checkpoint["resumes"], {
            "command": command, "started_at": _now(), "from_iteration": history.iterations,
            "device": config.device}]
    else:
        history = History(iter_per_epoch=per_epoch, seed=config.seed)
    if on_start is not None:
        on_start(record.net)

    def save_checkpoint(h: History) -> None:
        write_checkpoint(out, config, network.host_params(), h, started, record,
                         optimizer=optimizers.state(optimizer))

    def failed(error: str) -> None:
        # Only a run with a checkpoint has anything to mark: one that could not write its
        # first leaves nothing (its folder, if claimed for it, goes), so it can be rerun.
        if out is not None and (out / CHECKPOINT).is_file():
            with contextlib.suppress(OSError):
                write_metrics(out, record.metrics(status="failed", error=error,
                                                  wall_time_s=time.perf_counter() - t0))

    try:
        if out is not None:
            # Written before training (a checkpoint at iteration 0 first, for a new run:
            # a run killed at any moment can be resumed): a folder that cannot be
            # written fails now, not after the training.
            if checkpoint is None:
                save_checkpoint(history)
            write_metrics(out, record.metrics(status="running"))
        history = train(network, x_train, t_train, x_test, t_test, iters_num=config.iters,
                        batch_size=config.batch_size, learning_rate=config.lr,
                        grad=config.grad, seed=config.seed, progress=progress,
                        on_epoch=on_epoch, history=history, stop=stop,
                        on_checkpoint=save_checkpoint if out is not None else None,
                        checkpoint_every=checkpoint_every, cuda_graph=config.cuda_graph,
                        optimizer=optimizer, eval_samples=config.eval_samples)
        # The book only evaluates at epoch starts; say where the run actually ended too:
        # on the whole test set, and on the training images the evaluations scored (all
        # 60000 through a conv net would take minutes on a CPU).
        finished = history.iterations == config.iters
        with use_device(network.device):  # a view of another GPU's array is made there
            scored = x_train[:config.eval_samples or None], t_train[:config.eval_samples or None]
        result = RunResult(config=config, history=history,
                           status="finished" if finished else "interrupted",
                           final_train_acc=network.accuracy(*scored),
                           final_test_acc=network.accuracy(x_test, t_test),
                           params=network.host_params(),
                           wall_time_s=time.perf_counter() - t0, record=record)
        record.optimizer_state = optimizers.state(optimizer)
        if finished:
            result.verdict = verdict(result, classes=network.classes)
        if record.resumes:
            record.resumes[-1].update(finished_at=_now(), to_iteration=history.iterations)
        if out is not None:
            write_run(out, result)
    except (DivergenceError, WriteFaultError) as err:
        failed(str(err))
        raise
    return result


# A final test accuracy this close to 1/classes is chance level: the net learned nothing.
CHANCE_MARGIN = 0.02
# A last epoch's mean loss this many times the first mini-batch's: the loss grew (below
# it, the noise of a short run at chance level would be taken for growth).
LOSS_GROWTH = 1.1


def verdict(result: RunResult, *, classes: int = 10) -> str | None:
    """What a finished run that learned nothing should say; None if it learned.

    Chance level: a final test accuracy below ``1/classes + CHANCE_MARGIN``. A loss that
    grew: the mean mini-batch loss over the last epoch above ``LOSS_GROWTH`` times the
    first mini-batch's (the loss of the initial weights, ln(classes) for small ones). A
    huge learning rate does that without ever making the loss NaN: the sigmoid saturates
    and the book's cross-entropy, log(y + 1e-7), stays below 16.2.
    """
    said = []
    acc = result.final_test_acc
    if acc is not None and acc < 1 / classes + CHANCE_MARGIN:
        said.append(f"learned nothing: test accuracy {acc:.4f} is chance level "
                    f"({classes} classes)")
    h = result.history
    losses = np.asarray(h.train_loss_list, dtype=np.float64)
    window = min(max(1, round(h.iter_per_epoch / h.loss_stride)), losses.size - 1)
    if window >= 1:
        first, last = losses[0], losses[-window:].mean()
        if last > LOSS_GROWTH * first:
            said.append(f"the loss grew: its mean over the last epoch, {last:.4g}, is above "
                        f"the first mini-batch's, {first:.4g}; try a smaller learning rate "
                        f"than {result.config.lr:g}")
    return "; ".join(said) or None


def check_same_data(out: Path | None, recorded: dict[str, Any] | None,
                    found: dict[str, Any]) -> None:
    """Refuse data other than the run's (by content identity), naming both."""
    if not recorded or not recorded.get("identity"):
        return  # a checkpoint of an older xpnet recorded none
    if recorded["identity"] != found["identity"]:
        raise RunFolderError(
            f"{out} was trained on {recorded.get('name')} data in {recorded.get('directory')} "
            f"(content {recorded['identity']}), but the data read now from "
            f"{found['directory']} is different (content {found['identity']}): pass "
            f"--data-dir {recorded.get('directory')} with the run's own files, or start a new "
            "run")


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _start(config: RunConfig, out: Path | None,
           resume: bool) -> tuple[RunConfig, dict[str, Any] | None, dt.datetime]:
    """(the config to run, the checkpoint to continue or None, when the run started)."""
    if not resume:
        if config.seed is None:
            config = dataclasses.replace(config, seed=inputs.random_seed())
        if config.data_dir is not None:
            # Absolute when the run starts: a resume from another folder reads the same.
            config = dataclasses.replace(config, data_dir=absolute(config.data_dir))
        return config, None, dt.datetime.now().astimezone()
    if out is None:
        raise RunFolderError("resume needs the run's folder")
    checkpoint = read_checkpoint(out)
    if checkpoint["command"] is None:  # an older checkpoint: the command is in metrics.json
        with contextlib.suppress(RunFolderError):
            checkpoint["command"] = read_metrics(out).get("command")
    resumed = dataclasses.replace(checkpoint["config"], device=config.device,
                                  cuda_graph=config.cuda_graph)
    return resumed, checkpoint, dt.datetime.fromisoformat(checkpoint["started_at"])


def absolute(folder: str | Path) -> str:
    """``folder`` as an absolute path (``~`` expanded, symbolic links kept)."""
    return os.path.abspath(os.path.expanduser(str(folder)))


def _restore(network: Any, optimizer: Any, checkpoint: dict[str, Any],
             out: Path | None) -> History:
    """Put the checkpoint's parameters into ``network`` and its optimizer state into
    ``optimizer``; its history, to continue."""
    try:
        network.set_params(checkpoint["params"])
        optimizers.restore(optimizer, *checkpoint["optimizer"], network.params)
    except InputError as err:  # ModelFileError from set_params, InputError from restore
        raise RunFolderError(f"{out}/{CHECKPOINT} does not fit its run's "
                             f"{network.describe()} ({first_line(err)}); it is "
                             "damaged") from None
    history = checkpoint["history"]
    if isinstance(optimizer, optimizers.Adam) and optimizer.iter != history.iterations:
        # one update per iteration: another count would bias-correct the wrong steps
        raise RunFolderError(f"{out}/{CHECKPOINT} says Adam made {optimizer.iter} updates in "
                             f"{history.iterations} iterations; it is damaged")
    return history


# data set -> dtype -> its float arrays. A sweep worker runs many trials on one data set:
# converting 60000 images again for each trial cost it ~0.3 s and 376 MB (float64) a trial.
_FLOAT_ARRAYS: weakref.WeakKeyDictionary[Any, dict[str, tuple]] = weakref.WeakKeyDictionary()


def float_arrays(data: Any, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    """Where a dataset came from and what it holds, for metrics.json and trial keys.

    name, folder and files (absolute paths), verification, sizes, and ``identity``: the
    content identity of the four arrays it holds (``data_identity``), the same whatever
    folder, compression or cache they were read through.
    """
    directory = getattr(data, "directory", None)
    return {
        "name": getattr(data, "name", None),
        "directory": absolute(directory) if directory else None,
        "files": [absolute(p) for p in getattr(data, "files", ())],
        "verified": getattr(data, "verified", None),
        "train_size": int(data.x_train.shape[0]),
        "test_size": int(data.x_test.shape[0]),
        "identity": data_identity(data),
    }


_IDENTITY: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def data_identity(data: Any) -> str:
    """SHA-256 (16 hex digits) of the four arrays' dtypes, shapes and bytes, in order.

    About 30 ms for MNIST, once per data set.
    """
    with contextlib.suppress(TypeError, KeyError):
        return _IDENTITY[data]
    digest = hashlib.sha256()
    for name in ("x_train", "t_train", "x_test", "t_test"):
        a = np.ascontiguousarray(getattr(data, name))
        digest.update(f"{name} {a.dtype.str} {a.shape};".encode())
        digest.update(memoryview(a).cast("B"))
    identity = digest.hexdigest()[:16]
    with contextlib.suppress(TypeError):
        _IDENTITY[data] = identity
    return identity


# -- stopping on a signal -------------------------------------------------------------------

class SignalStop(KeyboardInterrupt):
    """A stop signal raised where the program was; ``signum`` says which (SIGTERM exits
    143 however often it comes, SIGINT 130)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


@contextlib.contextmanager
def stop_on_signals(*, raise_again: bool = True) -> Iterator[Callable[[], int | None]]:
    """Within the block, SIGINT and SIGTERM ask the work to stop: a flag, never an exception.

    Yields a callable: the number of the first signal received so far, or None. A run
    asks it after each step (and stops cleanly); a sweep's wait loop asks it as it polls.
    A second signal raises SignalStop (a KeyboardInterrupt naming the signal), so a stuck
    run can still be stopped; with ``raise_again=False`` it is only recorded, for work
    whose every wait is bounded (a sweep: an exception landing in Dask's close would leave
    a half-closed cluster), and once a signal came, later ones are ignored to the end of
    the process: Python gives handlers written in Python back to the default action when
    it finalizes, so a SIGTERM then would kill the process instead of its exit with 143.
    The handlers are installed even where SIGINT was ignored (a job started with ``&``
    from a script): a run that can stop cleanly should, whatever the shell did.
    """
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        first = not received
        received.append(signum)
        if raise_again and not first:
            raise SignalStop(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for s, h in previous.items():
            signal.signal(s, signal.SIG_IGN if received and not raise_again else h)
