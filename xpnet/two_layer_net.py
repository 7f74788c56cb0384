"""The book's TwoLayerNet: affine -> sigmoid -> affine -> softmax, on NumPy or CuPy."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import fused
from .backend import Device, get_array_module, parse_device, to_device
from .functions import sigmoid, softmax
from .gradient import numerical_gradient as generic_numerical_gradient

PARAM_NAMES = ("W1", "b1", "W2", "b2")


class TwoLayerNet:
    """``softmax(sigmoid(x @ W1 + b1) @ W2 + b2)``, trained on the book's cross-entropy.

    Weights are ``weight_init_std * randn``, biases zero. With ``seed=None`` they are drawn
    from NumPy's global generator, like the book (``np.random.seed`` applies); with a seed,
    from ``np.random.default_rng(seed)``. Either way they are drawn on the host and then
    moved to ``device``, so one seed gives one start on every device. ``dtype`` is float64
    by default like the book; float32 halves memory and is faster.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        *,
        seed: int | None = None,
        dtype: Any = np.float64,
        device: str | Device | None = None,
    ) -> None:
        for name, size in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("output_size", output_size),
        ):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.device = parse_device(device)
        if seed is None:
            # The book's global generator, so a reader's np.random.seed() still applies.
            def randn(shape: tuple[int, int]) -> np.ndarray:
                return np.random.randn(*shape)  # noqa: NPY002
        else:
            randn = np.random.default_rng(seed).standard_normal
        host = {
            "W1": weight_init_std * randn((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * randn((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }
        self.params = {k: to_device(v.astype(self.dtype), self.device) for k, v in host.items()}

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        d, h = self.params["W1"].shape
        return d, h, self.params["W2"].shape[1]

    # -- checks -----------------------------------------------------------------------

    def _check_x(self, x: Any) -> Any:
        """x as a (B, D) array of the net's dtype on the net's device, or a clear error.

        Host arrays are moved to the net's device, so the book's loop, which slices NumPy
        arrays, runs unchanged on a GPU.
        """
        d = self.sizes[0]
        x = to_device(x, self.device)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(
                f"x has shape {tuple(x.shape)} but the net expects (batch, {d}) "
                f"(input_size={d}); flatten images with load_mnist(flatten=True)"
            )
        return x.astype(self.dtype, copy=False)

    def _labels(self, t: Any, batch: int) -> Any:
        """Integer labels (B,) from labels or one-hot (B, C); clear error on a mismatch."""
        t = to_device(t, self.device)
        xp = get_array_module(t)
        c = self.sizes[2]
        if t.ndim == 2 and t.shape == (batch, c):
            return t.argmax(axis=1)
        if t.ndim == 1 and t.shape[0] == batch:
            if not xp.issubdtype(t.dtype, xp.integer):
                if not (xp is np and np.issubdtype(t.dtype, np.floating)
                        and np.all(t == np.round(t))):
                    raise ValueError(f"labels must be integers, got dtype {t.dtype}")
                t = t.astype(np.intp)  # whole-number floats, e.g. labels read from a CSV
            if xp is np and t.size and (t.min() < 0 or t.max() >= c):
                raise ValueError(f"labels must be in 0..{c - 1}, got {t.min()}..{t.max()}")
            return t
        raise ValueError(
            f"t has shape {tuple(t.shape)} but x has {batch} samples: pass labels of shape "
            f"({batch},) or one-hot of shape ({batch}, {c})"
        )

    # -- the book's API -----------------------------------------------------------------

    def _logits(self, x: Any) -> tuple[Any, Any]:
        p = self.params
        z1 = sigmoid(x @ p["W1"] + p["b1"])
        return z1, z1 @ p["W2"] + p["b2"]

    def predict(self, x: Any) -> Any:
        """Class probabilities (B, C) for inputs x (B, D); a 1-D x gives (C,)."""
        y = softmax(self._logits(self._check_x(x))[1])
        return y.reshape(-1) if np.ndim(x) == 1 else y

    def loss(self, x: Any, t: Any) -> Any:
        """The book's cross-entropy of ``predict(x)`` against labels or one-hot ``t``.

        A scalar: a NumPy float, or a 0-d CuPy array that stays on the GPU until read.
        Computed by the fused softmax + cross-entropy kernel of the array's device.
        """
        x = self._check_x(x)
        return fused.cross_entropy(self._logits(x)[1], self._labels(t, x.shape[0]))

    def accuracy(self, x: Any, t: Any) -> float:
        """Fraction of samples whose argmax prediction equals the label (labels or one-hot)."""
        x = self._check_x(x)
        labels = self._labels(t, x.shape[0])
        # argmax of the logits is argmax of softmax: skip the softmax.
        hits = (self._logits(x)[1].argmax(axis=1) == labels).sum()
        return float(hits) / x.shape[0]

    def loss_and_gradient(self, x: Any, t: Any) -> tuple[Any, dict[str, Any]]:
        """Backprop: the loss and the gradient dict from one forward pass."""
        x = self._check_x(x)
        labels = self._labels(t, x.shape[0])
        p = self.params
        z1, a2 = self._logits(x)
        loss, dy = fused.cross_entropy_with_grad(a2, labels)  # dy = (softmax - onehot) / B
        da1 = (dy @ p["W2"].T) * ((1.0 - z1) * z1)
        grads = {
            "W1": x.T @ da1,
            "b1": da1.sum(axis=0),
            "W2": z1.T @ dy,
            "b2": dy.sum(axis=0),
        }
        return loss, grads

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients ``{"W1", "b1", "W2", "b2"}``; t may be labels or one-hot."""
        return self.loss_and_gradient(x, t)[1]

    def numerical_gradient(self, x: Any, t: Any, *, method: str = "fused") -> dict[str, Any]:
        """Central-difference gradients (h = 1e-4) of the loss for every parameter.

        ``method="fused"``: the Numba kernels of the array's device, the book's numbers
        in float64 whatever the net's dtype. ``method="generic"``: the book's loop over
        every element through ``xpnet.gradient.numerical_gradient`` (slow; net's dtype).
        """
        if method == "fused":
            x = self._check_x(x)
            labels = self._labels(t, x.shape[0])
            grads = fused.two_layer_numerical_gradient(
                *(self.params[k] for k in PARAM_NAMES), x, labels
            )
            return dict(zip(PARAM_NAMES, grads, strict=True))
        if method == "generic":
            def loss_w(_: Any) -> Any:
                return self.loss(x, t)

            return {k: generic_numerical_gradient(loss_w, self.params[k]) for k in PARAM_NAMES}
        raise ValueError(f"method must be 'fused' or 'generic', got {method!r}")
