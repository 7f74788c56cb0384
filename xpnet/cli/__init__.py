"""Command line: xpnet train, gradcheck, eval, predict, sweep and convert-params; the top floor.

One module per command (``train``, ``gradcheck``, ``evaluate``: eval and predict,
``sweep``, ``convert``: convert-params), each with its ``register`` (its flags) and its
``cmd_*``; ``common`` holds what they share. Mistakes in the input end with one line on
stderr and exit status 2, never a traceback: the commands let xpnet's one family of user errors
(``xpnet.errors.UserError``) through, and ``main`` turns it into that line; any other
error is a bug and keeps its traceback. Heavy modules (Numba, Matplotlib) are imported
by the commands, so ``xpnet --help`` is quick and works anywhere.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence

from .. import __version__
from ..dataset.errors import UserError
from . import convert, evaluate, gradcheck, sweep, train
from .common import EXIT_USAGE, Parser, error_line

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The xpnet argument parser."""
    parser = Parser(
        prog="xpnet", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train and use the nets of Deep Learning from Scratch, chapters 4 to 8 "
                    "(TwoLayerNet, MultiLayerNet, SimpleConvNet, DeepConvNet), on NumPy/Numba "
                    "or CuPy.",
        epilog="examples:\n"
               "  xpnet train --dataset fashion-mnist        the book's train_neuralnet.py\n"
               "  xpnet train --net multi-layer --optimizer adam   ch. 6's MultiLayerNet\n"
               "  xpnet train --resume runs/<run>            continue a stopped run\n"
               "  xpnet eval runs/<run>                      test accuracy, per class\n"
               "  xpnet predict runs/<run> picture.png       classify a picture\n"
               "  xpnet sweep --lr 0.01,0.1,1 --seed 0-2     many runs, compared\n"
               "  xpnet sweep --net multi-layer --hidden 100x6 --lr log:1e-6:1e-2 \\\n"
               "      --weight-decay log:1e-8:1e-4 --trials 100   the book's ch. 6.5 search\n"
               "  xpnet convert-params params.pkl            the book's pickle as .npz\n"
               "'xpnet COMMAND --help' gives each command's options.")
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in (train, gradcheck, evaluate, sweep, convert):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the xpnet console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        # Warnings (such as XPNET_DEVICE=auto falling back to the CPU) as one plain line.
        warnings.formatwarning = lambda message, *_args, **_kw: f"xpnet: warning: {message}\n"
        func: Callable[[argparse.Namespace], int] = args.func
        try:
            return func(args)
        except UserError as err:
            print(f"xpnet {args.command}: error: {error_line(err, args)}", file=sys.stderr)
            return EXIT_USAGE
    except KeyboardInterrupt as stop:
        return _interrupted(stop)
    except RuntimeError as err:
        # Python 3.11 wraps a Ctrl-C that lands in a class body being built (as when a
        # module such as Matplotlib is imported) in a RuntimeError: still a Ctrl-C.
        if isinstance(err.__cause__, KeyboardInterrupt):
            return _interrupted(err.__cause__)
        raise
    except BrokenPipeError:
        # The reader went away (xpnet eval RUN | head): stop quietly, as Unix tools do.
        # Python would complain again when flushing stdout at exit, so point it elsewhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _interrupted(stop: KeyboardInterrupt) -> int:
    # A second SIGTERM is still a SIGTERM (143), not a Ctrl-C (130).
    signum = getattr(stop, "signum", signal.SIGINT)
    print("xpnet: interrupted" if signum == signal.SIGINT else
          f"xpnet: stopped by {signal.Signals(signum).name}", file=sys.stderr)
    return 128 + signum
