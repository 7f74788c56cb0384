"""Command line: xpnet train, resume, gradcheck, eval, predict and sweep.

Mistakes in the input end with one line on stderr and exit status 2, never a traceback;
an internal error still shows its traceback. Heavy modules (Numba, Matplotlib) are
imported by the commands, so ``xpnet --help`` is quick and works anywhere.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .dataset.specs import SPECS
from .inputs import FLOAT_DTYPES, GRAD_METHODS

DATASETS = tuple(SPECS)  # "mnist", "fashion-mnist"
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the message says what to fix.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a seed, 0 <= seed < 2**63."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed in 0..2**63-1, got {text!r}")
    return value


def add_data_args(p: argparse.ArgumentParser, *, default: str = "") -> None:
    """--device, --dataset, --data-dir: where a command computes and what it reads.

    ``default`` describes what --dataset and --data-dir default to, if not the usual.
    """
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:N or auto (default: $XPNET_DEVICE, else cpu)")
    dataset = default or "mnist; if only Fashion-MNIST is on this machine, that, with a note"
    data_dir = default or "$XPNET_DATA_DIR, else the user cache"
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help=f"which data set (default: {dataset})")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"folder holding (or receiving) the four IDX .gz files (default: "
                        f"{data_dir})")


TRAIN_SETTINGS = ("seed", "dtype", "iters", "batch_size", "lr", "hidden", "weight_init_std",
                  "grad")


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The settings of one run; unset ones (None) take RunConfig's defaults, the book's."""
    p.add_argument("--seed", type=seed_int, default=None,
                   help="seed for weights and batches (default: random; printed and recorded "
                        "in metrics.json)")
    p.add_argument("--dtype", choices=FLOAT_DTYPES, default=None,
                   help="parameter and data dtype (default: float64, like the book)")
    p.add_argument("--iters", type=positive_int, default=None,
                   help="iterations (default: 10000)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="mini-batch size (default: 100)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: 0.1)")
    p.add_argument("--hidden", type=positive_int, default=None,
                   help="hidden units (default: 50)")
    p.add_argument("--weight-init-std", type=positive_float, default=None,
                   help="standard deviation of the initial weights (default: 0.01)")
    p.add_argument("--grad", choices=GRAD_METHODS, default=None,
                   help="backprop, or numerical (the fused central difference)")


def build_parser() -> argparse.ArgumentParser:
    """The xpnet argument parser."""
    from . import evaluate, sweep

    parser = _Parser(
        prog="xpnet", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train and use the TwoLayerNet of Deep Learning from Scratch, chapter 4, "
                    "on NumPy/Numba or CuPy.",
        epilog="examples:\n"
               "  xpnet train --dataset fashion-mnist        the book's train_neuralnet.py\n"
               "  xpnet train --resume runs/<run>            continue a stopped run\n"
               "  xpnet eval runs/<run>                      test accuracy, per class\n"
               "  xpnet predict runs/<run> picture.png       classify a picture\n"
               "  xpnet sweep --lr 0.01,0.1,1 --seed 0-2     many runs, compared\n"
               "'xpnet COMMAND --help' gives each command's options.")
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train the TwoLayerNet by mini-batch SGD (the book's ch. 4)",
                       description="Train the book's TwoLayerNet by mini-batch SGD. Ctrl-C "
                                   "stops after the current step and saves a checkpoint; "
                                   "--resume DIR continues it.")
    add_data_args(t)
    add_train_args(t)
    t.add_argument("--out", default=None,
                   help="output folder, new or empty (default: a new runs/<time>-<id>)")
    t.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the interrupted run in DIR (its settings are reused)")
    t.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                   help="also checkpoint every N iterations (default: at each evaluation)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("gradcheck", help="compare numerical and backprop gradients (ch. 5)",
                       description="The book's gradient check: mean |numerical - backprop| "
                                   "per parameter on the first training samples.")
    add_data_args(g)
    g.add_argument("--seed", type=seed_int, default=None,
                   help="seed for the weights (default: random, printed)")
    g.add_argument("--dtype", choices=FLOAT_DTYPES, default="float64",
                   help="parameter and data dtype (default: float64)")
    g.add_argument("--samples", type=positive_int, default=3, help="samples (default: 3)")
    g.add_argument("--hidden", type=positive_int, default=50, help="hidden units (default: 50)")
    g.add_argument("--method", choices=("fused", "generic"), default="fused",
                   help="numerical gradient method (default: fused; generic is the book's loop)")
    g.set_defaults(func=cmd_gradcheck)

    evaluate.register(sub)
    sweep.register(sub)
    return parser


def pick_dataset(args: argparse.Namespace) -> str:
    """--dataset, or the default: MNIST, unless only Fashion-MNIST is here (said once)."""
    if args.dataset is not None:
        return args.dataset
    from .dataset import find_local

    if args.data_dir is None and find_local("mnist") is None and find_local("fashion-mnist"):
        note("MNIST is not on this machine but Fashion-MNIST is: using it "
             "(pass --dataset mnist to download MNIST instead)")
        return "fashion-mnist"
    return "mnist"


def note(message: str) -> None:
    """One line on stderr."""
    print(f"xpnet: {message}", file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .inputs import InputError
    from .run import (
        RunConfig,
        claim_dir,
        load_data,
        new_run_dir,
        read_checkpoint,
        run,
        stop_on_signals,
    )

    given = {k: getattr(args, k) for k in TRAIN_SETTINGS if getattr(args, k) is not None}
    if args.resume is not None:
        others = [f"--{k.replace('_', '-')}" for k in (*given, "dataset", "data_dir", "device",
                                                      "out") if getattr(args, k) is not None]
        if others:
            raise InputError(f"--resume continues a run with its own settings; drop "
                             f"{', '.join(others)} (or start a new run with them)")
        config = read_checkpoint(args.resume)["config"]
        out = args.resume
    else:
        device = _device(args.device)
        # The folder before the data and the training: a bad --out costs nothing.
        out = claim_dir(args.out) if args.out is not None else new_run_dir()
    def on_epoch(i: int, train_acc: float, test_acc: float) -> None:
        tqdm.write("train acc, test acc | " + str(train_acc) + ", " + str(test_acc))

    with _removed_if_empty(out), stop_on_signals() as received:
        if args.resume is None:
            given.setdefault("seed", secrets.randbelow(2**31))  # printed before training
            config = RunConfig(dataset=pick_dataset(args), device=str(device),
                               data_dir=str(args.data_dir) if args.data_dir else None, **given)
        data = load_data(config)
        print(f"xpnet {__version__}: TwoLayerNet({data.x_train.shape[1]}, {config.hidden}, 10) "
              f"on {config.dataset} ({data.x_train.shape[0]} train, {data.x_test.shape[0]} "
              f"test), device {config.device}, {config.dtype}, {config.grad}, lr {config.lr:g}, "
              f"batch {config.batch_size}, seed {config.seed}"
              + (f", resuming {out}" if args.resume is not None else ""), flush=True)
        result = run(config, data=data, out=out, resume=args.resume is not None,
                     progress=False if args.no_progress else None, on_epoch=on_epoch,
                     stop=lambda: received() is not None,
                     checkpoint_every=args.checkpoint_every, command=["xpnet", *sys.argv[1:]])
    h = result.history
    if result.status == "interrupted":
        signum = received() or signal.SIGINT
        print(f"xpnet train: stopped by {signal.Signals(signum).name} at iteration "
              f"{h.iterations} of {config.iters} (test accuracy {result.final_test_acc:.4f}); "
              f"continue with: xpnet train --resume {out}", file=sys.stderr)
        return 128 + signum
    print(f"done in {h.wall_time_s:.2f} s: after {config.iters} iterations train accuracy "
          f"{result.final_train_acc:.4f}, test accuracy {result.final_test_acc:.4f} "
          f"(seed {result.config.seed}); wrote {out}/metrics.json, accuracy.png, loss.png, "
          "params.npz, checkpoint.npz")
    return 0


class _removed_if_empty:
    """Within the block, an error removes ``folder`` if it is still empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, *exc: Any) -> None:
        if kind is not None and self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()


def _device(spec: str | None) -> Any:
    from .backend import parse_device

    return parse_device(spec)


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from . import backend
    from .dataset import load_dataset, normalized
    from .two_layer_net import PARAM_NAMES, TwoLayerNet

    device = _device(args.device)
    dataset = pick_dataset(args)
    data = load_dataset(dataset, data_dir=args.data_dir)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    network = TwoLayerNet(data.x_train.shape[1], args.hidden, 10, seed=seed, dtype=args.dtype,
                          device=device)
    x_batch = normalized(data.x_train[: args.samples])
    t_batch = data.t_train[: args.samples]
    grad_numerical = network.numerical_gradient(x_batch, t_batch, method=args.method)
    grad_backprop = network.gradient(x_batch, t_batch)
    print(f"mean |numerical ({args.method}) - backprop| on {args.samples} samples of "
          f"{dataset}, {args.dtype}, device {device}, seed {seed}:")
    for key in PARAM_NAMES:
        diff = np.average(np.abs(backend.asnumpy(grad_backprop[key])
                                 - backend.asnumpy(grad_numerical[key])))
        print(key + ":" + str(diff))
    return 0


def in_cli_terms(err: Exception) -> str:
    """The error's one line, where a dataset error names flags instead of arguments.

    The dataset package speaks of ``data_dir`` and its loader functions; on the command
    line the ways out are ``--data-dir`` and ``--dataset``.
    """
    from .dataset.errors import DataNotFoundError, DownloadError, WrongDatasetError

    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, WrongDatasetError):
        return (f"the files in {err.directory} are {SPECS[err.found].title}, not "
                f"{SPECS[err.expected].title}: pass --dataset {err.found} to use them")
    if isinstance(err, (DataNotFoundError, DownloadError)):
        message = message.replace(" in data_dir or ", " in a folder passed as --data-dir, or in ")
        for spec in SPECS.values():
            message = message.replace(f"{spec.how_to_load()} reads it",
                                      f"--dataset {spec.name} uses it")
        message = message.replace("set data_dir or ", "pass --data-dir or set ")
    return message


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean 'bad input', not 'bug': one line and exit 2."""
    from .backend import DeviceError
    from .dataset.errors import DatasetError
    from .inputs import InputError
    from .trainer import DivergenceError

    return (DeviceError, DatasetError, DivergenceError, InputError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the xpnet console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        # Warnings (such as XPNET_DEVICE=auto falling back to the CPU) as one plain line.
        warnings.formatwarning = lambda message, *_args, **_kw: f"xpnet: warning: {message}\n"
        func: Callable[[argparse.Namespace], int] = args.func
        try:
            return func(args)
        except user_errors() as err:
            print(f"xpnet {args.command}: error: {in_cli_terms(err)}", file=sys.stderr)
            return EXIT_USAGE
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (xpnet eval RUN | head): stop quietly, as Unix tools do.
        # Python would complain again when flushing stdout at exit, so point it elsewhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
