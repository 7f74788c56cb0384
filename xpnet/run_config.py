"""What a run is asked to do (``RunConfig``) and what it gave back (``RunResult``).

Plain values, below everything that reads or writes run folders, so the folder's module,
``run`` and sweeps all speak of runs in the same two types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import inputs
from .errors import InputError
from .inputs import ACTIVATIONS, DATASETS, FLOAT_DTYPES, GRAD_METHODS, NETS, OPTIMIZERS
from .trainer import History

# What each net takes when a setting is not given: the book's values for it. Chapter 4's
# loop for the TwoLayerNet (lr 0.1); ch. 6's MultiLayerNet as optimizer_compare_mnist.py
# builds it; ch. 7's and 8's convolutional nets as their training scripts (Adam).
NET_DEFAULTS: dict[str, dict[str, Any]] = {
    "two-layer": {"hidden": 50, "activation": "sigmoid", "weight_init_std": 0.01,
                  "optimizer": "sgd", "eval_samples": 0},
    "multi-layer": {"hidden": (100, 100, 100, 100), "activation": "relu",
                    "weight_init_std": "he", "optimizer": "sgd", "eval_samples": 0},
    "simple-conv": {"hidden": 100, "activation": "relu", "weight_init_std": 0.01,
                    "optimizer": "adam", "eval_samples": 1000},
    "deep-conv": {"hidden": 50, "activation": "relu", "weight_init_std": "he",
                  "optimizer": "adam", "eval_samples": 1000},
}
# The book's optimizers' default learning rates (common/optimizer.py); chapter 4's SGD
# loop for the TwoLayerNet uses 0.1.
DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01,
              "rmsprop": 0.01, "adam": 0.001}
TWO_LAYER_LR = 0.1
# The book's names of a weight scale and the one each is recorded as: He's, Xavier's.
SCALE_NAMES = {"relu": "he", "he": "he", "sigmoid": "xavier", "xavier": "xavier"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's numbers; the defaults are the book's.

    A setting left None is the book's value for ``net`` (``NET_DEFAULTS``, ``DEFAULT_LR``)
    and is recorded resolved, so a config always says what ran. ``hidden`` is one size,
    or for ``multi-layer`` a tuple of sizes, one per hidden layer. ``activation``,
    ``weight_decay`` and a choice of ``optimizer`` are for the nets that have them: a
    setting a net does not have is an InputError, never silently ignored.
    """

    dataset: str = "mnist"
    iters: int = 10000
    batch_size: int = 100
    lr: float | None = None
    hidden: int | tuple[int, ...] | None = None
    weight_init_std: float | str | None = None
    grad: str = "backprop"
    dtype: str = "float64"
    seed: int | None = None  # None: drawn at the start of the run, and recorded
    device: str = "cpu"
    data_dir: str | None = None
    # One CUDA graph launch per step on CUDA (None: on there; ignored on the CPU). Not a
    # setting that changes numbers: a graph's replay is bit-identical to the eager step.
    cuda_graph: bool | None = None
    net: str = "two-layer"
    activation: str | None = None
    weight_decay: float = 0.0
    optimizer: str | None = None
    # Images of each set an evaluation scores (the first ones; None: the net's default:
    # every image, as chapter 4's loop, or 1000 for the conv nets, as the book's Trainer
    # in train_convnet.py and train_deepnet.py: 70000 images through a conv net take
    # minutes on a CPU). 0: every image. The final test accuracy is always the whole set's.
    eval_samples: int | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        inputs.choice("net", self.net, NETS)
        defaults = NET_DEFAULTS[self.net]
        for name in ("iters", "batch_size"):
            put(name, inputs.positive_int(name, getattr(self, name)))
        for name, allowed in (("dataset", DATASETS), ("grad", GRAD_METHODS),
                              ("dtype", FLOAT_DTYPES)):
            inputs.choice(name, getattr(self, name), allowed)
        put("hidden", _hidden(self.net, defaults["hidden"] if self.hidden is None
                              else self.hidden))
        for name, allowed in (("activation", ACTIVATIONS), ("optimizer", OPTIMIZERS)):
            value = getattr(self, name)
            if value is None:
                put(name, defaults[name])
            else:
                inputs.choice(name, value, allowed)
        put("weight_init_std", inputs.weight_init(
            "weight_init_std", defaults["weight_init_std"] if self.weight_init_std is None
            else self.weight_init_std))
        # one spelling per scale (the book takes both), so equal runs have equal trial keys
        put("weight_init_std", SCALE_NAMES.get(self.weight_init_std, self.weight_init_std))
        put("weight_decay", inputs.non_negative_float("weight_decay", self.weight_decay))
        if self.lr is None:
            put("lr", TWO_LAYER_LR if self.net == "two-layer" else DEFAULT_LR[self.optimizer])
        put("lr", inputs.positive_float("lr", self.lr))
        if self.eval_samples is None:
            put("eval_samples", defaults["eval_samples"])
        elif not (type(self.eval_samples) is int and self.eval_samples == 0):
            put("eval_samples", inputs.positive_int("eval_samples", self.eval_samples))
        if self.seed is not None:
            put("seed", inputs.seed("seed", self.seed))
        if self.cuda_graph not in (None, True, False):
            raise InputError(f"cuda_graph must be True, False or None, not {self.cuda_graph!r}")
        self._refuse_what_the_net_lacks(defaults)

    def _refuse_what_the_net_lacks(self, defaults: Mapping[str, Any]) -> None:
        net = self.net
        if net != "multi-layer":
            if self.activation != defaults["activation"]:
                raise InputError(f"activation {self.activation} is for --net multi-layer; "
                                 f"the {net} net's is {defaults['activation']}")
            if self.weight_decay:
                raise InputError(f"weight_decay is for --net multi-layer, not {net}")
        if net == "two-layer" and self.optimizer != "sgd":
            raise InputError(f"optimizer {self.optimizer} is for the nets of chapters 6 to 8; "
                             "the two-layer net trains by chapter 4's SGD: pass --net "
                             "multi-layer --hidden 50 for that net with another optimizer")
        if net in ("two-layer", "simple-conv") and isinstance(self.weight_init_std, str):
            raise InputError(f"weight_init_std {self.weight_init_std} is a scale by name, for "
                             f"--net multi-layer; the {net} net takes a number (the book's "
                             f"{defaults['weight_init_std']})")
        if net == "deep-conv" and self.weight_init_std != "he":
            raise InputError(f"weight_init_std {self.weight_init_std} cannot be set for "
                             "deep-conv: the book fixes He's scale for it")
        if self.grad == "numerical" and net not in ("two-layer", "multi-layer"):
            raise InputError(f"grad numerical is for the two-layer and multi-layer nets; "
                             f"use backprop for {net}")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """A config from ``to_dict``'s output; unknown keys are an InputError."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"unknown run settings: {', '.join(sorted(unknown))}")
        return cls(**values)


def _hidden(net: str, value: Any) -> int | tuple[int, ...]:
    """``hidden`` as the net takes it: a tuple of sizes for multi-layer, else one size."""
    sizes = list(value) if isinstance(value, (list, tuple)) else [value]
    sizes = [inputs.positive_int("hidden", v) for v in sizes]
    if net == "multi-layer":
        if not sizes:
            raise InputError("hidden must name at least one hidden layer's size")
        return tuple(sizes)
    if len(sizes) != 1:
        raise InputError(f"hidden takes one size for the {net} net, got {list(value)!r}; "
                         "a list of sizes is for --net multi-layer")
    return sizes[0]


@dataclass
class RunResult:
    """What a run produced. ``status``: finished, interrupted or failed."""

    config: RunConfig  # with the seed actually used
    history: History
    status: str
    final_train_acc: float | None
    final_test_acc: float | None
    params: dict[str, np.ndarray]
    wall_time_s: float
    record: Any = None  # a run_folder.RunRecord: when, where and on what it ran
    out: Path | None = None
    # a finished run that learned nothing says so: "learned nothing: ..."; else None
    verdict: str | None = None

    @property
    def best_test_acc(self) -> float | None:
        """The best test accuracy of any evaluation, the final one included."""
        accs = [*self.history.test_acc_list, *([self.final_test_acc] * (
            self.final_test_acc is not None))]
        return max(accs) if accs else None
