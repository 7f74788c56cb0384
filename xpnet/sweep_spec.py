"""What a sweep runs: the value syntax of ``xpnet sweep``, the trial list, the trial key.

Every setting of a run (``RunConfig``) is given as one of:

- **values**, crossed into a grid: ``0.1``, a list ``0.01,0.1,1``, and for integer settings
  ranges ``0-4`` (0 to 4 inclusive) and ``50-200:50`` (step 50), mixed freely: ``0-2,10``;
- **a distribution**, drawn once per ``--trials`` draw (the book's random search, ch. 6.5):
  ``log:LOW:HIGH`` (log-uniform), ``uniform:LOW:HIGH``, ``int:LOW:HIGH`` (integers,
  inclusive). Integer settings round a log-uniform draw to the nearest integer.

The trials are every draw crossed with the grid. The same command (and ``--sweep-seed``)
gives the same trials, in the same order; a trial is known by ``trial_key``, a hash of
the settings that decide its numbers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import inputs
from .errors import InputError
from .inputs import FLOAT_DTYPES, GRAD_METHODS

# setting -> kind: "int" and "float" are numbers (> 0; seeds >= 0), a tuple is a choice
SETTINGS: dict[str, Any] = {
    "lr": "float",
    "hidden": "int",
    "seed": "int",
    "dtype": FLOAT_DTYPES,
    "iters": "int",
    "batch_size": "int",
    "weight_init_std": "float",
    "grad": GRAD_METHODS,
}
DISTRIBUTIONS = ("log", "uniform", "int")
NOT_IN_KEY = ("data_dir", "cuda_graph")  # RunConfig fields that do not change the numbers
HARD_LIMIT = 1_000_000  # trials, even with --yes: a longer list would not fit in memory


class SpecError(InputError):
    """A sweep's settings cannot be read; the message names the option and the fix."""


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Values:
    """A grid axis: the values in the order given (ranges kept lazy, so counting is free)."""

    parts: tuple[Any, ...]  # single values and ``range`` objects

    def __len__(self) -> int:
        return sum(len(p) if isinstance(p, range) else 1 for p in self.parts)

    def __iter__(self):
        for p in self.parts:
            yield from (p if isinstance(p, range) else (p,))


@dataclass(frozen=True)
class Distribution:
    """``kind`` (log, uniform, int) between ``low`` and ``high`` inclusive."""

    kind: str
    low: float
    high: float

    def draw(self, rng: np.random.Generator, integer: bool) -> int | float:
        if self.kind == "int":
            return int(rng.integers(int(self.low), int(self.high), endpoint=True))
        if self.kind == "log":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        # 6 significant digits: readable in the table and the folder, exact in the hash
        return int(round(value)) if integer else float(f"{value:.6g}")


def parse(name: str, text: str) -> Values | Distribution:
    """One option's text as grid values or a distribution; raises SpecError."""
    kind = SETTINGS[name]
    text = text.strip()
    if text.split(":", 1)[0] in DISTRIBUTIONS:
        return _distribution(name, kind, text)
    if not text:
        raise SpecError(f"{flag(name)} is empty; give a value, a list such as 1,2,3 or a range")
    parts = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise SpecError(f"{flag(name)} {text!r} has an empty item; separate values with "
                            "single commas")
        parts.append(_range(name, item) if kind == "int" and "-" in item
                     else _value(name, kind, item))
    return Values(tuple(parts))


def _value(name: str, kind: Any, item: str) -> Any:
    if isinstance(kind, tuple):
        if item not in kind:
            raise SpecError(f"{flag(name)}: {item!r} is not one of {', '.join(kind)}")
        return item
    try:
        value = int(item) if kind == "int" else float(item)
    except ValueError:
        example = "0-4 or 1,2,3" if kind == "int" else "0.01,0.1"
        what = "an integer" if kind == "int" else "a number"
        raise SpecError(f"{flag(name)}: {item!r} is not {what} (e.g. {example})") from None
    rule = (inputs.seed if name == "seed" else inputs.positive_int if kind == "int"
            else inputs.positive_float)
    try:
        return rule(name, value)
    except InputError:
        allowed = f"an integer in {inputs.SEED_RANGE}" if name == "seed" else "positive"
        raise SpecError(f"{flag(name)}: {item} is out of range (it must be {allowed})") from None


def _range(name: str, item: str) -> range:
    bounds, _, step_text = item.partition(":")
    low_text, _, high_text = bounds.partition("-")
    low, high = _value(name, "int", low_text), _value(name, "int", high_text)
    step = _value(name, "int", step_text) if step_text else 1
    if step < 1 or low > high:
        raise SpecError(f"{flag(name)}: the range {item!r} is empty; write LOW-HIGH or "
                        "LOW-HIGH:STEP with LOW <= HIGH and STEP >= 1 (e.g. 0-4)")
    return range(low, high + 1, step)


def _distribution(name: str, kind: Any, text: str) -> Distribution:
    example = f"{flag(name)} {'int:20:500' if kind == 'int' else 'log:1e-4:1'}"
    fields = text.split(":")
    if isinstance(kind, tuple):
        raise SpecError(f"{flag(name)} takes values ({','.join(kind)}), not a distribution")
    if len(fields) != 3:
        raise SpecError(f"{flag(name)}: {text!r} is not a distribution; write "
                        f"KIND:LOW:HIGH with KIND one of {', '.join(DISTRIBUTIONS)} "
                        f"(e.g. {example})")
    dist, low_text, high_text = fields
    if dist == "int" and kind != "int":
        raise SpecError(f"{flag(name)} is a real number: use log:LOW:HIGH or uniform:LOW:HIGH")
    number = "int" if dist == "int" else kind
    try:
        low, high = _value(name, number, low_text), _value(name, number, high_text)
    except SpecError:
        what = "integers" if number == "int" else "numbers"
        raise SpecError(f"{flag(name)}: in {text!r} LOW and HIGH must be positive {what} "
                        f"(e.g. {example})") from None
    if low >= high or (dist == "log" and low <= 0):
        raise SpecError(f"{flag(name)}: in {text!r} LOW must be below HIGH"
                        f"{' and above 0' if dist == 'log' else ''} (e.g. {example})")
    return Distribution(dist, low, high)


def count(axes: Mapping[str, Values], draws: int) -> int:
    """How many trials ``trials`` will make (before duplicates are dropped)."""
    return math.prod(len(v) for v in axes.values()) * draws


def trials(base: Mapping[str, Any], options: Mapping[str, Values | Distribution],
           draws: int | None, sweep_seed: int) -> list[Any]:
    """The trials as ``RunConfig``s: every draw crossed with the grid, duplicates dropped.

    ``base``: the settings not swept (dataset, device, data_dir). ``draws``: ``--trials``
    (None: a plain grid; distributions then are an error). Without a seed setting every
    trial gets one seed drawn from ``sweep_seed``, so trials differ only in what is swept.
    Raises SpecError, or InputError for a setting RunConfig refuses.
    """
    from .run_config import RunConfig

    axes = {k: v for k, v in options.items() if isinstance(v, Values)}
    dists = {k: v for k, v in options.items() if isinstance(v, Distribution)}
    if dists and draws is None:
        name = next(iter(dists))
        raise SpecError(f"{flag(name)} is a distribution: random search needs --trials N "
                        "(how many draws)")
    if draws is not None and not dists:
        raise SpecError("--trials N draws from distributions such as --lr log:1e-4:1, "
                        "and none was given")
    if "seed" not in options:
        axes["seed"] = Values((default_seed(sweep_seed),))
    rng = np.random.default_rng(sweep_seed)
    drawn = [{k: d.draw(rng, SETTINGS[k] == "int") for k, d in dists.items()}
             for _ in range(draws or 1)]
    names = list(axes)
    configs, seen = [], set()
    for settings in drawn:
        for values in itertools.product(*(axes[k] for k in names)):
            config = RunConfig(**base, **settings, **dict(zip(names, values, strict=True)))
            key = trial_key(config)
            if key not in seen:
                seen.add(key)
                configs.append(config)
    return configs


def default_seed(sweep_seed: int) -> int:
    """The one seed of every trial of a sweep that does not sweep seeds."""
    return int(np.random.SeedSequence(sweep_seed).generate_state(1)[0] >> 1)


def trial_key(config: Any, data: str | None = None) -> str:
    """12 hex digits of SHA-256 over the settings that decide a trial's numbers.

    ``data``: the content identity of the data set it trains on (``run.provenance``'s
    ``identity``); the same settings on other data are another trial. Left out: where
    the data was read from (``data_dir``: the same data read from another folder is the
    same trial) and how the steps are launched (``cuda_graph``: the same numbers).
    """
    settings = {k: v for k, v in config.to_dict().items() if k not in NOT_IN_KEY}
    if data is not None:
        settings["data"] = data
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def swept_of(configs: Iterable[Any]) -> list[str]:
    """The settings that differ between trials, in SETTINGS order."""
    configs = list(configs)
    return [k for k in SETTINGS
            if len({getattr(c, k) for c in configs}) > 1]
