"""The one input boundary: every public entry point checks and normalises its input here.

One rule each, for NumPy and CuPy alike:

- **labels**: integer class indices ``(B,)`` in ``0..C-1`` (whole-number floats such as
  labels read from a CSV are accepted), or one-hot ``(B, C)`` (each row one 1, the rest 0).
  Anything else (2.99, -1, 10, soft labels, a one-hot of the wrong width) is refused.
- **sizes**: positive Python or NumPy integers, never bools or floats.
- **seeds**: integers in ``0..2**63-1``; a seed not given is drawn by ``random_seed``.
- **samples**: ``x`` of shape ``(batch, features)``, at least one sample, numbers.
- **settings**: the choices of a run (``DATASETS``, ``FLOAT_DTYPES``, ``GRAD_METHODS``).

The command line builds its argparse types on these rules, so each is written once.

What leaves this module is the trusted internal form that ``xpnet.fused`` and the kernels
compute on without checking again: labels as a 1-D ``intp`` array on the data's device.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import numpy as np

from .backend import get_array_module
from .dataset.specs import SPECS
from .errors import InputError

__all__ = ["ACTIVATIONS", "DATASETS", "FLOAT_DTYPES", "GRAD_METHODS", "NETS", "OPTIMIZERS",
           "SCALE_NAMES", "WEIGHT_INITS", "InputError", "LabelCheck", "SEED_RANGE",
           "choice", "device_labels", "float_dtype", "labels", "non_negative_float",
           "non_negative_int",
           "positive_float", "positive_int", "random_seed", "samples", "seed", "weight_init"]

# The choices of a run's settings, named once for the API, the CLI and sweeps.
DATASETS = tuple(SPECS)  # "mnist", "fashion-mnist"
FLOAT_DTYPES = ("float64", "float32")  # float64 first: the book's
GRAD_METHODS = ("backprop", "numerical")
# The nets a run trains: chapter 4's TwoLayerNet, then the book's MultiLayerNet (ch. 6),
# SimpleConvNet (ch. 7) and DeepConvNet (ch. 8).
NETS = ("two-layer", "multi-layer", "simple-conv", "deep-conv")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")  # ch. 6
ACTIVATIONS = ("relu", "sigmoid")  # MultiLayerNet's choice
# weight_init_std's names, as the book spells them, and the one scale each is recorded as:
# He's (sqrt(2 / fan_in)) and Xavier's (sqrt(1 / fan_in)). The one table of these names.
SCALE_NAMES = {"relu": "he", "he": "he", "sigmoid": "xavier", "xavier": "xavier"}
WEIGHT_INITS = tuple(SCALE_NAMES)
SEED_RANGE = "0..2**63-1"  # what NumPy's generators and metrics.json take whole


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def seed(name: str, value: Any) -> int:
    """``value`` as an int if it is a seed: an integer in 0..2**63-1 (not a bool)."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or not 0 <= value < 2**63):
        raise InputError(f"{name} must be an integer in {SEED_RANGE}, got {value!r}")
    return int(value)


def random_seed() -> int:
    """A fresh seed for a run that was given none (recorded, so the run can be repeated)."""
    return secrets.randbelow(2**31)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer (not a bool or a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def non_negative_int(name: str, value: Any) -> int:
    """``value`` as an int if it is 0 or a positive integer (not a bool or a float)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value == 0:
        return 0
    try:
        return positive_int(name, value)
    except InputError:
        raise InputError(f"{name} must be 0 or a positive integer, got {value!r}") from None


def non_negative_float(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number >= 0 (a weight decay: 0 is none)."""
    if value == 0 and not isinstance(value, bool):
        return 0.0
    try:
        return positive_float(name, value)
    except InputError:
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}") from None


def weight_init(name: str, value: Any) -> float | str:
    """A weight scale: a positive number, or one of ``WEIGHT_INITS`` (lower case)."""
    if isinstance(value, str):
        if value.lower() in WEIGHT_INITS:
            return value.lower()
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"{name} must be a positive number or one of "
                             f"{', '.join(WEIGHT_INITS)}, got {value!r}") from None
    return positive_float(name, value)


def float_dtype(dtype: Any) -> np.dtype:
    """float32 or float64 as a NumPy dtype; anything else is refused."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def samples(x: Any, features: int, name: str = "x") -> Any:
    """``x`` if it is a batch ``(B, features)`` of numbers with ``B >= 1`` (any device)."""
    if x.ndim != 2 or x.shape[1] != features:
        raise InputError(
            f"{name} has shape {tuple(x.shape)} but the net expects (batch, {features}) "
            f"(input_size={features}); flatten images with load_mnist(flatten=True)")
    if x.shape[0] == 0:
        raise InputError(f"{name} has no samples (shape (0, ...)); pass at least one")
    if x.dtype.kind not in "biuf":
        raise InputError(f"{name} has dtype {x.dtype}: pass numbers")
    return x


def labels(t: Any, batch: int, classes: int, *, name: str = "t") -> Any:
    """Class indices ``(batch,)`` as ``intp`` from labels or one-hot, on ``t``'s device.

    Raises InputError naming the shape expected, or the first value that is not a class.
    On a GPU the values are checked there and read back once (one wait for the device).
    """
    converted, check = device_labels(t, batch, classes, name=name)
    check.verify(check.read())
    return converted


def device_labels(t: Any, batch: int, classes: int, *,
                  name: str = "t") -> tuple[Any, LabelCheck]:
    """``labels`` without waiting: the class indices and a ``LabelCheck`` not yet read.

    Shape and dtype are checked at once (host metadata). The values are judged on ``t``'s
    device; the caller reads the verdict later, with whatever else it reads from the
    device (``check.read()``, or its ``stats`` in the same transfer), and calls
    ``check.verify``. Until then the indices are clipped to ``0..classes-1`` on a GPU, so
    a kernel never reads outside a row.
    """
    xp = get_array_module(t)
    t = xp.asarray(t)
    if t.ndim == 2 and t.shape == (batch, classes):
        if t.dtype.kind not in "biuf":
            raise InputError(f"{name} has dtype {t.dtype}: one-hot labels must be numbers")
        ones = (t == 1).sum(axis=1)
        good = (ones == 1) & (ones + (t == 0).sum(axis=1) == t.shape[1])
        stats = xp.stack([xp.all(good).astype(np.float64), xp.zeros((), np.float64),
                          xp.zeros((), np.float64)])
        return t.argmax(axis=1).astype(np.intp, copy=False), LabelCheck(t, stats, classes, name)
    if t.ndim != 1 or t.shape[0] != batch:
        raise InputError(
            f"{name} has shape {tuple(t.shape)} but there are {batch} samples of {classes} "
            f"classes: pass labels of shape ({batch},) or one-hot of shape ({batch}, {classes})"
        )
    if t.dtype.kind not in "iuf":
        raise InputError(f"{name} has dtype {t.dtype}: labels must be integers in "
                         f"0..{classes - 1} (or one-hot of shape ({batch}, {classes}))")
    if not batch:
        return t.astype(np.intp, copy=False), LabelCheck(t, None, classes, name)
    whole = xp.all(t == xp.floor(t)) if t.dtype.kind == "f" else xp.ones((), bool)
    stats = xp.stack([v.astype(np.float64) for v in (whole, t.min(), t.max())])
    converted = t if xp is np else xp.clip(t, 0, classes - 1)
    return converted.astype(np.intp, copy=False), LabelCheck(t, stats, classes, name)


class LabelCheck:
    """The verdict on a label array, computed on its device: ``stats`` = (ok, min, max).

    ``ok`` is 1.0 when every value is whole (labels) or every row is one-hot; ``read``
    brings the three numbers to the host (one wait on a GPU), ``verify`` raises the
    InputError they call for.
    """

    def __init__(self, t: Any, stats: Any, classes: int, name: str) -> None:
        self.t, self.stats, self.classes, self.name = t, stats, classes, name

    def read(self) -> list[float]:
        return [1.0, 0.0, 0.0] if self.stats is None else self.stats.tolist()

    def verify(self, values: list[float], when: str = "") -> None:
        """Raise InputError if ``values`` (what ``read`` gives) show a label that is not a class."""
        ok, low, high = values
        t, name, classes = self.t, self.name, self.classes
        if t.ndim == 2:
            if not ok:
                xp = get_array_module(t)
                bad = ~(((t == 1).sum(axis=1) == 1) & ((t == 1) | (t == 0)).all(axis=1))
                row = int(xp.flatnonzero(bad)[0])
                raise InputError(f"{name} row {row} is not one-hot (one 1, the rest 0): pass "
                                 f"class indices, or one-hot rows{when}")
            return
        if not ok:  # False for NaN and inf too
            xp = get_array_module(t)
            bad = t[~(t == xp.floor(t))][0]
            raise InputError(f"{name} holds {float(bad)!r}, not a class index: labels must be "
                             f"whole numbers in 0..{classes - 1}{when}")
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise InputError(f"{name} holds label {bad:g}, outside 0..{classes - 1}{when}")
