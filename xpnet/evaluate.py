"""Scoring a trained net: ``evaluate()`` and what ``xpnet eval`` writes from it.

``evaluate`` gives the confusion matrix of anything with ``predict`` on labelled
samples; ``Evaluation`` derives accuracy, accuracy per class and the most frequent
confusions; ``eval_document`` and ``confusion_figure`` are eval.json and confusion.png
(``xpnet.run_folder`` writes them). A plain library: the command is in ``xpnet.cli``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import InputError, RunFolderError
from .run_folder import PARAMS

EVAL_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Evaluation:
    """Scores of a classifier on labelled samples.

    ``confusion[i, j]``: how many samples of true class i were predicted as class j
    (int64, (C, C)); ``accuracy``: the fraction predicted right.
    """

    confusion: np.ndarray
    class_names: tuple[str, ...]

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        # Same division as TwoLayerNet.accuracy, so the two agree to the bit.
        return float(self.correct) / self.total

    @property
    def counts(self) -> np.ndarray:
        """Samples per true class, (C,) int64."""
        return self.confusion.sum(axis=1)

    @property
    def per_class_accuracy(self) -> list[float | None]:
        """Accuracy within each true class; None for a class without samples."""
        return [float(self.confusion[i, i]) / n if n else None
                for i, n in enumerate(self.counts.tolist())]

    def top_confusions(self, k: int = 3) -> list[tuple[int, int, int]]:
        """The ``k`` most frequent mistakes as (true, predicted, count), most first."""
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(-off, axis=None, kind="stable")[:k]  # ties: row-major order
        pairs = [(int(i), int(j), int(off[i, j])) for i, j in
                 zip(*np.unravel_index(order, off.shape), strict=True)]
        return [p for p in pairs if p[2] > 0]


def evaluate(net: Any, x: Any, t: Any, class_names: Sequence[str]) -> Evaluation:
    """Confusion matrix of ``net`` (anything with ``predict``) on x (N, D) and labels t.

    ``x`` as the net takes it (float in [0, 1]); ``t``: class indices (N,) or one-hot.
    """
    from .backend import asnumpy
    from .inputs import labels

    probabilities = asnumpy(net.predict(x))
    classes = probabilities.shape[1]
    if len(class_names) != classes:
        raise InputError(f"the net has {classes} classes but {len(class_names)} class names "
                         "were given")
    truth = asnumpy(labels(t, probabilities.shape[0], classes))
    predicted = probabilities.argmax(axis=1)
    confusion = np.bincount(truth * classes + predicted, minlength=classes * classes)
    return Evaluation(confusion.reshape(classes, classes).astype(np.int64),
                      tuple(class_names))


def class_names_of(dataset: str) -> tuple[str, ...]:
    """The class names of a dataset by name, without loading it."""
    from .dataset.specs import SPECS

    if dataset not in SPECS:
        raise RunFolderError(f"unknown dataset {dataset!r} in metrics.json; choose one of "
                             f"{', '.join(SPECS)}")
    return SPECS[dataset].class_names


def check_writable(folder: Path, what: str) -> None:
    """Refuse, before any work, to evaluate into a folder that cannot be written."""
    if not folder.is_dir():
        raise InputError(f"cannot write {what}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {what}: {folder} is not writable; pass "
                         "--out in a folder you can write")


def eval_document(run_dir: Path, metrics: dict[str, Any], device: Any, data: Any,
                  result: Evaluation) -> dict[str, Any]:
    """eval.json, schema version 1: the run scored on ``data``'s test set."""
    per_class = zip(result.class_names, result.counts.tolist(), result.per_class_accuracy,
                    strict=True)
    return {
        "schema_version": EVAL_SCHEMA_VERSION,
        "xpnet_version": __version__,
        "evaluated_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run": str(run_dir),
        "params": PARAMS,
        "run_status": metrics.get("status"),
        "device": str(device),
        "dataset": data.name,
        "split": "test",
        "data": {"directory": str(data.directory), "files": [str(p) for p in data.files],
                 "verified": data.verified, "test_size": result.total},
        "accuracy": result.accuracy,
        "correct": result.correct,
        "class_names": list(result.class_names),
        "per_class": [{"class": i, "name": name, "count": n, "accuracy": acc}
                      for i, (name, n, acc) in enumerate(per_class)],
        "confusion_note": "confusion[i][j]: test images of true class i predicted as j",
        "confusion": result.confusion.tolist(),
        "top_confusions": [{"true": i, "predicted": j, "count": n}
                           for i, j, n in result.top_confusions(3)],
    }


def confusion_figure(result: Evaluation, title: str) -> Any:
    """The confusion matrix as a Figure: counts in the cells, class names on both axes."""
    from matplotlib.figure import Figure

    m = result.confusion
    names = result.class_names
    fig = Figure(figsize=(8.4, 7.2))
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, label="test images")
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    dark = m > m.max() / 2  # white text where the cell is dark
    for i, j in np.ndindex(m.shape):
        ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                color="white" if dark[i, j] else "black")
    ax.set_title(f"{title}: accuracy {result.accuracy:.4f} "
                 f"({result.correct} of {result.total})", fontsize=10)
    fig.tight_layout()
    return fig


