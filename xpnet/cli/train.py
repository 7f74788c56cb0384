"""``xpnet train``: the book's training scripts as a command (``--net`` picks the net of
chapters 4 to 8); ``--resume`` continues."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path
from shlex import quote
from typing import Any

from .. import __version__
from ..errors import InputError, RunFolderError
from ..inputs import FLOAT_DTYPES, GRAD_METHODS, NETS, OPTIMIZERS
from .common import (
    EVAL_SAMPLES_HELP,
    NET_DEFAULT_HELP,
    add_data_args,
    add_layer_args,
    non_negative_int,
    pick_dataset,
    positive_float,
    positive_int,
    seed_int,
)

TRAIN_SETTINGS = ("net", "optimizer", "seed", "dtype", "iters", "batch_size", "lr", "hidden",
                  "activation", "weight_init_std", "weight_decay", "grad", "eval_samples")


def register(sub: Any) -> None:
    """Add ``train`` to the xpnet subcommands ``sub``."""
    t = sub.add_parser("train", help="train one of the book's nets (chapters 4 to 8)",
                       description="Train one of the book's nets on mini-batches: the "
                                   "TwoLayerNet by SGD (ch. 4), the MultiLayerNet, "
                                   "SimpleConvNet or DeepConvNet with the book's optimizers "
                                   "(ch. 6 to 8). A setting not given is the book's value for "
                                   "the net. Ctrl-C stops after the current step and saves a "
                                   "checkpoint; --resume DIR continues it. The run's folder "
                                   "is this command's alone while it runs.",
                       epilog="example: xpnet train --net multi-layer --hidden 100x4 "
                              "--optimizer adam --weight-decay 1e-6 --iters 2000")
    add_data_args(t)
    add_train_args(t)
    t.add_argument("--out", default=None,
                   help="output folder, new or empty (default: a new runs/<time>-<id>)")
    t.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the interrupted run in DIR with its own settings and data "
                        "(--device may move it to another device: the numbers after the move "
                        "can then differ in the last digits from a run never moved)")
    t.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                   help="also checkpoint every N iterations (default: at each evaluation)")
    t.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="one CUDA graph launch per step on CUDA (default: on there)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The settings of one run; unset ones (None) take RunConfig's defaults, the book's."""
    p.add_argument("--net", choices=NETS, default=None,
                   help="two-layer (ch. 4's TwoLayerNet), multi-layer (ch. 6's MultiLayerNet), "
                        "simple-conv (ch. 7's SimpleConvNet) or deep-conv (ch. 8's "
                        "DeepConvNet) (default: two-layer)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help=f"the book's optimizers of ch. 6 (default: "
                        f"{NET_DEFAULT_HELP['optimizer']})")
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
                   help=f"learning rate (default: {NET_DEFAULT_HELP['lr']})")
    add_layer_args(p)
    p.add_argument("--grad", choices=GRAD_METHODS, default=None,
                   help="backprop, or numerical (the fused central difference) (default: "
                        "backprop)")
    p.add_argument("--eval-samples", type=non_negative_int, default=None, metavar="N",
                   help=EVAL_SAMPLES_HELP)


def cmd_train(args: argparse.Namespace) -> int:
    from .. import inputs
    from ..backend import parse_device
    from ..run import absolute
    from ..run_config import RunConfig
    from ..run_folder import claimed, held

    given = {k: getattr(args, k) for k in TRAIN_SETTINGS if getattr(args, k) is not None}
    if args.resume is not None:
        others = [f"--{k.replace('_', '-')}" for k in (*given, "dataset", "data_dir", "out")
                  if getattr(args, k) is not None]
        if others:
            raise InputError(f"--resume continues a run with its own settings; drop "
                             f"{', '.join(others)} (or start a new run with them)")
        if not args.resume.is_dir():
            what = "is not a folder" if args.resume.exists() else "does not exist"
            raise RunFolderError(f"--resume {args.resume} {what}; pass the folder of an "
                                 "interrupted run")
        with held(args.resume):  # at once: a second command on it is refused before any work
            return _resume(args)
    device = parse_device(args.device)
    # The folder before the data and the training: a bad --out costs nothing.
    with claimed(args.out) as out:
        given.setdefault("seed", inputs.random_seed())  # printed before training
        config = RunConfig(dataset=pick_dataset(args), device=str(device),
                           data_dir=absolute(args.data_dir) if args.data_dir else None,
                           cuda_graph=args.cuda_graph, **given)
        return _train(args, config, out, resume=False)


def _resume(args: argparse.Namespace) -> int:
    import dataclasses

    from ..backend import parse_device
    from ..errors import DeviceError
    from ..run_folder import read_checkpoint, read_metrics

    out = args.resume
    checkpoint = read_checkpoint(out)
    config = checkpoint["config"]
    done = checkpoint["history"].iterations
    status = None
    with contextlib.suppress(RunFolderError):
        status = read_metrics(out).get("status")
    if status == "finished" and done == config.iters:
        print(f"xpnet train: {out} is finished ({done} of {config.iters} iterations): nothing "
              f"to resume, nothing changed; score it with: xpnet eval {quote(str(out))}")
        return 0
    if args.device is not None:
        config = dataclasses.replace(config, device=str(parse_device(args.device)))
    else:
        try:
            parse_device(config.device)
        except DeviceError as err:
            raise DeviceError(f"{out} was trained on {config.device}, which cannot be used "
                              f"here ({err.reason}); continue it on the CPU with: xpnet train "
                              f"--resume {quote(str(out))} --device cpu", err.reason) from None
    if args.cuda_graph is not None:
        config = dataclasses.replace(config, cuda_graph=args.cuda_graph)
    return _train(args, config, out, resume=True)


def _train(args: argparse.Namespace, config: Any, out: Path, *, resume: bool) -> int:
    from tqdm import tqdm

    from ..dataset.atomic import WriteFaultError
    from ..run import load_data, run, stop_on_signals
    from ..run_folder import CHECKPOINT

    again = f"xpnet train --resume {quote(str(out))}"
    with stop_on_signals() as received:
        data = load_data(config)
        train_size, test_size = data.x_train.shape[0], data.x_test.shape[0]
        n = config.eval_samples
        both = _first(n, train_size, test_size)

        def on_start(net: str) -> None:  # the net run() built, named before it trains
            print(f"xpnet {__version__}: {net} on {config.dataset} ({train_size} train, "
                  f"{test_size} test), device {config.device}, {config.dtype}, "
                  f"{config.grad}, {config.optimizer} lr {config.lr:g}, batch "
                  f"{config.batch_size}, seed {config.seed}"
                  + (f", resuming {out}" if resume else ""), flush=True)

        def on_epoch(i: int, train_acc: float, test_acc: float) -> None:
            tqdm.write(f"train acc, test acc | {train_acc}, {test_acc}{both}")

        try:
            result = run(config, data=data, out=out, resume=resume,
                         progress=False if args.no_progress else None, on_epoch=on_epoch,
                         stop=lambda: received() is not None,
                         checkpoint_every=args.checkpoint_every,
                         command=["xpnet", *sys.argv[1:]], on_start=on_start)
        except WriteFaultError as err:
            if not (out / CHECKPOINT).is_file():
                raise
            raise RunFolderError(f"{err}; the run is marked failed and keeps its last "
                                 f"checkpoint: once fixed, continue with: {again}") from None
    h = result.history
    if result.status == "interrupted":
        signum = received() or signal.SIGINT
        print(f"xpnet train: stopped by {signal.Signals(signum).name} at iteration "
              f"{h.iterations} of {config.iters} (test accuracy {result.final_test_acc:.4f}); "
              f"continue with: {again}", file=sys.stderr)
        return 128 + signum
    print(f"done in {h.wall_time_s:.2f} s: after {config.iters} iterations train accuracy "
          f"{result.final_train_acc:.4f}{_first(n, train_size)}, test accuracy "
          f"{result.final_test_acc:.4f} "
          f"(seed {result.config.seed}); wrote {out}/metrics.json, accuracy.png, loss.png, "
          "params.npz, checkpoint.npz")
    if result.verdict:
        print(f"xpnet train: {result.verdict}")
    return 0


def _first(n: int, train_size: int, test_size: int | None = None) -> str:
    """" (first N images)" where an accuracy is of the first ``n`` images of a set (of
    the train set of ``train_size`` and, if given, the test set of ``test_size``)."""
    train_part = 0 < n < train_size
    test_part = test_size is not None and 0 < n < test_size
    if train_part and (test_part or test_size is None):
        return f" (first {n} images)"
    if train_part or test_part:
        return f" (first {n} {'train' if train_part else 'test'} images)"
    return ""
