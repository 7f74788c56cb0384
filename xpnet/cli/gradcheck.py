"""``xpnet gradcheck``: the book's chapter-5 gradient check, numerical against backprop."""

from __future__ import annotations

import argparse
from typing import Any

from ..inputs import FLOAT_DTYPES
from .common import add_data_args, pick_dataset, positive_int, seed_int


def register(sub: Any) -> None:
    """Add ``gradcheck`` to the xpnet subcommands ``sub``."""
    g = sub.add_parser("gradcheck", help="compare numerical and backprop gradients (ch. 5)",
                       description="The book's gradient check: mean |numerical - backprop| "
                                   "per parameter on the first training samples, and a "
                                   "verdict (exit status 1 when they disagree).")
    add_data_args(g)
    g.add_argument("--seed", type=seed_int, default=None,
                   help="seed for the weights (default: random, printed)")
    g.add_argument("--dtype", choices=FLOAT_DTYPES, default="float64",
                   help="parameter and data dtype (default: float64)")
    g.add_argument("--samples", type=positive_int, default=3, help="samples (default: 3)")
    g.add_argument("--hidden", type=positive_int, default=50, help="hidden units (default: 50)")
    g.add_argument("--method", choices=("fused", "generic"), default="fused",
                   help="numerical gradient method (default: fused; generic is the book's loop)")
    g.set_defaults(func=cmd_gradcheck)


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import backend, inputs
    from ..dataset import load_dataset, normalized
    from ..two_layer_net import PARAM_NAMES, TwoLayerNet

    device = backend.parse_device(args.device)
    dataset = pick_dataset(args)
    data = load_dataset(dataset, data_dir=args.data_dir)
    seed = args.seed if args.seed is not None else inputs.random_seed()
    network = TwoLayerNet(data.x_train.shape[1], args.hidden, 10, seed=seed, dtype=args.dtype,
                          device=device)
    samples = min(args.samples, data.x_train.shape[0])
    x_batch = normalized(data.x_train[:samples])
    t_batch = data.t_train[:samples]
    grad_numerical = network.numerical_gradient(x_batch, t_batch, method=args.method)
    grad_backprop = network.gradient(x_batch, t_batch)
    cut = (f" (all there are: --samples {args.samples} is more than the {samples} training "
           "images)" if samples < args.samples else "")
    print(f"mean |numerical ({args.method}) - backprop| on {samples} samples{cut} of "
          f"{dataset}, {args.dtype}, device {device}, seed {seed}:")
    diffs = {}
    for key in PARAM_NAMES:
        diff = np.average(np.abs(backend.asnumpy(grad_backprop[key])
                                 - backend.asnumpy(grad_numerical[key])))
        diffs[key] = float(diff)
        print(key + ":" + str(diff))
    said = verdict(diffs)
    print(said)
    return 0 if said.startswith("OK") else 1


# The book's check gives about 1e-10 (W1) to 1e-7 (b2, where the 1e-7 inside the log of
# cross_entropy_error tells most); a wrong gradient is off by 1e-3 or more.
TOLERANCE = 1e-6


def verdict(diffs: dict[str, float]) -> str:
    """One line: OK, or which parameters' gradients disagree and by how much."""
    bad = {k: v for k, v in diffs.items() if not v < TOLERANCE}  # NaN is bad too
    if not bad:
        return (f"OK: every mean difference is below {TOLERANCE:g}: backprop agrees with the "
                "numerical gradient")
    return ("MISMATCH: " + ", ".join(f"{k} differs by {v:.3g}" for k, v in bad.items())
            + f" on average (above {TOLERANCE:g}): the two gradients disagree, so one of them "
              "is wrong for these parameters")
