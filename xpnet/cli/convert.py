"""``xpnet convert-params``: the book's pickled parameters (``params.pkl``) as ``.npz``, once."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError


def register(sub: Any) -> None:
    """Add ``convert-params`` to the xpnet subcommands ``sub``."""
    c = sub.add_parser(
        "convert-params", help="turn the book's params.pkl into .npz (no code run)",
        description="Convert the book's pickled parameters (ch07/params.pkl, "
                    "ch08/deep_convnet_params.pkl) into the .npz that xpnet.common's "
                    "load_params reads. The pickle is read by an unpickler that admits "
                    "only a dict of NumPy arrays and constructs nothing else, so a hostile "
                    "file cannot run code.")
    c.add_argument("pickle", type=Path, metavar="BOOK.pkl", help="the book's parameter pickle")
    c.add_argument("--out", type=Path, default=None, metavar="X.npz",
                   help="where to write (default: BOOK.npz beside the pickle)")
    c.add_argument("--force", action="store_true", help="replace --out if it exists")
    c.set_defaults(func=cmd_convert_params)


def cmd_convert_params(args: argparse.Namespace) -> int:
    import numpy as np

    from ..common.params_file import convert_pickle

    target = args.out if args.out is not None else args.pickle.with_suffix(".npz")
    if target.suffix != ".npz":
        raise InputError(f"--out {target} must end in .npz (np.savez would add the suffix "
                         "and load_params would not find the file)")
    if target.exists() and not args.force:
        raise InputError(f"{target} exists: pass --force to replace it, or another --out")
    written = convert_pickle(args.pickle, target)
    with np.load(written, allow_pickle=False) as npz:
        shapes = ", ".join(f"{key} {tuple(npz[key].shape)}" for key in npz.files)
    print(f"wrote {written}: {shapes}")
    return 0
