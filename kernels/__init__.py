"""Fast kernels for the book's chapter-4 network: NumPy arrays in, NumPy arrays out.

CPU (Numba) functions are exported here. The CUDA versions live in ``xpnet.kernels.cuda``
with the same calls (plus ``stream=``) and take device arrays (anything with
``__cuda_array_interface__``); importing this package never touches CUDA.

An inner layer: the functions trust their arguments (shapes, dtypes, label range are
stated in their docstrings); xpnet's public entry points check and normalise them.
"""

from __future__ import annotations

from .cross_entropy import DELTA, softmax_cross_entropy
from .numerical_gradient import two_layer_numerical_gradient

__all__ = [
    "DELTA",
    "softmax_cross_entropy",
    "two_layer_numerical_gradient",
]
