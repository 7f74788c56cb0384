"""The book's TwoLayerNet: affine -> sigmoid -> affine -> softmax, on NumPy or CuPy."""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import fused, inputs
from .backend import (
    Device,
    asnumpy,
    device_memory_bytes,
    get_array_module,
    is_cupy_array,
    parse_device,
    to_device,
    use_device,
)
from .common.optimizer import state_copies
from .dataset import npy
from .dataset.atomic import atomic_write
from .errors import InputError, ModelFileError, first_line
from .functions import sigmoid, softmax
from .gradient import numerical_gradient as generic_numerical_gradient
from .kernels import DELTA

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def on_its_device(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a public method with the net's device current (its GPU for CuPy's work)."""
    @functools.wraps(method)
    def on_device(self: Any, *args: Any, **kwargs: Any) -> Any:
        with use_device(self.device):
            return method(self, *args, **kwargs)

    return on_device


class NetFace:
    """What every net a run trains shares of its face (TwoLayerNet, xpnet.nets.BookNet):
    ``params`` on ``device`` in ``dtype``, named ``param_names`` in file order."""

    params: dict[str, Any]
    param_names: tuple[str, ...]
    device: Device
    dtype: np.dtype
    features: int
    classes: int
    weight_decay: float = 0.0  # λ of the book's L2 penalty on the W's (BookNet sets its own)
    _dropouts: tuple[Any, ...] | list[Any] = ()  # a BookNet's Dropout layers

    @on_its_device
    def books_loss_gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Backprop's gradient of the book's exact loss ``-log(y_t + 1e-7)`` (plus the net's
        weight decay), as float64 host arrays keyed by ``param_names``.

        Why: the numerical gradient differentiates the book's loss with its 1e-7 inside the
        log; backprop's ``(y - t) / B`` is the gradient of ``-log(y_t)`` and leaves it out.
        The two then differ by about ``1e-7 / y_t`` with both right (1e-6 where the true
        class has probability 1e-3). The exact loss's gradient is sample b's backprop
        gradient weighed by ``y_t / (y_t + 1e-7)``: built here from one backprop per sample
        (the backprop being checked), so a gradient check can tell that 1e-7 from an error.
        ``x`` flat ``(B, features)``, ``t`` labels or one-hot, on any device. Nets with
        dropout are refused (each backprop would draw other masks).
        """
        if self._dropouts:
            raise InputError(f"books_loss_gradient needs a net without dropout; "
                             f"{self.describe()}'s masks change from one backprop to the next")
        x = self._checked_x(x)
        labels = inputs.labels(to_device(t, self.device), x.shape[0], self.classes)
        t_host = asnumpy(labels)
        y = asnumpy(self.predict(x))[np.arange(len(t_host)), t_host].astype(np.float64)
        weights = y / (y + DELTA)
        grads = {key: np.zeros(self.params[key].shape) for key in self.param_names}
        for b, weight in enumerate(weights):
            own = self.gradient(x[b:b + 1], labels[b:b + 1])  # the public one, as checked
            for key in grads:
                grads[key] += weight * asnumpy(own[key]).astype(np.float64)
        # each sample's gradient holds the decay's λ * W whole: weigh it back up to one
        untouched = (1.0 - weights.mean()) * self.weight_decay
        return {key: g / len(weights) + (untouched * asnumpy(self.params[key]).astype(
                    np.float64) if key.startswith("W") else 0.0) for key, g in grads.items()}

    def _checked_x(self, x: Any) -> Any:
        """x as a C-contiguous (B, features) array of the net's dtype on the net's device.

        Host arrays are moved to the net's device, so the book's loop, which slices NumPy
        arrays, runs unchanged on a GPU; a 1-D x is one sample.
        """
        x = to_device(x, self.device)
        x = inputs.samples(x.reshape(1, -1) if x.ndim == 1 else x, self.features)
        return get_array_module(x).ascontiguousarray(x, dtype=self.dtype)

    def host_params(self) -> dict[str, np.ndarray]:
        """Host copies of the parameters, in ``param_names`` order."""
        return {k: asnumpy(self.params[k]).copy() for k in self.param_names}

    def set_params(self, arrays: Mapping[str, Any]) -> None:
        """Copy host ``arrays`` (exactly ``param_names``, the net's shapes, finite) into
        the parameters, in place, in the net's dtype; ModelFileError if they do not fit."""
        copy_params_in(self.params, arrays, self.device, self.dtype)

    def _state_bytes(self, optimizer: Any) -> int:
        """Bytes of the parameters, their gradients and ``optimizer``'s state arrays."""
        count = sum(int(p.size) for p in self.params.values())
        return count * (2 + state_copies(optimizer)) * self.dtype.itemsize


class TwoLayerNet(NetFace):
    """``softmax(sigmoid(x @ W1 + b1) @ W2 + b2)``, trained on the book's cross-entropy.

    Weights are ``weight_init_std * randn``, biases zero. With ``seed=None`` they are drawn
    from NumPy's global generator, like the book (``np.random.seed`` applies); with a seed,
    from ``np.random.default_rng(seed)``. Either way they are drawn on the host and then
    moved to ``device``, so one seed gives one start on every device. ``dtype`` is float64
    by default like the book; float32 halves memory and is faster.

    Every public method runs with the net's device current, so a net on ``cuda:1`` works
    whatever device the caller has current. On a GPU, labels given to ``gradient`` and
    ``numerical_gradient`` are checked there without waiting for it; a bad one is reported
    (InputError) by the next ``loss`` or ``accuracy``, which read the device anyway.
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
        input_size = inputs.positive_int("input_size", input_size)
        hidden_size = inputs.positive_int("hidden_size", hidden_size)
        output_size = inputs.positive_int("output_size", output_size)
        weight_init_std = inputs.positive_float("weight_init_std", weight_init_std)
        self.dtype = inputs.float_dtype(dtype)
        self.device = parse_device(device)
        if seed is not None:
            seed = inputs.seed("seed", seed)
        check_fits(f"TwoLayerNet({input_size}, {hidden_size}, {output_size})",
                   input_size * hidden_size + hidden_size + hidden_size * output_size
                   + output_size, self.device)
        self._pending: list[tuple[inputs.LabelCheck, str]] = []  # label checks not yet read
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

    param_names = PARAM_NAMES

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        d, h = self.params["W1"].shape
        return d, h, self.params["W2"].shape[1]

    # -- the face a run trains through (xpnet.trainer, xpnet.run) -----------------------

    @property
    def features(self) -> int:
        """Inputs per sample (784 for MNIST)."""
        return self.sizes[0]

    @property
    def classes(self) -> int:
        """Scores per sample."""
        return self.sizes[2]

    def describe(self) -> str:
        """The net in one line, e.g. ``TwoLayerNet(784, 50, 10)``."""
        return "TwoLayerNet({}, {}, {})".format(*self.sizes)

    def step_bytes(self, batch_size: int, optimizer: Any = None) -> int:
        """About the device memory one training step of ``batch_size`` samples needs: the
        parameters, their gradients and ``optimizer``'s state (``state_copies``), then the
        batch's activations."""
        d, h, c = self.sizes
        # x batch, hidden activations and their gradient, logits and theirs, indices
        return (self._state_bytes(optimizer)
                + batch_size * ((d + 2 * h + 2 * c) * self.dtype.itemsize + 8))

    def start_iteration(self, iteration: int) -> None:
        """Nothing to do: this net draws no random numbers while training."""

    # -- the input boundary: check and normalise once, then trust ---------------------

    def _checked_batch(self, x: Any, t: Any, caller: str) -> tuple[Any, Any, Any]:
        """(x, labels, check) in the trusted form: see ``_checked_x`` and ``inputs.labels``.

        On the CPU the labels are checked at once (``check`` None). On a GPU the check is
        returned unread: ``_read`` reads it with the caller's result, or, from a method
        that reads nothing, it waits in ``_pending`` for the next one that does.
        """
        x = self._checked_x(x)
        labels, check = inputs.device_labels(to_device(t, self.device), x.shape[0],
                                             self.sizes[2])
        if not is_cupy_array(labels):
            check.verify(check.read())
            return x, labels, None
        return x, labels, (check, caller)

    def _read(self, value: Any, check: Any) -> float:
        """``float(value)`` and every label check not yet read, in one transfer."""
        checks, self._pending = [*self._pending, *([check] if check else [])], []
        if not is_cupy_array(value):
            return float(value)
        xp = get_array_module(value)
        read = xp.concatenate([value.astype(np.float64).reshape(1)]
                              + [c.stats for c, _ in checks if c.stats is not None]).tolist()
        at = 1
        for c, caller in checks:
            if c.stats is not None:
                c.verify(read[at:at + 3], when=f" (given to {caller}; a GPU's labels are "
                         "checked there, and read with the next loss or accuracy)")
                at += 3
        return read[0]

    # -- the book's API -----------------------------------------------------------------

    def _logits(self, x: Any) -> tuple[Any, Any]:
        p = self.params
        z1 = sigmoid(x @ p["W1"] + p["b1"])
        return z1, z1 @ p["W2"] + p["b2"]

    @on_its_device
    def predict(self, x: Any) -> Any:
        """Class probabilities (B, C) for inputs x (B, D); a 1-D x gives (C,)."""
        y = softmax(self._logits(self._checked_x(x))[1])
        return y.reshape(-1) if np.ndim(x) == 1 else y

    @on_its_device
    def loss(self, x: Any, t: Any) -> float:
        """The book's cross-entropy of ``predict(x)`` against labels or one-hot ``t``.

        A Python float, so the book's ``train_loss_list.append(loss)`` and ``plt.plot``
        work on any device. On a GPU, reading it waits for the device: one wait per call,
        which is what the book's loop reads each step (xpnet's ``train`` keeps its losses
        on the device and reads them in bulk). Computed by the fused softmax +
        cross-entropy kernel of the array's device.
        """
        x, labels, check = self._checked_batch(x, t, "loss()")
        return self._read(self._loss(x, labels), check)

    @on_its_device
    def accuracy(self, x: Any, t: Any) -> float:
        """Fraction of samples whose argmax prediction equals the label (labels or one-hot)."""
        x, labels, check = self._checked_batch(x, t, "accuracy()")
        return self._read(self._hits(x, labels), check) / x.shape[0]

    @on_its_device
    def loss_and_gradient(self, x: Any, t: Any) -> tuple[Any, dict[str, Any]]:
        """Backprop: the loss and the gradient dict from one forward pass.

        The loss is a NumPy float, or a 0-d CuPy array that stays on the GPU until read.
        """
        x, labels, check = self._checked_batch(x, t, "loss_and_gradient()")
        self._pending += [check] if check else []
        return self._loss_and_gradient(x, labels)

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients ``{"W1", "b1", "W2", "b2"}``; t may be labels or one-hot."""
        return self.loss_and_gradient(x, t)[1]

    @on_its_device
    def numerical_gradient(self, x: Any, t: Any, *, method: str = "fused") -> dict[str, Any]:
        """Central-difference gradients (h = 1e-4) of the loss for every parameter.

        ``method="fused"``: the Numba kernels of the array's device, the book's numbers
        in float64 whatever the net's dtype. ``method="generic"``: the book's loop over
        every element through ``xpnet.gradient.numerical_gradient`` (slow; net's dtype).
        """
        if method not in ("fused", "generic"):
            raise InputError(f"method must be 'fused' or 'generic', got {method!r}")
        x, labels, check = self._checked_batch(x, t, "numerical_gradient()")
        self._pending += [check] if check else []
        if method == "fused":
            return self._numerical_gradient(x, labels)

        def loss_w(_: Any) -> Any:
            return self._loss(x, labels)

        return {k: generic_numerical_gradient(loss_w, self.params[k]) for k in PARAM_NAMES}

    # -- trusted internals: x and labels already passed the boundary --------------------

    def _loss(self, x: Any, labels: Any) -> Any:
        return fused.cross_entropy(self._logits(x)[1], labels)

    def _hits(self, x: Any, labels: Any) -> Any:
        # argmax of the logits is argmax of softmax: skip the softmax.
        return (self._logits(x)[1].argmax(axis=1) == labels).sum()

    def _accuracy(self, x: Any, labels: Any) -> float:
        return float(self._hits(x, labels)) / x.shape[0]

    def _loss_and_gradient(self, x: Any, labels: Any) -> tuple[Any, dict[str, Any]]:
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

    def _numerical_gradient(self, x: Any, labels: Any) -> dict[str, Any]:
        grads = fused.two_layer_numerical_gradient(
            *(self.params[k] for k in PARAM_NAMES), x, labels
        )
        return dict(zip(PARAM_NAMES, grads, strict=True))

    # -- files ---------------------------------------------------------------------------

    @on_its_device
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters to ``path`` as ``.npz`` (no pickle), atomically.

        The file holds ``W1``, ``b1``, ``W2``, ``b2`` (host copies, the net's dtype) and a
        ``format`` tag; sizes and dtype follow from the arrays. ``TwoLayerNet.load`` reads it.
        """
        save_params(path, {k: asnumpy(self.params[k]) for k in PARAM_NAMES})

    @classmethod
    def load(cls, path: str | os.PathLike[str], *,
             device: str | Device | None = None) -> TwoLayerNet:
        """The net saved at ``path`` (by ``save`` or ``xpnet train``'s params.npz).

        Raises ModelFileError, one line, if the file is missing, not an ``.npz``, or does
        not hold a consistent float32/float64 TwoLayerNet.
        """
        arrays = read_params(path)
        (d, h), c = arrays["W1"].shape, arrays["W2"].shape[1]
        net = cls(d, h, c, seed=0, dtype=arrays["W1"].dtype, device=device)
        net.params = {k: to_device(arrays[k], net.device) for k in PARAM_NAMES}
        return net

    def __repr__(self) -> str:
        d, h, c = self.sizes
        return (f"TwoLayerNet({d}, {h}, {c}, dtype={self.dtype.name}, device='{self.device}')"
                " # chapter 4: affine-sigmoid-affine-softmax")

    def __getattr__(self, name: str) -> Any:
        # Only reached for missing attributes. A chapter-5 script (layers, ReLU) run on
        # this chapter-4 net must not train a different network without a word.
        if name in ("layers", "lastLayer"):
            raise AttributeError(
                f"xpnet's TwoLayerNet is the book's chapter-4 network (sigmoid, no layer "
                f"objects) and has no {name!r}: for chapter-5 scripts keep the book's "
                "ch05/two_layer_net.py"
            )
        raise AttributeError(f"'TwoLayerNet' object has no attribute {name!r}")


FILE_FORMAT = "xpnet-two-layer-net/1"


def copy_params_in(params: Mapping[str, Any], arrays: Mapping[str, Any], device: Device,
                   dtype: np.dtype) -> None:
    """``params[k][...] = arrays[k]`` for every name, after checking names and shapes.

    In place, so whatever holds the parameter arrays (layers, a captured CUDA step) sees
    the new values. ModelFileError, one line, if names or shapes differ or a value is NaN
    or infinite in ``dtype`` (a damaged file: no run saves such parameters to go on from).
    """
    if set(arrays) != set(params):
        raise ModelFileError(f"parameters {sorted(arrays)} do not fit this net's "
                             f"{sorted(params)}")
    checked = {}
    for key, p in params.items():
        a = np.asarray(arrays[key])
        if a.shape != p.shape or not np.issubdtype(a.dtype, np.number):
            raise ModelFileError(f"parameter {key} is {a.dtype} {a.shape}; this net's is "
                                 f"{np.dtype(dtype).name} {p.shape}")
        with np.errstate(over="ignore"):  # a value too big for the dtype: refused next
            a = a.astype(dtype, copy=False)
        if not np.isfinite(a).all():
            raise ModelFileError(f"parameter {key} holds NaN or infinity (in "
                                 f"{np.dtype(dtype).name}): the parameters are damaged")
        checked[key] = a
    with use_device(device):
        for key, p in params.items():
            p[...] = to_device(checked[key], device)


def check_fits(net: str, param_count: int, device: Device) -> None:
    """Refuse the net described by ``net`` (e.g. ``TwoLayerNet(784, 50, 10)``) if its
    ``param_count`` parameters would not fit ``device``, before any is drawn.

    Every net draws its weights on the host in float64 (one seed, one start on every
    device), so that size is checked against half the device's memory (RAM for the CPU).
    """
    need = int(param_count) * 8
    have = device_memory_bytes(device)
    if have and need > have // 2:
        raise InputError(f"a {net} needs {need / 2**30:.1f} GiB for its parameters, more "
                         f"than half of the {have / 2**30:.1f} GiB of {device}; use a "
                         "smaller hidden size")


def save_params(path: str | os.PathLike[str], params: Mapping[str, np.ndarray]) -> None:
    """The file ``TwoLayerNet.save`` writes: the four arrays (copied to the host if on a
    GPU) and a format tag."""
    arrays = {k: asnumpy(params[k]) for k in PARAM_NAMES}
    atomic_write(path, lambda f: np.savez(f, format=np.array(FILE_FORMAT), **arrays))


def read_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The four parameter arrays of a TwoLayerNet ``.npz``, checked before use.

    Array headers are read before any data, so a file claiming a huge shape is refused
    without allocating it.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            missing = [k for k in PARAM_NAMES if f"{k}.npy" not in zf.namelist()]
            if missing:
                raise ModelFileError(f"{path}: not a TwoLayerNet file (no "
                                     f"{', '.join(missing)})")
            headers = {k: (shape, dtype) for k, (shape, _, dtype)
                       in npy.whole_headers(zf, PARAM_NAMES).items()}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file; pass a params.npz written by xpnet "
                             "train or TwoLayerNet.save") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"{path}: not a readable .npz file ({first_line(err)})") from None
    (w1, dt), (b1, _), (w2, _), (b2, _) = (headers[k] for k in PARAM_NAMES)
    if not (len(w1) == 2 and len(w2) == 2 and b1 == (w1[1],) and w2[0] == w1[1]
            and b2 == (w2[1],) and min(*w1, *w2) > 0):
        raise ModelFileError(f"{path}: inconsistent shapes W1 {w1}, b1 {b1}, W2 {w2}, b2 {b2}")
    if dt not in (np.float32, np.float64) or any(headers[k][1] != dt for k in PARAM_NAMES):
        raise ModelFileError(f"{path}: parameters must all be float32 or float64, got "
                             + ", ".join(f"{k} {headers[k][1]}" for k in PARAM_NAMES))
    if w1[0] * w1[1] + w2[0] * w2[1] > MAX_PARAMS:
        raise ModelFileError(f"{path}: {w1} and {w2} weights are more than this loader "
                             f"accepts ({MAX_PARAMS}); is it really a TwoLayerNet?")
    try:  # the file may have changed since its headers were read
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in PARAM_NAMES}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"{path}: not a readable .npz file ({first_line(err)})") from None
    for key, value in arrays.items():
        if not np.isfinite(value).all():
            raise ModelFileError(f"{path}: {key} holds NaN or infinite values")
    return arrays


# 2**31 weights: 16 GiB in float64, beyond any network this chapter trains.
MAX_PARAMS = 2**31
