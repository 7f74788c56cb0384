"""Using a trained run: ``xpnet eval RUN_DIR`` and ``xpnet predict RUN_DIR IMAGE...``.

``eval`` scores the run's ``params.npz`` on its dataset's test set: accuracy, accuracy per
class, the most frequent confusions, and writes ``confusion.png`` and ``eval.json``
(atomically) into the run folder. ``predict`` classifies picture files made MNIST-like by
``xpnet.images``. The numbers come from ``evaluate()``, a plain function.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import normalized
from .inputs import InputError

EVAL_SCHEMA_VERSION = 1


class RunFolderError(InputError):
    """A run folder that cannot be used: missing, or without a readable params/metrics."""


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


# -- the run folder ---------------------------------------------------------------------------

def load_run(run_dir: Path, device: Any = None) -> tuple[Any, dict[str, Any]]:
    """(the net of ``run_dir/params.npz``, its metrics.json); one-line errors."""
    from .cli import note
    from .two_layer_net import TwoLayerNet

    if not run_dir.is_dir():
        what = "is not a folder" if run_dir.exists() else "does not exist"
        raise RunFolderError(f"{run_dir} {what}; pass a run folder written by xpnet train")
    metrics = read_run_metrics(run_dir)
    status = metrics.get("status")
    params = run_dir / "params.npz"
    if not params.is_file():
        raise RunFolderError(f"{run_dir} holds no params.npz (its metrics.json says the run "
                             f"is {status}); finish the run first (xpnet train --resume "
                             f"{run_dir})")
    net = TwoLayerNet.load(params, device=device)
    if status != "finished":
        note(f"{run_dir}/metrics.json says the run is {status}; using the parameters it saved")
    return net, metrics


def read_run_metrics(run_dir: Path) -> dict[str, Any]:
    """``run_dir/metrics.json`` (schema version 1), checked for what eval and predict use."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise RunFolderError(f"{run_dir} holds no metrics.json; pass a run folder written by "
                             "xpnet train")
    try:
        metrics = json.loads(path.read_text())
        config = metrics["config"]
        ok = metrics["schema_version"] == 1 and isinstance(config["dataset"], str)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RunFolderError(f"{path} is damaged ({message})") from None
    if not ok:
        raise RunFolderError(f"{path} is not a metrics.json of schema version 1 "
                             f"(schema_version {metrics['schema_version']!r})")
    return metrics


def class_names_of(dataset: str) -> tuple[str, ...]:
    """The class names of a dataset by name, without loading it."""
    from .dataset.specs import SPECS

    if dataset not in SPECS:
        raise RunFolderError(f"unknown dataset {dataset!r} in metrics.json; choose one of "
                             f"{', '.join(SPECS)}")
    return SPECS[dataset].class_names


def _check_writable(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise InputError(f"cannot write {what}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {what}: {folder} is not writable; pass "
                         "--out in a folder you can write")


# -- xpnet eval -------------------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    from . import __version__
    from .backend import parse_device
    from .dataset import load_dataset

    run_dir = Path(args.run_dir)
    net, metrics = load_run(run_dir, parse_device(args.device))
    config = metrics["config"]
    dataset = args.dataset or config["dataset"]
    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    picture = args.out if args.out is not None else run_dir / "confusion.png"
    if picture.is_dir():
        raise InputError(f"--out {picture} is a folder; pass a file name such as "
                         f"{picture / 'confusion.png'}")
    _check_writable(run_dir, "eval.json")
    _check_writable(picture.parent, picture.name)
    data = load_dataset(dataset, data_dir=data_dir)
    if net.sizes[0] != data.x_test.shape[1]:
        raise InputError(f"the net takes {net.sizes[0]} inputs but {data.title} images have "
                         f"{data.x_test.shape[1]} pixels")
    result = evaluate(net, normalized(data.x_test), data.t_test, data.class_names)

    d, h, c = net.sizes
    print(f"{run_dir}: TwoLayerNet({d}, {h}, {c}) {net.dtype.name} on the {data.title} test "
          f"set ({result.total} images from {data.directory}), device {net.device}")
    print(f"test accuracy {result.accuracy:.4f} ({result.correct} of {result.total} right)")
    recorded = metrics.get("final_test_acc")
    if recorded is not None and dataset == config["dataset"] and recorded != result.accuracy:
        print(f"(metrics.json recorded {recorded:.4f} at the end of training)")
    width = max(len(n) for n in data.class_names)
    print(f"class  {'name':<{width}}  count  accuracy")
    for i, (name, n, acc) in enumerate(zip(data.class_names, result.counts.tolist(),
                                           result.per_class_accuracy, strict=True)):
        print(f"{i:>5}  {name:<{width}}  {n:>5}  " + ("-" if acc is None else f"{acc:.4f}"))
    print("most frequent confusions (true -> predicted: count):")
    for i, j, n in result.top_confusions(3):
        print(f"  {i} {data.class_names[i]} -> {j} {data.class_names[j]}: {n}")

    doc = {
        "schema_version": EVAL_SCHEMA_VERSION,
        "xpnet_version": __version__,
        "evaluated_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run": str(run_dir),
        "params": "params.npz",
        "run_status": metrics.get("status"),
        "device": str(net.device),
        "dataset": data.name,
        "split": "test",
        "data": {"directory": str(data.directory), "files": [str(p) for p in data.files],
                 "verified": data.verified, "test_size": result.total},
        "accuracy": result.accuracy,
        "correct": result.correct,
        "class_names": list(result.class_names),
        "per_class": [{"class": i, "name": name, "count": n, "accuracy": acc}
                      for i, (name, n, acc) in enumerate(zip(
                          result.class_names, result.counts.tolist(),
                          result.per_class_accuracy, strict=True))],
        "confusion_note": "confusion[i][j]: test images of true class i predicted as j",
        "confusion": result.confusion.tolist(),
        "top_confusions": [{"true": i, "predicted": j, "count": n}
                           for i, j, n in result.top_confusions(3)],
    }
    from .dataset.atomic import atomic_write_bytes

    try:
        plot_confusion(result, picture, f"{data.title} test set, {run_dir.name}")
        atomic_write_bytes(run_dir / "eval.json", (json.dumps(doc, indent=2) + "\n").encode())
    except OSError as err:
        raise InputError(f"cannot write {err.filename or picture} "
                         f"({err.strerror or err})") from None
    print(f"wrote {picture}, {run_dir / 'eval.json'}")
    return 0


def plot_confusion(result: Evaluation, path: Path, title: str) -> None:
    """The confusion matrix as a PNG: counts in the cells, class names on both axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .dataset.atomic import atomic_write

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
    FigureCanvasAgg(fig)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


# -- xpnet predict ----------------------------------------------------------------------------

def cmd_predict(args: argparse.Namespace) -> int:
    from .backend import asnumpy, parse_device
    from .images import mnist_like

    run_dir = Path(args.run_dir)
    net, metrics = load_run(run_dir, parse_device(args.device))
    dataset = metrics["config"]["dataset"]
    names = class_names_of(dataset)
    if net.sizes[0] != 784 or net.sizes[2] != len(names):
        raise RunFolderError(f"{run_dir}/params.npz is a TwoLayerNet{net.sizes}, not one for "
                             "28x28 images of 10 classes")
    # Every file is read before any is classified: a bad one stops all, with nothing printed.
    x = np.stack([mnist_like(path, dataset=dataset) for path in args.images])
    probabilities = asnumpy(net.predict(x))
    k = min(args.top, len(names))
    for path, p in zip(args.images, probabilities, strict=True):
        best = np.argsort(-p, kind="stable")[:k]
        top = ", ".join(f"{j} {names[j]} {p[j]:.4f}" for j in best)
        print(f"{path}: {best[0]} {names[best[0]]} (p={p[best[0]]:.4f}); top {k}: {top}")
    return 0


def register(sub: Any) -> None:
    """Add ``eval`` and ``predict`` to the xpnet subcommands ``sub``."""
    from .cli import add_data_args, positive_int

    e = sub.add_parser("eval", help="score a trained run on its test set",
                       description="Score RUN_DIR/params.npz on the test set of the run's "
                                   "dataset: accuracy, per class, the most frequent "
                                   "confusions; writes confusion.png and eval.json.")
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder of xpnet train")
    add_data_args(e, default="the run's own, from its metrics.json")
    e.add_argument("--out", type=Path, default=None, metavar="FILE.png",
                   help="the confusion-matrix picture (default: RUN_DIR/confusion.png)")
    e.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="classify image files with a trained run",
                       description="Classify pictures (PNG, JPEG, ... of one digit or "
                                   "garment) with RUN_DIR/params.npz; each is first made "
                                   "like an MNIST image (grayscale, light on black, "
                                   "cropped, 28x28, centred).")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder of xpnet train")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="picture files")
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:N or auto (default: $XPNET_DEVICE, else cpu)")
    p.add_argument("--top", type=positive_int, default=3, metavar="K",
                   help="how many classes to list per picture (default: 3)")
    p.set_defaults(func=cmd_predict)
