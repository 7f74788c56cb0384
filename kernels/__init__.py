"""Fast kernels for the book's chapter-4 network: NumPy arrays in, NumPy arrays out.

CPU (Numba) functions are exported here. The CUDA versions live in ``xpnet.kernels.cuda``
and take device arrays (anything with ``__cuda_array_interface__``); importing this
package never touches CUDA.
"""

from __future__ import annotations

from .cross_entropy import (
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_with_grad,
)
from .numerical_gradient import two_layer_numerical_gradient

__all__ = [
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_with_grad",
    "two_layer_numerical_gradient",
]
