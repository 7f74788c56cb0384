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

from . import inputs, nets
from .errors import InputError
from .inputs import DATASETS, FLOAT_DTYPES, NETS
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
        for name, allowed in (("dataset", DATASETS), ("dtype", FLOAT_DTYPES)):
            inputs.choice(name, getattr(self, name), allowed)
        for name in ("hidden", "activation", "weight_init_std", "optimizer"):
            if getattr(self, name) is None:
                put(name, defaults[name])
        # What the net accepts, in nets' one table; a scale is recorded by one name (the
        # book takes two for each), so equal runs have equal trial keys.
        for name, value in nets.check_settings(
                self.net, hidden=self.hidden, activation=self.activation,
                weight_init_std=self.weight_init_std, weight_decay=self.weight_decay,
                optimizer=self.optimizer, grad=self.grad).items():
            put(name, value)
        if self.lr is None:
            put("lr", TWO_LAYER_LR if self.net == "two-layer" else DEFAULT_LR[self.optimizer])
        put("lr", inputs.positive_float("lr", self.lr))
        put("eval_samples", defaults["eval_samples"] if self.eval_samples is None
            else inputs.non_negative_int("eval_samples", self.eval_samples))
        if self.seed is not None:
            put("seed", inputs.seed("seed", self.seed))
        if self.cuda_graph not in (None, True, False):
            raise InputError(f"cuda_graph must be True, False or None, not {self.cuda_graph!r}")

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
