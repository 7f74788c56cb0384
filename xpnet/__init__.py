"""xpnet: chapter 4 of *Deep Learning from Scratch* as a fast, device-switchable backend.

The book's names live where a reader looks for them: ``xpnet.functions`` (common/functions),
``xpnet.gradient`` (common/gradient), ``xpnet.two_layer_net.TwoLayerNet``,
``xpnet.dataset.mnist.load_mnist`` (dataset/mnist), and ``xpnet.trainer.train`` for the
loop of train_neuralnet.py. ``XPNET_DEVICE`` picks NumPy (``cpu``) or CuPy (``cuda``);
see ``xpnet.backend``. A training script needs only::

    from xpnet import TwoLayerNet, load_mnist, train
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module. Imported on first use, so `import xpnet` (and `xpnet --help`) stays
# quick: the network pulls in Numba, the CLI does not need it to print help.
_EXPORTS = {
    "TwoLayerNet": "xpnet.two_layer_net",
    "train": "xpnet.trainer",
    "History": "xpnet.trainer",
    "DivergenceError": "xpnet.errors",
    "load_mnist": "xpnet.dataset.mnist",
    "load_fashion_mnist": "xpnet.dataset.fashion_mnist",
    "use_device": "xpnet.backend",
    "to_device": "xpnet.backend",
    "asnumpy": "xpnet.backend",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # read on first use: importing importlib.metadata is the slowest part of
        # `import xpnet`, and a Ctrl-C landing in it is one no code of ours can catch
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("xpnet")  # written once, in pyproject.toml
        except PackageNotFoundError:  # a source tree run in place, not installed
            return "0+unknown"
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'xpnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
