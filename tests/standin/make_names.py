"""Dump the names real CuPy has, for the stand-in's name check (tests/standin/cupy/_names.json).

Run with an interpreter that has real CuPy (it imports without a GPU), never the project's:
    python3 -m venv /tmp/cupyenv && /tmp/cupyenv/bin/pip install cupy-cuda13x numpy
    /tmp/cupyenv/bin/python tests/standin/make_names.py > tests/standin/cupy/_names.json
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

# The scopes the stand-in implements a part of: modules and classes, by dotted path.
SCOPES = (
    "cupy",
    "cupy.ndarray",
    "cupy.ufunc",
    "cupy.cuda",
    "cupy.cuda.runtime",
    "cupy.cuda.runtime.CUDARuntimeError",
    "cupy.cuda.Device",
    "cupy.cuda.Stream",
    "cupy.cuda.ExternalStream",
    "cupy.cuda.Event",
    "cupy.cuda.Graph",
    "cupy.cuda.MemoryPool",
    "cupy.cuda.MemoryPointer",
    "cupy.random",
    "cupy.random.Generator",
    "cupy.linalg",
)


def names() -> dict[str, object]:
    # this script's folder holds the stand-in: import the real package, never that one
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    import cupy
    import numpy

    if "standin" in cupy.__version__:
        raise SystemExit(f"{cupy.__file__} is the stand-in: run this with real CuPy")

    def resolve(path: str) -> object:
        return functools.reduce(getattr, path.split(".")[1:], cupy)

    return {
        "cupy_version": cupy.__version__,
        "numpy_version": numpy.__version__,
        "scopes": {path: sorted(dir(resolve(path))) for path in SCOPES},
    }


def main() -> None:
    json.dump(names(), sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
