"""``xpnet gradcheck``: the book's gradient check (ch. 5, and ch. 6's MultiLayerNet),
numerical against backprop."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InputError
from ..inputs import FLOAT_DTYPES, NETS
from .common import (
    add_data_args,
    add_layer_args,
    pick_dataset,
    positive_int,
    seed_int,
)


def register(sub: Any) -> None:
    """Add ``gradcheck`` to the xpnet subcommands ``sub``."""
    g = sub.add_parser("gradcheck", help="compare numerical and backprop gradients (ch. 5)",
                       description="The book's gradient check: mean |numerical - backprop| "
                                   "per parameter on the first training samples, and a "
                                   "verdict (exit status 1 when they disagree). The net's "
                                   "settings and their defaults are xpnet train's.",
                       epilog="example: xpnet gradcheck --net multi-layer --hidden 100x2 "
                              "--activation sigmoid --weight-decay 0.1")
    add_data_args(g)
    g.add_argument("--net", choices=NETS, default=None,
                   help="two-layer (ch. 4's TwoLayerNet) or multi-layer (ch. 6's "
                        "MultiLayerNet) (default: two-layer); the conv nets have no fast "
                        "numerical gradient")
    g.add_argument("--seed", type=seed_int, default=None,
                   help="seed for the weights (default: random, printed)")
    g.add_argument("--dtype", choices=FLOAT_DTYPES, default=None,
                   help="parameter and data dtype (default: float64)")
    g.add_argument("--samples", type=positive_int, default=3, help="samples (default: 3)")
    add_layer_args(g)
    g.add_argument("--method", choices=("fused", "generic"), default="fused",
                   help="numerical gradient method (default: fused; generic is the book's loop)")
    g.set_defaults(func=cmd_gradcheck)


# What of gradcheck's flags is a setting of the net (RunConfig's names, train's flags).
NET_SETTINGS = ("net", "seed", "dtype", "hidden", "activation", "weight_init_std",
                "weight_decay")


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import backend, inputs
    from ..dataset import load_dataset, normalized
    from ..nets import RULES
    from ..run_config import RunConfig
    from ..run_folder import build_net

    # a net whose numerical gradient is the book's loop alone: two forward passes per
    # parameter, hundreds of thousands of them, hours on a CPU
    if args.net is not None and not RULES[args.net].numerical:
        raise InputError(f"gradcheck is for the two-layer and multi-layer nets: {args.net}'s "
                         "numerical gradient is the book's loop over every parameter, hundreds "
                         "of thousands of forward passes; check it on a small net through the "
                         "API's numerical_gradient instead (xpnet.common)")
    device = backend.parse_device(args.device)
    # train's rules and defaults for the net, before any data is read
    given = {k: getattr(args, k) for k in NET_SETTINGS if getattr(args, k) is not None}
    given.setdefault("seed", inputs.random_seed())
    config = RunConfig(device=str(device), **given)
    dataset = pick_dataset(args)
    data = load_dataset(dataset, data_dir=args.data_dir)
    network = build_net(config, device, features=data.x_train.shape[1])
    samples = min(args.samples, data.x_train.shape[0])
    x_batch = normalized(data.x_train[:samples])
    t_batch = data.t_train[:samples]
    grad_numerical = network.numerical_gradient(x_batch, t_batch, method=args.method)
    grad_backprop = network.gradient(x_batch, t_batch)
    cut = (f" (all there are: --samples {args.samples} is more than the {samples} training "
           "images)" if samples < args.samples else "")
    print(f"mean |numerical ({args.method}) - backprop| of {network.describe()} on {samples} "
          f"samples{cut} of {dataset}, {config.dtype}, device {device}, seed {config.seed}:")
    diffs = {}
    for key in network.param_names:
        diff = np.average(np.abs(backend.asnumpy(grad_backprop[key])
                                 - backend.asnumpy(grad_numerical[key])))
        diffs[key] = float(diff)
        print(key + ":" + str(diff))
    counted = None
    if not all(v < TOLERANCE for v in diffs.values()):
        books = network.books_loss_gradient(x_batch, t_batch)
        counted = {key: float(np.average(np.abs(books[key] - backend.asnumpy(
            grad_numerical[key])))) for key in network.param_names}
    said = verdict(diffs, kinks=config.net == "multi-layer" and config.activation == "relu",
                   delta_counted=counted)
    print(said)
    return 0 if said.startswith("OK") else 1


# The book's check gives about 1e-10 (W1) to 1e-7 (b2, where the 1e-7 inside the log of
# cross_entropy_error tells most); a wrong gradient is off by 1e-3 or more.
TOLERANCE = 1e-6


def verdict(diffs: dict[str, float], *, kinks: bool = False,
            delta_counted: dict[str, float] | None = None) -> str:
    """One line: OK, or which parameters' gradients disagree and by how much.

    ``kinks``: the net has ReLUs, whose kink at 0 the central difference straddles when
    a unit's input lies within the step of it: the numbers then differ with both right.
    ``delta_counted``: the mean differences from backprop of the book's loss with its
    1e-7 (the net's ``books_loss_gradient``); all below the tolerance, the 1e-7 was all.
    """
    bad = {k: v for k, v in diffs.items() if not v < TOLERANCE}  # NaN is bad too
    if not bad:
        return (f"OK: every mean difference is below {TOLERANCE:g}: backprop agrees with the "
                "numerical gradient")
    if delta_counted is not None and all(v < TOLERANCE for v in delta_counted.values()):
        return (f"OK: backprop agrees with the numerical gradient: the differences above "
                f"{TOLERANCE:g} ({', '.join(bad)}) are the book's 1e-7 in log(y + 1e-7), which "
                "backprop's (y - t) / B leaves out; with it counted, the largest is "
                f"{max(delta_counted.values()):.2g}")
    return ("MISMATCH: " + ", ".join(f"{k} differs by {v:.3g}" for k, v in bad.items())
            + f" on average (above {TOLERANCE:g}): the two gradients disagree, so one of them "
              "is wrong for these parameters" + (
                  "; or, with ReLU, a unit's input lies within the numerical step (1e-4) of "
                  "its kink at 0, where a central difference is no derivative: if another "
                  "--seed agrees, that was it" if kinks else ""))
