"""What ``xpnet train`` leaves behind: metrics.json, accuracy.png, loss.png, params.npz.

Every file is written to a temporary name in the same directory and renamed into place,
so an interrupted run never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .trainer import History


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """``data`` as indented JSON."""
    text = json.dumps(data, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def write_params(path: Path, params: Mapping[str, np.ndarray]) -> None:
    """Host copies of the parameters as an ``.npz`` (no pickle: load with allow_pickle=False)."""
    atomic_write(path, lambda f: np.savez(f, **params))


def _save_figure(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


def plot_accuracy(history: History, path: Path, title: str = "") -> None:
    """The book's figure: train (solid) and test (dashed) accuracy per epoch, y in [0, 1]."""
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot()
    epochs = np.arange(len(history.train_acc_list))
    ax.plot(epochs, history.train_acc_list, label="train acc")
    ax.plot(epochs, history.test_acc_list, label="test acc", linestyle="--")
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    _save_figure(fig, path)


def plot_loss(history: History, path: Path, title: str = "") -> None:
    """Mini-batch loss per iteration, with a running mean over one epoch."""
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot()
    loss = np.asarray(history.train_loss_list)
    ax.plot(np.arange(loss.size), loss, linewidth=0.5, alpha=0.5, label="mini-batch loss")
    window = int(min(max(history.iter_per_epoch, 1), max(loss.size, 1)))
    if loss.size >= window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, loss.size), smooth, label=f"mean of {window}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    _save_figure(fig, path)
