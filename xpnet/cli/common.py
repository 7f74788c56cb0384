"""What every command shares: the parser, argparse types on ``xpnet.inputs``' rules,
the data and device options, notes, and the one line a user error becomes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from .. import inputs, sweep_spec
from ..dataset.errors import UserError, Words, WrongDatasetError, one_line
from ..dataset.specs import SPECS
from ..inputs import ACTIVATIONS, DATASETS

EXIT_USAGE = 2
DEVICE_HELP = "cpu, cuda, cuda:N or auto (default: $XPNET_DEVICE, else cpu)"
# The dataset package's sentences, with this command line's ways out in them.
CLI_WORDS = Words(put_in="in a folder passed as --data-dir, or in",
                  set_data_dir="pass --data-dir or set",
                  other_here="--dataset {name} uses it", data_dir="--data-dir")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the message says what to fix. A type's
        # message that names its flag itself goes without argparse's "argument --flag: ".
        head, _, rest = message.partition(": ")
        if head.startswith("argument ") and rest.startswith(head.removeprefix("argument ") + " "):
            message = rest
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _arg_type(parse: Callable[[str], Any], rule: Callable[[str, Any], Any],
              expected: str) -> Callable[[str], Any]:
    """An argparse type: ``text`` parsed, then held to an ``inputs`` rule."""
    def convert(text: str) -> Any:
        try:
            return rule("value", parse(text))
        except ValueError:  # not a number, or an InputError of the rule
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    convert.__name__ = rule.__name__  # argparse names the type in some messages
    return convert


positive_int = _arg_type(int, inputs.positive_int, "a positive integer")
positive_float = _arg_type(float, inputs.positive_float, "a positive number")
non_negative_float = _arg_type(float, inputs.non_negative_float, "a number >= 0")
non_negative_int = _arg_type(int, inputs.non_negative_int, "0 or a positive integer")
seed_int = _arg_type(int, inputs.seed, f"a seed in {inputs.SEED_RANGE}")
weight_init = _arg_type(str, inputs.weight_init,
                        f"a positive number or one of {', '.join(inputs.WEIGHT_INITS)}")


def _one_net(name: str, text: str) -> int | tuple[int, ...]:
    """One net's hidden sizes, spelled as a sweep spells one value (100x2+50)."""
    if "," in text:
        raise argparse.ArgumentTypeError(comma_in_layers(text))
    return sweep_spec.layers(name, text)


def comma_in_layers(text: str) -> str:
    """Why ``--hidden TEXT`` with a comma is refused where it names one net, and the
    spelling, with TEXT's own sizes when they are sizes."""
    try:
        parts = [sweep_spec.layers("hidden", part) for part in text.split(",")]
        sizes = [s for p in parts for s in (p if isinstance(p, tuple) else (p,))]
    except sweep_spec.SpecError:
        sizes = [100, 50]
    repeated = sweep_spec.show(tuple(sizes))
    return (f"--hidden {text}: write a net's layers joined by + "
            f"({'+'.join(map(str, sizes))}) or repeated with x "
            f"({repeated if 'x' in repeated else f'{sizes[0]}x2'}); a comma separates "
            "values to try in xpnet sweep")


# One size, or a multi-layer net's sizes: 100x4 (four of 100), 100x2+50. Never a comma:
# in xpnet sweep a comma separates the values to try, and a net is spelled alike everywhere.
hidden_sizes = _arg_type(str, _one_net, "a size such as 50, or layer sizes such as 100x4 "
                                        "or 100x2+50")
HIDDEN_HELP = ("hidden units: one size, or for multi-layer its hidden layers' sizes joined "
               "by + and repeated with x: 100x4 (four of 100), 100x2+50; no commas: in xpnet "
               "sweep a comma separates the values to try")

# The book's values of each net's settings, as the help says them (a test holds them to
# RunConfig's NET_DEFAULTS and DEFAULT_LR, which are not imported here: they pull Numba
# in, and ``xpnet --help`` stays quick).
NET_DEFAULT_HELP = {
    "hidden": "50 for two-layer, 100x4 for multi-layer, 100 for simple-conv (its affine "
              "layer), 50 for deep-conv (its affine layer)",
    "lr": "0.1 for two-layer; else the optimizer's, 0.001 for adam and 0.01 for the rest",
    "optimizer": "sgd for two-layer (its only one) and multi-layer, adam for simple-conv "
                 "and deep-conv",
    "activation": "relu for multi-layer (its choice), sigmoid for two-layer, relu for "
                  "simple-conv and deep-conv (theirs)",
    "weight_init_std": "0.01 for two-layer and simple-conv, he for multi-layer and "
                       "deep-conv (fixed for deep-conv)",
    "weight_decay": "0; for multi-layer only",
}
EVAL_SAMPLES_HELP = ("an evaluation scores the first N images of the train and of the test "
                     "set, 0: every image (default: every image for two-layer and "
                     "multi-layer, 1000 for simple-conv and deep-conv, as the book's "
                     "Trainer); the final test accuracy is always the whole test set's")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """--device: where a command computes."""
    p.add_argument("--device", default=None, help=DEVICE_HELP)


def add_data_args(p: argparse.ArgumentParser, *, default: str = "") -> None:
    """--device, --dataset, --data-dir: where a command computes and what it reads.

    ``default`` describes what --dataset and --data-dir default to, if not the usual.
    """
    add_device_arg(p)
    dataset = default or ("mnist, downloaded if need be; offline, a Fashion-MNIST on this "
                          "machine, with a note")
    data_dir = default or "$XPNET_DATA_DIR, else the user cache"
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help=f"which data set (default: {dataset})")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"folder holding (or receiving) the four IDX .gz files (default: "
                        f"{data_dir})")


def pick_dataset(args: argparse.Namespace) -> str:
    """--dataset, or the default: MNIST, found here or downloaded; when it cannot be had (not
    here, no mirror answers) and --data-dir is not given, a Fashion-MNIST that is here,
    said once."""
    if args.dataset is not None:
        return args.dataset
    if args.data_dir is not None:
        return "mnist"  # the folder given decides; its errors name it
    from ..dataset import DownloadError, fetch_files, find_local

    try:
        fetch_files("mnist")
    except DownloadError as err:
        # Offline (not a folder that cannot be written) and a Fashion-MNIST to fall back to.
        if err.absent is None or find_local("fashion-mnist") is None:
            raise
        note("MNIST is not on this machine but Fashion-MNIST is: using it, as MNIST could not "
             "be downloaded (no network?); pass --dataset mnist or --dataset fashion-mnist "
             "to choose")
        return "fashion-mnist"
    return "mnist"


def note(message: str) -> None:
    """One line on stderr."""
    print(f"xpnet: {message}", file=sys.stderr, flush=True)


def error_line(err: UserError, args: argparse.Namespace | None = None) -> str:
    """A user error's one line, in the command line's words (flags, not arguments).

    ``args``: the command's parsed arguments, when known: a missing CUDA then names the
    way to the CPU where the device came from (--device cpu for the flag, else
    XPNET_DEVICE=cpu).
    """
    if isinstance(err, WrongDatasetError):
        return (f"the files in {err.directory} are {SPECS[err.found].title}, not "
                f"{SPECS[err.expected].title}: pass --dataset {err.found} to use them")
    if getattr(err, "cpu_choice", None) and getattr(args, "device", None) is not None:
        from ..backend import cuda_missing_sentence

        return one_line(cuda_missing_sentence(err, "--device cpu"))
    return one_line(err.message(CLI_WORDS)) or type(err).__name__


def add_layer_args(p: argparse.ArgumentParser) -> None:
    """The settings of a net's layers, as ``xpnet train`` and ``xpnet gradcheck`` take them;
    unset ones (None) take RunConfig's defaults for the net."""
    p.add_argument("--hidden", type=hidden_sizes, default=None, metavar="SIZES",
                   help=f"{HIDDEN_HELP} (default: {NET_DEFAULT_HELP['hidden']})")
    p.add_argument("--activation", choices=ACTIVATIONS, default=None,
                   help=f"multi-layer's activation (default: {NET_DEFAULT_HELP['activation']})")
    p.add_argument("--weight-init-std", type=weight_init, default=None, metavar="STD",
                   help="standard deviation of the initial weights: a number, or for "
                        "multi-layer he/relu (sqrt(2/n)) or xavier/sigmoid (sqrt(1/n)) of the n "
                        "inputs of a layer "
                        f"(default: {NET_DEFAULT_HELP['weight_init_std']})")
    p.add_argument("--weight-decay", type=non_negative_float, default=None, metavar="LAMBDA",
                   help="L2 weight decay: loss + 0.5*LAMBDA*sum(W**2) over the affine weights "
                        f"(default: {NET_DEFAULT_HELP['weight_decay']})")
