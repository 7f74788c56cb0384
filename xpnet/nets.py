"""The nets a run trains, built from a run's settings: chapter 4's TwoLayerNet and the
book's MultiLayerNet, SimpleConvNet and DeepConvNet behind one face (``BookNet``).

The face is what xpnet.trainer, xpnet.run and the run folder use: ``params`` updated in
place, ``_loss_and_gradient`` on trusted device batches, ``_accuracy`` over a whole set,
``host_params``/``set_params`` for files, ``start_iteration`` for dropout. Weights come
from a generator seeded by the run's seed, in the book's order (the same weights on every
device, NumPy's global generator untouched); dropout masks follow the counter rule of
xpnet.counter_random, so a resumed run and a captured CUDA step draw the ones an
unbroken eager run would.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import inputs
from .backend import Device, get_array_module, parse_device, to_device, use_device
from .common import _gradient_check, _net
from .common.deep_convnet import CONV_1, CONV_2, CONV_3, CONV_4, CONV_5, CONV_6, DeepConvNet
from .common.layers import Affine, Convolution, Dropout, Pooling
from .common.multi_layer_net import MultiLayerNet, weight_decay
from .common.simple_convnet import CONV_PARAM, SimpleConvNet
from .counter_random import Draw, stream_start
from .errors import InputError
from .functions import softmax
from .two_layer_net import NetFace, TwoLayerNet, check_fits, on_its_device

__all__ = ["RULES", "BookNet", "NetRules", "build", "check_settings"]

# Rows a conv net's accuracy forwards at once (im2col's columns grow ~100x per row).
CONV_ACCURACY_ROWS = 256
FLAT_ACCURACY_ROWS = 10000


@dataclass(frozen=True)
class NetRules:
    """Which of a run's settings a net lets it choose; the rest are the book's, fixed."""

    activation: str | None  # the net's own, or None: any of inputs.ACTIVATIONS
    layers: bool  # several hidden sizes (else one)
    weight_decay: bool
    optimizers: bool  # any of inputs.OPTIMIZERS (else chapter 4's SGD only)
    scale: str  # weight_init_std: "any" (a number or a name), "number", or the name it fixes
    numerical: bool  # grad numerical


# The one table of what each net accepts: RunConfig, sweeps (through it) and build read it.
RULES = {
    "two-layer": NetRules("sigmoid", layers=False, weight_decay=False, optimizers=False,
                          scale="number", numerical=True),
    "multi-layer": NetRules(None, layers=True, weight_decay=True, optimizers=True,
                            scale="any", numerical=True),
    "simple-conv": NetRules("relu", layers=False, weight_decay=False, optimizers=True,
                            scale="number", numerical=False),
    "deep-conv": NetRules("relu", layers=False, weight_decay=False, optimizers=True,
                          scale="he", numerical=False),
}
BOOK_STD = 0.01  # the weights' std of the nets that take a number, as the book's
DEEP_CONVS = (CONV_1, CONV_2, CONV_3, CONV_4, CONV_5, CONV_6)
DEEP_FLAT = 64 * 4 * 4  # DeepConvNet's values into its first affine layer (28x28 images)


def check_settings(net: str, *, hidden: Any, activation: str, weight_init_std: float | str,
                   weight_decay: float, optimizer: str = "sgd",
                   grad: str = "backprop") -> dict[str, Any]:
    """The settings if ``net`` has them all (``RULES``), normalised; else InputError.

    Returns ``hidden`` (one int, or for multi-layer a tuple of ints, one per hidden
    layer), ``activation``, ``weight_init_std`` (a float, or a scale recorded by its one
    name of ``inputs.SCALE_NAMES``), ``weight_decay`` (a float), ``optimizer`` and
    ``grad``, keyed by those names.
    """
    rules = RULES[inputs.choice("net", net, inputs.NETS)]
    sizes = list(hidden) if isinstance(hidden, (list, tuple)) else [hidden]
    sizes = [inputs.positive_int("hidden", size) for size in sizes]
    if not sizes:
        raise InputError("hidden must name at least one hidden layer's size")
    if len(sizes) != 1 and not rules.layers:
        raise InputError(f"hidden takes one size for the {net} net, got {list(hidden)!r}; "
                         "a list of sizes is for --net multi-layer")
    inputs.choice("activation", activation, inputs.ACTIVATIONS)
    inputs.choice("optimizer", optimizer, inputs.OPTIMIZERS)
    inputs.choice("grad", grad, inputs.GRAD_METHODS)
    scale = inputs.weight_init("weight_init_std", weight_init_std)
    scale = inputs.SCALE_NAMES.get(scale, scale) if isinstance(scale, str) else scale
    decay = inputs.non_negative_float("weight_decay", weight_decay)
    if rules.activation not in (None, activation):
        raise InputError(f"activation {activation} is for --net multi-layer; the {net} "
                         f"net's is {rules.activation}")
    if decay and not rules.weight_decay:
        raise InputError(f"weight_decay is for --net multi-layer, not {net}")
    if optimizer != "sgd" and not rules.optimizers:
        raise InputError(f"optimizer {optimizer} is for the nets of chapters 6 to 8; the "
                         f"{net} net trains by chapter 4's SGD: pass --net multi-layer "
                         f"--hidden {sizes[0]} for that net with another optimizer")
    if rules.scale == "number" and isinstance(scale, str):
        raise InputError(f"weight_init_std {weight_init_std} is a scale by name, for --net "
                         f"multi-layer; the {net} net takes a number (the book's {BOOK_STD})")
    if rules.scale not in ("any", "number") and scale != rules.scale:
        raise InputError(f"weight_init_std {weight_init_std} cannot be set for {net}: the "
                         f"book fixes its scale ({rules.scale})")
    if grad == "numerical" and not rules.numerical:
        numerical = [name for name, r in RULES.items() if r.numerical]
        raise InputError(f"grad numerical is for the {' and '.join(numerical)} nets; use "
                         f"backprop for {net}")
    return {"hidden": tuple(sizes) if rules.layers else sizes[0], "activation": activation,
            "weight_init_std": scale, "weight_decay": decay, "optimizer": optimizer,
            "grad": grad}


def build(net: str, *, features: int, classes: int, hidden: int | tuple[int, ...],
          activation: str, weight_init_std: float | str, weight_decay: float,
          dtype: Any, device: str | Device | None, seed: int) -> TwoLayerNet | BookNet:
    """The net a run trains: a TwoLayerNet for ``"two-layer"``, a BookNet for the rest.

    ``features`` inputs per sample (the conv nets read them as a square one-channel
    image: 784 is 1x28x28; DeepConvNet needs 28x28), ``classes`` scores. ``hidden``: the
    hidden size, or for multi-layer one size per hidden layer. Settings a net does not
    have must be its book values (``check_settings``), and its parameters must fit
    ``device`` (``two_layer_net.check_fits``); anything else is an InputError, raised
    before any weight is drawn. Weights drawn from ``np.random.default_rng(seed)``, cast
    to ``dtype``, then moved to ``device``.
    """
    settings = check_settings(net, hidden=hidden, activation=activation,
                              weight_init_std=weight_init_std, weight_decay=weight_decay)
    features = inputs.positive_int("features", features)
    classes = inputs.positive_int("classes", classes)
    seed = inputs.seed("seed", seed)
    dtype = inputs.float_dtype(dtype)
    hidden, scale = settings["hidden"], settings["weight_init_std"]
    if net == "two-layer":
        return TwoLayerNet(features, hidden, classes, scale, seed=seed, dtype=dtype,
                           device=device)
    device = parse_device(device)
    shape = None if net == "multi-layer" else _image_shape(net, features)
    name, count = _planned(net, features, hidden, classes, shape, activation,
                           settings["weight_decay"])
    check_fits(name, count, device)
    rng = np.random.default_rng(seed)
    with use_device(device):
        if net == "multi-layer":
            book = MultiLayerNet(features, list(hidden), classes, activation, scale,
                                 settings["weight_decay"], device=device, dtype=dtype, rng=rng)
            return BookNet(book, net, None, seed, settings["weight_decay"], name)
        if net == "simple-conv":
            book = SimpleConvNet(shape, CONV_PARAM, hidden, classes, scale, device=device,
                                 dtype=dtype, rng=rng)
        else:
            book = DeepConvNet(shape, hidden_size=hidden, output_size=classes, device=device,
                               dtype=dtype, rng=rng)
        return BookNet(book, net, shape, seed, 0.0, name)


def _planned(net: str, features: int, hidden: Any, classes: int,
             shape: tuple[int, int, int] | None, activation: str,
             weight_decay: float) -> tuple[str, int]:
    """(the net in one line, as ``describe`` gives it; how many parameters it will have),
    before it is built."""
    def affine(*sizes: int) -> int:  # weights and biases of affine layers in a row
        return sum(a * b + b for a, b in itertools.pairwise(sizes))

    if net == "multi-layer":
        decay = f", weight decay {weight_decay:g}" if weight_decay else ""
        return (f"MultiLayerNet({features}, {list(hidden)}, {classes}, {activation}{decay})",
                affine(features, *hidden, classes))
    channels, side, _ = shape
    image = "x".join(map(str, shape))
    if net == "simple-conv":
        filters, size = CONV_PARAM["filter_num"], CONV_PARAM["filter_size"]
        out = (side + 2 * CONV_PARAM["pad"] - size) // CONV_PARAM["stride"] + 1
        convs = filters * channels * size * size + filters
        return (f"SimpleConvNet({image}, {filters} filters {size}x{size}, {hidden}, "
                f"{classes})", convs + affine(filters * (out // 2) ** 2, hidden, classes))
    convs = 0
    for conv in DEEP_CONVS:
        size, filters = conv["filter_size"], conv["filter_num"]
        convs += filters * channels * size * size + filters
        channels = filters
    return (f"DeepConvNet({image}, {hidden}, {classes})",
            convs + affine(DEEP_FLAT, hidden, classes))


def _image_shape(net: str, features: int) -> tuple[int, int, int]:
    side = math.isqrt(features)
    if net == "deep-conv" and side * side == features == 784:
        return (1, 28, 28)
    # SimpleConvNet's 5x5 filters then 2x2 pool need an even side after the convolution.
    if net == "simple-conv" and side * side == features and side > 5 and side % 2 == 0:
        return (1, side, side)
    need = "784 (28x28)" if net == "deep-conv" else "a square of an even side, e.g. 784"
    raise InputError(f"{net} reads each sample as a one-channel square image; its features "
                     f"must be {need}, got {features}")


class DropoutStream:
    """The masks' uniforms of dropout layer ``k`` of a run, by xpnet.counter_random's rule:
    at iteration i, for an input of n values, numbers ``stream_start(seed, k, i, n) ...``.

    One Draw is made on first use and advanced by each call; ``start(i)`` makes the next
    call iteration i (a seek, no wait for the device). A new input size or device gets a
    new Draw at the right place, so the rule holds for any sequence of batches.
    """

    def __init__(self, seed: int, k: int) -> None:
        self.seed, self.k = seed, k
        self.iteration = 0  # of the next call
        self.draw: Draw | None = None
        self._seek = False

    def start(self, iteration: int) -> None:
        self.iteration, self._seek = int(iteration), True

    def __call__(self, x: Any) -> Any:
        n, at = x.size, stream_start(self.seed, self.k, self.iteration, x.size)
        draw = self.draw
        if draw is None or draw.size != n or get_array_module(x) is not draw.xp or (
                draw.xp is not np and draw.start.device != x.device):
            self.draw = Draw(x, n, at)
        elif self._seek:
            draw.seek(at)
        self._seek = False
        self.iteration += 1
        return self.draw.uniform()


class BookNet(NetFace):
    """A book net (``net``: MultiLayerNet, SimpleConvNet or DeepConvNet as built) behind the
    face a run trains through.

    ``params`` is the book net's dict (the layers hold the same arrays; ``set_params``
    and the optimizers change them in place). ``kind`` is the run's net name,
    ``input_shape`` the image shape a flat batch is read as (None for multi-layer),
    ``seed`` the run's seed (dropout streams), ``weight_decay`` the L2 strength λ.
    """

    def __init__(self, net: MultiLayerNet | SimpleConvNet | DeepConvNet, kind: str,
                 input_shape: tuple[int, int, int] | None, seed: int,
                 weight_decay: float, name: str) -> None:
        self.net, self.kind, self.input_shape, self.name = net, kind, input_shape, name
        self.seed, self.weight_decay = seed, float(weight_decay)
        self.params = net.params
        self.device: Device = net.device
        self.dtype = np.dtype(net.params["W1"].dtype)
        self.param_names = tuple(net.params)
        count = len(self.param_names) // 2
        self.features = (net.params["W1"].shape[0] if input_shape is None
                         else math.prod(input_shape))
        self.classes = int(net.params[f"W{count}"].shape[1])
        self.layers = list(net.layers.values() if isinstance(net.layers, dict) else net.layers)
        # the W1..Wn the L2 penalty covers (the conv nets have no weight decay)
        self.decayed_count = count if kind == "multi-layer" else 0
        self._param_layers = [layer for layer in self.layers
                              if isinstance(layer, (Affine, Convolution))]
        self._dropouts = [layer for layer in self.layers if isinstance(layer, Dropout)]
        self._streams = [DropoutStream(seed, k) for k in range(len(self._dropouts))]
        for layer, stream in zip(self._dropouts, self._streams, strict=True):
            layer.source = stream

    # -- the face -------------------------------------------------------------------------

    def describe(self) -> str:
        """The net in one line, e.g. ``SimpleConvNet(1x28x28, 30 filters 5x5, 100, 10)``."""
        return self.name

    def step_bytes(self, batch_size: int, optimizer: Any = None) -> int:
        """About the device memory one training step of ``batch_size`` samples needs:
        the parameters, their gradients and ``optimizer``'s state arrays (as many copies
        as ``optimizer.state_copies`` says: None counts none), then every layer's output
        and its gradient, im2col's columns and their gradient."""
        shape = self.input_shape or (self.features,)
        per_sample = math.prod(shape)
        for layer in self.layers:
            if isinstance(layer, Convolution):
                filters, channels, fh, fw = layer.W.shape
                out_h = 1 + (shape[1] + 2 * layer.pad - fh) // layer.stride
                out_w = 1 + (shape[2] + 2 * layer.pad - fw) // layer.stride
                per_sample += 2 * out_h * out_w * channels * fh * fw
                shape = (filters, out_h, out_w)
            elif isinstance(layer, Pooling):
                out_h = 1 + (shape[1] - layer.pool_h) // layer.stride
                out_w = 1 + (shape[2] - layer.pool_w) // layer.stride
                per_sample += 2 * out_h * out_w * shape[0] * layer.pool_h * layer.pool_w
                shape = (shape[0], out_h, out_w)
            elif isinstance(layer, Affine):
                shape = (layer.W.shape[1],)
            per_sample += 2 * math.prod(shape)
        # im2col's patches are float64 whatever the net's dtype: count 8 bytes a value.
        return (self._state_bytes(optimizer)
                + int(batch_size) * (per_sample * max(8, self.dtype.itemsize) + 8))

    def start_iteration(self, iteration: int) -> None:
        """The next training forward is iteration ``iteration`` (its dropout masks)."""
        for stream in self._streams:
            stream.start(iteration)

    # -- trusted internals: x (B, features) in dtype and intp labels on the device ------

    def _forward(self, x: Any, train: bool) -> Any:
        if self.input_shape is not None:
            x = x.reshape(x.shape[0], *self.input_shape)
        for layer in self.layers:
            x = layer.forward(x, train) if isinstance(layer, Dropout) else layer.forward(x)
        return x

    def _decayed(self, loss: Any) -> Any:
        """The book's loss: cross-entropy plus ``0.5 * λ * sum(W**2)`` over the weights."""
        if not self.decayed_count:
            return loss
        return loss + weight_decay(self.params, self.decayed_count, self.weight_decay)

    def _loss_and_gradient(self, x: Any, labels: Any) -> tuple[Any, dict[str, Any]]:
        """The book's ``loss()`` and ``gradient()`` from one training forward pass."""
        y = self._forward(x, True)
        loss = self._decayed(self.net.last_layer.forward(y, labels))
        _net.backward(self.layers, self.net.last_layer)
        grads = {}
        for idx, layer in enumerate(self._param_layers, start=1):
            dW = layer.dW
            if idx <= self.decayed_count:
                dW = dW + self.weight_decay * layer.W
            grads[f"W{idx}"], grads[f"b{idx}"] = dW, layer.db
        return loss, grads

    def _loss(self, x: Any, labels: Any) -> Any:
        """The book's ``loss()`` (dropout on, with the masks the next training step will
        draw: the iteration count is not advanced)."""
        iterations = [stream.iteration for stream in self._streams]
        loss = self._decayed(self.net.last_layer.forward(self._forward(x, True), labels))
        for stream, iteration in zip(self._streams, iterations, strict=True):
            stream.start(iteration)
        return loss

    def _numerical_gradient(self, x: Any, labels: Any) -> dict[str, Any]:
        """Central differences (h = 1e-4) of ``_loss``: multi-layer through the fused
        kernel (float64), the conv nets through the book's loop (slow: tiny shapes)."""
        if self.kind == "multi-layer":
            return _gradient_check.fully_connected(
                self.params, self.decayed_count, x, labels, activation=self.net.activation,
                weight_decay_lambda=self.weight_decay)
        return _gradient_check.loop(lambda: self._loss(x, labels), self.params,
                                    self.param_names)

    def _row_batches(self, x: Any) -> Iterator[slice]:
        """Slices of ``x``'s rows small enough that one forward's memory stays bounded."""
        rows = FLAT_ACCURACY_ROWS if self.input_shape is None else CONV_ACCURACY_ROWS
        for start in range(0, x.shape[0], rows):
            yield slice(start, start + rows)

    def _hits(self, x: Any, labels: Any) -> Any:
        count = get_array_module(x).zeros((), dtype=np.int64)
        for rows in self._row_batches(x):
            count += (self._forward(x[rows], False).argmax(axis=1) == labels[rows]).sum()
        return count

    def _accuracy(self, x: Any, labels: Any) -> float:
        """The fraction of all of ``x`` classified right, dropout off, in bounded batches."""
        return float(self._hits(x, labels)) / x.shape[0]

    # -- the public, checked API -----------------------------------------------------------

    @on_its_device
    def predict(self, x: Any) -> Any:
        """Class probabilities (B, classes) for flat inputs x (B, features), dropout off,
        as TwoLayerNet's ``predict`` gives them (the book nets' own ``predict`` gives
        the scores before the softmax); a 1-D x gives (classes,)."""
        checked = self._checked_x(x)
        y = get_array_module(checked).concatenate(
            [softmax(self._forward(checked[rows], False))
             for rows in self._row_batches(checked)])
        return y.reshape(-1) if np.ndim(x) == 1 else y

    @on_its_device
    def accuracy(self, x: Any, t: Any) -> float:
        """Fraction of flat inputs x (B, features) whose top score is their label
        (labels (B,) or one-hot (B, classes)), dropout off."""
        return self._accuracy(*self._checked_batch(x, t))

    def _checked_batch(self, x: Any, t: Any) -> tuple[Any, Any]:
        """Flat x (B, features) and labels or one-hot t as the trusted internals take them."""
        x = self._checked_x(x)
        return x, inputs.labels(to_device(t, self.device), x.shape[0], self.classes)

    @on_its_device
    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients keyed by ``param_names`` for flat x (B, features) and labels
        or one-hot t, on the net's device: the ones its training runs (``_loss_and_gradient``:
        the weight decay's ``λ * W`` included; dropout on, with the next training step's
        masks, and like a step it moves the dropout streams on by one iteration)."""
        return self._loss_and_gradient(*self._checked_batch(x, t))[1]

    @on_its_device
    def numerical_gradient(self, x: Any, t: Any, *, method: str = "fused") -> dict[str, Any]:
        """Central-difference gradients (h = 1e-4) of the book's loss (weight decay
        included; dropout with the next training step's masks, held fixed), keyed by
        ``param_names``, on the net's device.

        ``method="fused"``: MultiLayerNet through the fused kernel (float64 inside); the
        conv nets have none, so it is the book's loop, two forward passes per parameter
        (small nets only). ``method="generic"``: the book's loop for every net.
        """
        fuses = _gradient_check.fuses(method)  # the method checked before the samples
        x, labels = self._checked_batch(x, t)
        if fuses:
            return self._numerical_gradient(x, labels)
        return _gradient_check.loop(lambda: self._loss(x, labels), self.params,
                                    self.param_names)

    def __repr__(self) -> str:
        return f"{self.describe()} # dtype={self.dtype.name}, device='{self.device}'"
