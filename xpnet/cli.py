"""Command line: ``xpnet train`` (the book's train_neuralnet.py) and ``xpnet gradcheck``.

Mistakes in the input end with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import secrets
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from tqdm import tqdm

from . import __version__, backend
from .backend import DeviceError, asnumpy
from .dataset.errors import DatasetError
from .trainer import GRAD_METHODS, DivergenceError, iter_per_epoch, train
from .two_layer_net import PARAM_NAMES, TwoLayerNet

DATASETS = ("mnist", "fashion-mnist")
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the message says what to fix.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:N or auto (default: $XPNET_DEVICE, else cpu)")
    p.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="which data set (default: mnist)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="directory holding or receiving the IDX .gz files "
                        "(default: $XPNET_DATA_DIR, else the user cache)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for weights and batches (default: random, recorded)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="parameter and data dtype (default: float64, like the book)")


def build_parser() -> argparse.ArgumentParser:
    """The ``xpnet`` argument parser."""
    parser = _Parser(prog="xpnet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train the TwoLayerNet by mini-batch SGD (the book's ch. 4)",
                       description="Train the book's TwoLayerNet by mini-batch SGD.")
    _add_data_args(t)
    t.add_argument("--iters", type=_positive_int, default=10000,
                   help="iterations (default: 10000)")
    t.add_argument("--batch-size", type=_positive_int, default=100,
                   help="mini-batch size (default: 100)")
    t.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate (default: 0.1)")
    t.add_argument("--hidden", type=_positive_int, default=50, help="hidden units (default: 50)")
    t.add_argument("--grad", choices=GRAD_METHODS, default="backprop",
                   help="backprop, or numerical (the fused central difference)")
    t.add_argument("--out", type=Path, default=None,
                   help="output directory (default: runs/<timestamp>)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    g = sub.add_parser("gradcheck", help="compare numerical and backprop gradients (ch. 5)",
                       description="The book's gradient check: mean |numerical - backprop| "
                                   "per parameter on the first training samples.")
    _add_data_args(g)
    g.add_argument("--samples", type=_positive_int, default=3, help="samples (default: 3)")
    g.add_argument("--hidden", type=_positive_int, default=50, help="hidden units (default: 50)")
    g.add_argument("--method", choices=("fused", "generic"), default="fused",
                   help="numerical gradient method (default: fused; generic is the book's loop)")
    return parser


def load_data(name: str, data_dir: Path | None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``(x_train, t_train), (x_test, t_test)``: float32 images / 255 (N, 784), labels (N,)."""
    if name == "mnist":
        from .dataset.mnist import load_mnist as load
    else:
        from .dataset.fashion_mnist import load_fashion_mnist as load
    return load(normalize=True, flatten=True, one_hot_label=False, data_dir=data_dir)


def _check_writable(out: Path) -> None:
    """Raise ValueError unless ``out`` is, or can be created as, a writable directory."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {existing} is not a writable directory; "
                         "pass --out DIR somewhere you can write")


def cmd_train(args: argparse.Namespace) -> int:
    from .report import plot_accuracy, plot_loss, write_json, write_params

    started = dt.datetime.now().astimezone()
    device = backend.parse_device(args.device)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    out = args.out or Path("runs") / started.strftime("%Y%m%d-%H%M%S")
    _check_writable(out)  # before training, not after it

    (x_train, t_train), (x_test, t_test) = load_data(args.dataset, args.data_dir)
    network = TwoLayerNet(x_train.shape[1], args.hidden, 10, seed=seed, dtype=args.dtype,
                          device=device)
    config = {
        "dataset": args.dataset, "device": str(device), "dtype": args.dtype,
        "iters": args.iters, "batch_size": args.batch_size, "lr": args.lr,
        "hidden": args.hidden, "grad": args.grad, "seed": seed,
    }
    print(f"xpnet {__version__}: TwoLayerNet({x_train.shape[1]}, {args.hidden}, 10) on "
          f"{args.dataset} ({x_train.shape[0]} train, {x_test.shape[0]} test), device {device}, "
          f"{args.dtype}, {args.grad}, seed {seed}", flush=True)

    def on_epoch(i: int, train_acc: float, test_acc: float) -> None:
        tqdm.write("train acc, test acc | " + str(train_acc) + ", " + str(test_acc))

    t0 = time.perf_counter()
    history = train(network, x_train, t_train, x_test, t_test, iters_num=args.iters,
                    batch_size=args.batch_size, learning_rate=args.lr, grad=args.grad,
                    seed=seed, progress=False if args.no_progress else None, on_epoch=on_epoch)
    total = time.perf_counter() - t0
    # The book only evaluates at epoch starts; say where the run actually ended too.
    final_train_acc = network.accuracy(x_train, t_train)
    final_test_acc = network.accuracy(x_test, t_test)

    title = f"{args.dataset}, {device}, {args.dtype}, {args.grad}"
    out.mkdir(parents=True, exist_ok=True)  # only now: a failed run leaves no empty folder
    write_params(out / "params.npz", {k: asnumpy(network.params[k]) for k in PARAM_NAMES})
    plot_accuracy(history, out / "accuracy.png", title)
    plot_loss(history, out / "loss.png", title)
    write_json(out / "metrics.json", {
        "xpnet_version": __version__,
        "started_at": started.isoformat(timespec="seconds"),
        "command": ["xpnet", *sys.argv[1:]],
        "config": config,
        "device": str(device),
        "train_size": int(x_train.shape[0]),
        "test_size": int(x_test.shape[0]),
        "iter_per_epoch": iter_per_epoch(x_train.shape[0], args.batch_size),
        "epochs": [
            {"epoch": k, "iteration": i, "train_acc": a, "test_acc": b}
            for k, (i, a, b) in enumerate(zip(history.eval_iterations, history.train_acc_list,
                                             history.test_acc_list, strict=True))
        ],
        "final_train_acc": final_train_acc,
        "final_test_acc": final_test_acc,
        "train_loss_list": history.train_loss_list,
        "train_wall_time_s": history.wall_time_s,
        "wall_time_s": total,
    })
    print(f"done in {history.wall_time_s:.2f} s: after {args.iters} iterations train accuracy "
          f"{final_train_acc:.4f}, test accuracy {final_test_acc:.4f}; wrote {out}/metrics.json,"
          " accuracy.png, loss.png, params.npz")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    device = backend.parse_device(args.device)
    (x_train, t_train), _ = load_data(args.dataset, args.data_dir)
    network = TwoLayerNet(x_train.shape[1], args.hidden, 10, seed=args.seed, dtype=args.dtype,
                          device=device)
    x_batch = backend.to_device(x_train[: args.samples].astype(args.dtype), device)
    t_batch = backend.to_device(t_train[: args.samples].astype(np.int64), device)
    grad_numerical = network.numerical_gradient(x_batch, t_batch, method=args.method)
    grad_backprop = network.gradient(x_batch, t_batch)
    print(f"mean |numerical ({args.method}) - backprop| on {args.samples} samples, "
          f"{args.dtype}, device {device}:")
    for key in PARAM_NAMES:
        diff = np.average(np.abs(asnumpy(grad_backprop[key]) - asnumpy(grad_numerical[key])))
        print(key + ":" + str(diff))
    return 0


COMMANDS = {"train": cmd_train, "gradcheck": cmd_gradcheck}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xpnet`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    # Warnings (such as XPNET_DEVICE=auto falling back to the CPU) as one plain line.
    warnings.formatwarning = lambda message, *_args, **_kw: f"xpnet: warning: {message}\n"
    try:
        return COMMANDS[args.command](args)
    except (DeviceError, DatasetError, DivergenceError, ValueError, OSError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"xpnet {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"xpnet {args.command}: interrupted", file=sys.stderr)
        return 130
