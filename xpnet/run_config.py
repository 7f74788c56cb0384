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
from .inputs import DATASETS, FLOAT_DTYPES, GRAD_METHODS
from .trainer import History


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's numbers; the defaults are the book's."""

    dataset: str = "mnist"
    iters: int = 10000
    batch_size: int = 100
    lr: float = 0.1
    hidden: int = 50
    weight_init_std: float = 0.01
    grad: str = "backprop"
    dtype: str = "float64"
    seed: int | None = None  # None: drawn at the start of the run, and recorded
    device: str = "cpu"
    data_dir: str | None = None
    # One CUDA graph launch per step on CUDA (None: on there; ignored on the CPU). Not a
    # setting that changes numbers: a graph's replay is bit-identical to the eager step.
    cuda_graph: bool | None = None

    def __post_init__(self) -> None:
        for name in ("iters", "batch_size", "hidden"):
            object.__setattr__(self, name, inputs.positive_int(name, getattr(self, name)))
        for name in ("lr", "weight_init_std"):
            object.__setattr__(self, name, inputs.positive_float(name, getattr(self, name)))
        for name, allowed in (("dataset", DATASETS), ("grad", GRAD_METHODS),
                              ("dtype", FLOAT_DTYPES)):
            inputs.choice(name, getattr(self, name), allowed)
        if self.seed is not None:
            object.__setattr__(self, "seed", inputs.seed("seed", self.seed))
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
