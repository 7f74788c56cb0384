"""Fast kernels for the book's chapter-4 network: NumPy arrays in, NumPy arrays out.

CPU (Numba) functions are exported here. The CUDA versions of the chapter-4 kernels live in
``xpnet.kernels.cuda`` with the same calls (plus ``stream=``) and take device arrays
(anything with ``__cuda_array_interface__``); ``mlp_numerical_gradient_cuda`` is exported
here too (it imports numba.cuda only when called); importing this package never touches
CUDA.

An inner layer: the functions trust their arguments (shapes, dtypes, label range are
stated in their docstrings); xpnet's public entry points check and normalise them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def fallback_cache_dir(candidates: Sequence[Path]) -> Path | None:
    """A private folder for Numba's cache when none of ``candidates`` can be written.

    Numba keeps compiled kernels in ``__pycache__`` beside the source or in the user's
    cache folder, and refuses to compile ``cache=True`` functions when it can write
    neither: a read-only install run by a service account with no writable home. Then
    kernels are cached in the temporary directory instead (compiled once per boot).
    """
    if any(_writable(folder) for folder in candidates):
        return None
    return Path(tempfile.gettempdir()) / f"xpnet-numba-{os.getuid()}"


def _let_numba_cache() -> None:
    import numba
    from numba.misc.appdirs import AppDirs

    if numba.config.CACHE_DIR:
        return  # the user chose a folder (NUMBA_CACHE_DIR)
    folder = fallback_cache_dir([Path(__file__).parent / "__pycache__",
                                 Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)])
    if folder is not None:
        numba.config.CACHE_DIR = str(folder)


_let_numba_cache()

from .cross_entropy import DELTA, softmax_cross_entropy  # noqa: E402  (after the cache setup)

# The CPU MultiLayerNet kernel stays reachable as its module's function
# (kernels.mlp_numerical_gradient.mlp_numerical_gradient): exporting it here under the
# module's own name would hide the module from `from xpnet.kernels import
# mlp_numerical_gradient as mlp`, which callers use.
from .mlp_numerical_gradient import mlp_numerical_gradient_cuda  # noqa: E402
from .numerical_gradient import two_layer_numerical_gradient  # noqa: E402

__all__ = [
    "DELTA",
    "mlp_numerical_gradient_cuda",
    "softmax_cross_entropy",
    "two_layer_numerical_gradient",
]
