"""A strict stand-in for CuPy 14, backed by NumPy: test support for xpnet, never shipped.

Enable it with ``PYTHONPATH=tests/standin NUMBA_ENABLE_CUDASIM=1``: then ``import cupy``
gives this package, and xpnet's ``--device cuda`` paths (its Numba kernels included, on
Numba's CUDA simulator) run on the CPU. It checks device discipline; it gives no GPU figure.

The machine it simulates: two devices (``cupy.cuda.runtime.getDeviceCount() == 2``) with no
peer access; streams; CUDA graph capture; CuPy's memory pool. Everything runs at once on
the host, in order, except work captured on a stream, which runs only when its graph is
launched (then on the very same buffers, so a replay equals eager execution bit for bit).

It refuses what real CuPy 14 refuses (messages and exception types taken from its source):

- implicit conversion to NumPy: ``np.asarray(a)``, ``np.array(a)``, ``plt.plot(a)``
  (``TypeError: Implicit conversion to a NumPy array is not allowed...``); NumPy arrays as
  arguments of CuPy kernels (``TypeError: Unsupported type <class 'numpy.ndarray'>``).
  NumPy functions on CuPy arrays dispatch to CuPy's function of the same name, as in
  CuPy (``np.sum(a)`` is a CuPy array; ``np.savez(f, a)`` runs ``cupy.savez``, which
  copies to the host);
- an array of another device than the current one in a kernel (``ValueError: The device
  where the array resides (1) is different from the current device (0). Peer access is
  unavailable between these devices.``);
- while the current stream captures: device-to-host and host-to-device copies
  (``RuntimeError: the current stream is capturing, so D2H transfers are disallowed``),
  synchronizing (``CUDARuntimeError: cudaErrorStreamCaptureUnsupported``, which voids the
  capture: ``end_capture`` then raises ``cudaErrorStreamCaptureInvalidated``), work on the
  legacy stream while a blocking stream captures (``cudaErrorStreamCaptureImplicit``),
  capture on the legacy stream;
- names real CuPy 14 lacks (``_names.json``, made by ``tests/standin/make_names.py`` from
  the real package). A name CuPy has that the stand-in lacks raises AttributeError
  saying so: add it here.

And two rules stricter than CuPy (``cupy_standin.StandinRuleError``), for graphs that are
safe to replay: nothing is allocated while a stream captures (CuPy's pool would hand the
block to other arrays once the capture drops it), and a graph whose buffers were freed
after the capture is not launched.

Counters (``import cupy_standin``, beside this package): ``cupy_standin.counters()`` is a
snapshot ``Counters`` (kernel_launches, graph_launches, graph_kernels, host_waits,
h2d_copies, h2d_bytes, d2h_copies, d2h_bytes, d2d_bytes, allocations, allocated_bytes,
foreign_allocations, foreign_bytes); ``cupy_standin.reset_counters()``;
``with cupy_standin.counting() as c:`` gives the counts of the block in ``c``.
What counts as a host wait: every ``get`` (so ``float``, ``int``, ``bool``, ``item``,
``tolist``, ``repr``, ``print``), ``synchronize`` of a device, stream or event, and the
count CuPy reads before a data-sized result (boolean-mask indexing, ``nonzero``,
``unique``, ``bincount``, ...).
"""

from __future__ import annotations

import json as _json
import os as _os
from pathlib import Path as _Path

from . import _standin, cuda, linalg, random  # noqa: F401 - CuPy's namespace
from ._core import ndarray  # noqa: F401
from ._routines import *  # noqa: F403 - the names listed in _routines.__all__
from ._routines import ufunc  # noqa: F401

_NAMES = _json.loads((_Path(__file__).parent / "_names.json").read_text())
__version__ = f"{_NAMES['cupy_version']}+standin"

_pool = cuda.MemoryPool()


def get_default_memory_pool() -> cuda.MemoryPool:
    return _pool


def __getattr__(name: str):
    if name in _NAMES["scopes"]["cupy"]:
        raise AttributeError(f"module 'cupy' has no attribute {name!r} (real CuPy has it; "
                             "the stand-in in tests/standin/cupy does not yet: add it there)")
    raise AttributeError(f"module 'cupy' has no attribute {name!r}")


if _os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    from ._numba_sim import install as _install

    _install()
    del _install

del annotations  # real CuPy's top level has no such name
