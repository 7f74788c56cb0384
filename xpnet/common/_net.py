"""What the book's nets share: weights drawn on the host, inputs moved to the net's device,
the backward sweep, and the accuracy count. Internal to ``xpnet.common``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from xpnet.backend import Device, get_array_module, parse_device, to_device
from xpnet.inputs import SCALE_NAMES

from . import params_file

# std = sqrt(numerator / fan_in) for each scale of SCALE_NAMES' values
SCALE_NUMERATORS = {"he": 2.0, "xavier": 1.0}


class OnDevice:
    """A net whose parameters live on ``device`` (default: the configured one)."""

    device: Device

    def _place(self, device: str | Device | None) -> None:
        self.device = parse_device(device)

    def _here(self, a: Any) -> Any:
        """``a`` on the net's device: the book's loops pass NumPy batches to a GPU net."""
        return to_device(a, self.device)

    def _to_device(self, host: dict[str, np.ndarray], dtype: Any = None) -> dict[str, Any]:
        """``host`` arrays on the net's device, cast to ``dtype`` (None: as they are)."""
        return {key: self._here(value if dtype is None else value.astype(dtype, copy=False))
                for key, value in host.items()}


class LayeredParams(OnDevice):
    """A convolutional net whose ``W{i}``/``b{i}`` live in ``layers[PARAM_LAYERS[i-1]]``."""

    PARAM_LAYERS: Sequence[Any]
    layers: Any
    params: dict[str, Any]

    def _layer_grads(self) -> dict[str, Any]:
        """``{"W1": dW, "b1": db, ...}`` of the parameter layers after a backward sweep."""
        grads = {}
        for idx, key in enumerate(self.PARAM_LAYERS, start=1):
            grads[f"W{idx}"], grads[f"b{idx}"] = self.layers[key].dW, self.layers[key].db
        return grads

    def save_params(self, file_name: str | os.PathLike[str] = "params.npz") -> None:
        """Write the parameters as ``.npz`` (a ``.pkl`` name writes the ``.npz`` beside it)."""
        params_file.save(file_name, self.params)

    def load_params(self, file_name: str | os.PathLike[str] = "params.npz") -> None:
        """Read parameters saved by ``save_params`` (or ``convert_pickle``) onto the device."""
        arrays = params_file.load(file_name, self.params)
        self.params.update(self._to_device(arrays))
        for idx, key in enumerate(self.PARAM_LAYERS, start=1):
            self.layers[key].W = self.params[f"W{idx}"]
            self.layers[key].b = self.params[f"b{idx}"]


def randn(*shape: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Standard normal draws of ``shape``: from NumPy's global generator as the book draws
    its weights, or from ``rng`` (a run's own generator, leaving the global one alone)."""
    if rng is None:
        return np.random.randn(*shape)  # noqa: NPY002
    return rng.standard_normal(shape)


def init_scale(weight_init_std: float | str, fan_in: int) -> Any:
    """The std of a layer's weights: a number as given, or a scale named in
    ``xpnet.inputs.SCALE_NAMES``: He's sqrt(2 / fan_in), Xavier's sqrt(1 / fan_in)."""
    scale = SCALE_NAMES.get(str(weight_init_std).lower())
    if scale is None:
        return weight_init_std
    return np.sqrt(SCALE_NUMERATORS[scale] / fan_in)


def backward(layers: Iterable[Any], last_layer: Any) -> None:
    """Backpropagate from the loss through ``layers`` (in forward order), last first."""
    dout = last_layer.backward(1)
    for layer in reversed(list(layers)):
        dout = layer.backward(dout)


def labels_of(t: Any) -> Any:
    """Class indices from labels (N,) or one-hot (N, C), as the book's accuracy reads them."""
    return t if t.ndim == 1 else get_array_module(t).argmax(t, axis=1)


def hits(y: Any, labels: Any) -> int:
    """How many rows of scores ``y`` have their argmax at ``labels``."""
    xp = get_array_module(y)
    return int(xp.sum(xp.argmax(y, axis=1) == labels))


def fraction(count: int, total: int) -> np.float64:
    """``count / total`` as the book's accuracy returns it (a NumPy float64)."""
    return np.float64(count) / float(total)
