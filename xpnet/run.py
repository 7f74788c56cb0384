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
import signal
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import inputs, trainer
from .backend import asnumpy, parse_device, to_device
from .dataset import normalized
from .errors import DivergenceError, RunFolderError
from .run_config import RunConfig, RunResult
from .run_folder import (
    CHECKPOINT,
    RunRecord,
    read_checkpoint,
    write_checkpoint,
    write_metrics,
    write_run,
)
from .trainer import History, train
from .two_layer_net import PARAM_NAMES, TwoLayerNet


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
) -> RunResult:
    """Train the book's TwoLayerNet as ``config`` says; write ``out`` if given.

    ``data``: an ``xpnet.dataset.Dataset`` already loaded (a sweep loads it once), else
    it is loaded here. ``out``: the run's folder (claimed with ``run_folder.claim_dir`` unless
    ``resume``, which continues the checkpoint in it; then ``config`` must be the one
    the checkpoint was made with, which ``run_folder.read_checkpoint`` gives). ``stop``: asked
    after each step; when True the run ends early with status ``interrupted``, its
    checkpoint written. Raises DivergenceError (after recording ``failed``), InputError.
    """
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    config, checkpoint, started = _start(config, out, resume)
    if data is None:
        data = load_data(config)
    x_train, t_train, x_test, t_test = float_arrays(data, config.dtype)
    network = TwoLayerNet(x_train.shape[1], config.hidden, 10, config.weight_init_std,
                          seed=config.seed, dtype=config.dtype,
                          device=parse_device(config.device))
    trainer.check_step_fits(network, config.batch_size)  # before anything is written
    history = _restore(network, checkpoint, out) if checkpoint is not None else None
    record = RunRecord(config=config, started_at=started, command=command,
                       data=provenance(data))

    def save_checkpoint(h: History) -> None:
        write_checkpoint(out, config, _host_params(network), h, started)

    if out is not None and checkpoint is None:
        # A checkpoint at iteration 0 first: a run killed at any moment can be resumed.
        history = History(iter_per_epoch=trainer.iter_per_epoch(x_train.shape[0],
                                                                config.batch_size),
                          seed=config.seed)
        save_checkpoint(history)
        write_metrics(out, record.metrics(status="running"))
    try:
        history = train(network, x_train, t_train, x_test, t_test, iters_num=config.iters,
                        batch_size=config.batch_size, learning_rate=config.lr,
                        grad=config.grad, seed=config.seed, progress=progress,
                        on_epoch=on_epoch, history=history, stop=stop,
                        on_checkpoint=save_checkpoint if out is not None else None,
                        checkpoint_every=checkpoint_every)
    except DivergenceError as err:
        if out is not None:
            write_metrics(out, record.metrics(status="failed", error=str(err),
                                              wall_time_s=time.perf_counter() - t0))
        raise
    # The book only evaluates at epoch starts; say where the run actually ended too.
    result = RunResult(config=config, history=history,
                       status="finished" if history.iterations == config.iters
                       else "interrupted",
                       final_train_acc=network.accuracy(x_train, t_train),
                       final_test_acc=network.accuracy(x_test, t_test),
                       params=_host_params(network), wall_time_s=time.perf_counter() - t0,
                       record=record)
    if out is not None:
        write_run(out, result)
    return result


def _start(config: RunConfig, out: Path | None,
           resume: bool) -> tuple[RunConfig, dict[str, Any] | None, dt.datetime]:
    """(the config to run, the checkpoint to continue or None, when the run started)."""
    if not resume:
        if config.seed is None:
            config = dataclasses.replace(config, seed=inputs.random_seed())
        return config, None, dt.datetime.now().astimezone()
    if out is None:
        raise RunFolderError("resume needs the run's folder")
    checkpoint = read_checkpoint(out)
    return (checkpoint["config"], checkpoint,
            dt.datetime.fromisoformat(checkpoint["started_at"]))


def _restore(network: TwoLayerNet, checkpoint: dict[str, Any], out: Path | None) -> History:
    """Put the checkpoint's parameters into ``network``; its history, to continue."""
    saved = checkpoint["params"]
    if saved["W1"].shape != network.params["W1"].shape:
        raise RunFolderError(f"{out}/{CHECKPOINT} holds W1 of shape {saved['W1'].shape}, not "
                             f"{network.params['W1'].shape}; it is damaged")
    network.params = {k: to_device(saved[k].astype(network.dtype), network.device)
                      for k in PARAM_NAMES}
    return checkpoint["history"]


def _host_params(network: TwoLayerNet) -> dict[str, np.ndarray]:
    return {k: asnumpy(network.params[k]) for k in PARAM_NAMES}


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
    """Where a dataset came from, for metrics.json: name, folder, files, verification, sizes."""
    return {
        "name": getattr(data, "name", None),
        "directory": str(getattr(data, "directory", "")) or None,
        "files": [str(p) for p in getattr(data, "files", ())],
        "verified": getattr(data, "verified", None),
        "train_size": int(data.x_train.shape[0]),
        "test_size": int(data.x_test.shape[0]),
    }


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
