"""What a sweep runs: the value syntax of ``xpnet sweep``, the trial list, the trial key.

Every setting of a run (``RunConfig``) is given as one of:

- **values**, crossed into a grid: ``0.1``, a list ``0.01,0.1,1``, and for integer settings
  ranges ``0-4`` (0 to 4 inclusive) and ``50-200:50`` (step 50), mixed freely: ``0-2,10``;
- **hidden layers** (``--hidden``): a comma separates the values to try, as for every
  setting (``50,100``: two nets of one layer), so one value names all of a net's hidden
  layers, spelled as in ``xpnet train``: ``100x4`` is four layers of 100 (SIZExCOUNT),
  layers are joined with ``+`` (``100x2+50``), and a range takes a count too
  (``50-200:50x4``: four layers of each width). A list that repeats a size
  (``100,100,100``) is refused: trying a value twice gives nothing, so it meant layers,
  which are written ``100x3``;
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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import inputs
from .errors import InputError
from .inputs import (
    ACTIVATIONS,
    FLOAT_DTYPES,
    GRAD_METHODS,
    NETS,
    OPTIMIZERS,
    WEIGHT_INITS,
)

# setting -> kind: "int" and "float" are numbers (> 0; seeds and NON_NEGATIVE's >= 0),
# "layers" hidden sizes (an int, or a tuple of them), "init" a weight scale (a number or
# one of WEIGHT_INITS), a tuple is a choice. The order is the table's and the draws'.
SETTINGS: dict[str, Any] = {
    "net": NETS,
    "optimizer": OPTIMIZERS,
    "lr": "float",
    "weight_decay": "float",
    "hidden": "layers",
    "activation": ACTIVATIONS,
    "seed": "int",
    "dtype": FLOAT_DTYPES,
    "iters": "int",
    "batch_size": "int",
    "weight_init_std": "init",
    "grad": GRAD_METHODS,
    # last, so that adding it kept the draws of every older sweep command
    "eval_samples": "int",
}
# settings whose 0 is a value (none, or every image), checked by these rules
NON_NEGATIVE = {"weight_decay": inputs.non_negative_float,
                "eval_samples": inputs.non_negative_int}
INTEGER = ("int", "layers")  # kinds whose values and draws are integers
MAX_LAYERS = 1000  # hidden layers of one net: a typo such as 100x1000000 is refused
DISTRIBUTIONS = ("log", "uniform", "int")
NOT_IN_KEY = ("data_dir", "cuda_graph")  # RunConfig fields that do not change the numbers
MAX_TRIALS = 10_000  # more needs --yes
HARD_LIMIT = 1_000_000  # trials, even with --yes: a longer list would not fit in memory
# Where a sweep finds its Dask scheduler when --scheduler is not given. Here, not in
# xpnet.sweep, so that ``xpnet --help`` names them without importing Dask and Matplotlib.
SCHEDULER_ENV = "XPNET_SCHEDULER"


class SpecError(InputError):
    """A sweep's settings cannot be read; the message names the option and the fix."""


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Stacked:
    """Nets of ``count`` hidden layers of each width in ``widths`` (``50-200:50x4``)."""

    widths: range
    count: int

    def __len__(self) -> int:
        return len(self.widths)

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        return ((w,) * self.count for w in self.widths)


@dataclass(frozen=True)
class Values:
    """A grid axis: the values in the order given (ranges kept lazy, so counting is free)."""

    parts: tuple[Any, ...]  # single values, ``range`` and ``Stacked`` objects

    def __len__(self) -> int:
        return sum(len(p) if isinstance(p, (range, Stacked)) else 1 for p in self.parts)

    def __iter__(self):
        for p in self.parts:
            yield from (p if isinstance(p, (range, Stacked)) else (p,))


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


def layers(name: str, text: str) -> int | tuple[int, ...]:
    """One net's hidden sizes: ``SIZE`` or ``SIZExCOUNT``, parts joined by ``+``.

    One plain size is an int (any net takes it); anything else is a tuple of sizes, one
    per layer: ``100x2+50`` is (100, 100, 50). Every command spells a net's layers so.
    Raises SpecError naming ``name``'s flag.
    """
    parts = text.split("+")
    sizes: list[int] = []
    for part in parts:
        size_text, times, count_text = part.strip().partition("x")
        if not size_text or (times and not count_text):
            raise SpecError(f"{flag(name)}: {text!r} is not layer sizes; write SIZE, "
                            "SIZExCOUNT (100x4: four layers of 100) or sizes joined by + "
                            "(100+50)")
        size = _value(name, "int", size_text)
        count = _value(name, "int", count_text) if times else 1
        if len(sizes) + count > MAX_LAYERS:
            raise SpecError(f"{flag(name)}: {text!r} makes more than {MAX_LAYERS} hidden "
                            "layers; give fewer")
        sizes += [size] * count
    return sizes[0] if len(parts) == 1 and "x" not in text else tuple(sizes)


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
        if kind == "layers":
            parts.append(_layer_item(name, item))
        else:
            parts.append(_range(name, item) if kind == "int" and "-" in item
                         else _value(name, kind, item))
    if kind == "layers":
        _refuse_repeated_sizes(name, text, parts)
    return Values(tuple(parts))


def _layer_item(name: str, item: str) -> Any:
    """One grid value of hidden sizes: ``layers``' forms, or a range with a count."""
    if "-" not in item:
        return layers(name, item)
    if "+" in item:
        raise SpecError(f"{flag(name)}: {item!r} joins a range to other layers; a range "
                        "takes one count (50-200:50x4), or list the nets: 50x4,100x4")
    widths_text, times, count_text = item.partition("x")
    widths = _range(name, widths_text)
    if not times:
        return widths
    count = _value(name, "int", count_text)
    if count > MAX_LAYERS:
        raise SpecError(f"{flag(name)}: {item!r} makes more than {MAX_LAYERS} hidden layers; "
                        "give fewer")
    return Stacked(widths, count)


def _refuse_repeated_sizes(name: str, text: str, parts: list[Any]) -> None:
    """A list repeating a plain size (``100,100,100``) meant layers: say how to write them.

    Trying one value twice gives nothing (the trials are deduplicated), so the only
    reading that means something is a net's layers in a comma spelling (the book's
    ``[100, 100, 100]``, an older xpnet train): refused, or it would silently run one
    single-layer net."""
    plain = [p for p in parts if isinstance(p, int)]
    repeated = next((p for p in plain if plain.count(p) > 1), None)
    if repeated is not None:
        n = plain.count(repeated)
        raise SpecError(f"{flag(name)} {text}: a comma separates the values to try, so "
                        f"{repeated} would be tried {n} times; for one net of {n} layers of "
                        f"{repeated} write {repeated}x{n} (sizes that differ join with +: "
                        "100+50)")


def _value(name: str, kind: Any, item: str) -> Any:
    if isinstance(kind, tuple):
        if item not in kind:
            raise SpecError(f"{flag(name)}: {item!r} is not one of {', '.join(kind)}")
        return item
    if kind == "init" and item.lower() in WEIGHT_INITS:
        return item.lower()
    try:
        value = int(item) if kind == "int" else float(item)
    except ValueError:
        example = "0-4 or 1,2,3" if kind == "int" else "0.01,0.1"
        what = "an integer" if kind == "int" else "a number"
        if kind == "init":
            what, example = f"a number or one of {', '.join(WEIGHT_INITS)}", "0.01,he"
        raise SpecError(f"{flag(name)}: {item!r} is not {what} (e.g. {example})") from None
    rule = (inputs.seed if name == "seed" else NON_NEGATIVE.get(name) or (
        inputs.positive_int if kind == "int" else inputs.positive_float))
    try:
        return rule(name, value)
    except InputError:
        raise _out_of_range(name, item) from None


def _out_of_range(name: str, item: str) -> SpecError:
    allowed = (f"an integer in {inputs.SEED_RANGE}" if name == "seed"
               else ">= 0" if name in NON_NEGATIVE else "positive")
    return SpecError(f"{flag(name)}: {item} is out of range (it must be {allowed})")


def _range(name: str, item: str) -> range:
    bounds, _, step_text = item.partition(":")
    low_text, _, high_text = bounds.partition("-")
    if not low_text.strip() and high_text.strip().isdigit():  # -5 reads as a range
        raise _out_of_range(name, item)
    low, high = _value(name, "int", low_text), _value(name, "int", high_text)
    step = _value(name, "int", step_text) if step_text else 1
    if step < 1 or low > high:
        raise SpecError(f"{flag(name)}: the range {item!r} is empty; write LOW-HIGH or "
                        "LOW-HIGH:STEP with LOW <= HIGH and STEP >= 1 (e.g. 0-4)")
    return range(low, high + 1, step)


def _distribution(name: str, kind: Any, text: str) -> Distribution:
    integer = kind in INTEGER
    example = f"{flag(name)} {'int:20:500' if integer else 'log:1e-4:1'}"
    fields = text.split(":")
    if isinstance(kind, tuple):
        raise SpecError(f"{flag(name)} takes values ({','.join(kind)}), not a distribution")
    if len(fields) != 3:
        raise SpecError(f"{flag(name)}: {text!r} is not a distribution; write "
                        f"KIND:LOW:HIGH with KIND one of {', '.join(DISTRIBUTIONS)} "
                        f"(e.g. {example})")
    dist, low_text, high_text = fields
    if dist == "int" and not integer:
        raise SpecError(f"{flag(name)} is a real number: use log:LOW:HIGH or uniform:LOW:HIGH")
    number = "int" if dist == "int" or integer else "float"
    try:
        low, high = _value(name, number, low_text), _value(name, number, high_text)
    except SpecError:
        what = "integers" if number == "int" else "numbers"
        what = f"{what} >= 0" if name in NON_NEGATIVE else f"positive {what}"
        raise SpecError(f"{flag(name)}: in {text!r} LOW and HIGH must be {what} "
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
    drawn = [{k: d.draw(rng, SETTINGS[k] in INTEGER) for k, d in dists.items()}
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


def show(value: Any) -> str:
    """A setting's value as a sweep writes it: ``0.001``, ``he``, ``100x2+50``."""
    if isinstance(value, tuple):
        runs = [list(g) for _, g in itertools.groupby(value)]
        return "+".join(f"{g[0]}x{len(g)}" if len(g) > 1 else str(g[0]) for g in runs)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def swept_of(configs: Iterable[Any]) -> list[str]:
    """The settings that differ between trials, in SETTINGS order."""
    configs = list(configs)
    return [k for k in SETTINGS
            if len({getattr(c, k) for c in configs}) > 1]
