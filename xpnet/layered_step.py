"""The training step of the book's layered nets (chapters 6 to 8) in buffers, for CUDA graphs.

A CUDA graph replays the same kernels on the same addresses, so a step it captures must
allocate nothing, read nothing from the host and keep all that changes between steps in
device memory, updated in place. ``LayeredStep`` is that step for ``MultiLayerNet``,
``SimpleConvNet`` and ``DeepConvNet`` (Affine, Relu, Sigmoid, Convolution, Pooling,
Dropout, SoftmaxWithLoss, weight decay) and the six optimizers of
``xpnet.common.optimizer``: forward, loss, backward and update written with ``out=`` and in
place into buffers made once, in the order of operations of ``xpnet.common``'s layers, so
float64 numbers are those of the eager ``_loss_and_gradient`` + ``optimizer.update``.

It works on NumPy arrays too (no stream, no graph), which is how the CPU tests compare it
with the eager book net.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .backend import GraphedStep, get_array_module, new_stream, use_device
from .common import optimizer as optimizers
from .common.layers import (
    Affine,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
)
from .counter_random import Draw, stream_start
from .kernels import DELTA

F64 = np.dtype(np.float64)


def _dtype(*arrays_or_dtypes: Any) -> np.dtype:
    return np.result_type(*(getattr(a, "dtype", a) for a in arrays_or_dtypes))


def _param_name(params: Mapping[str, Any], array: Any) -> str:
    """The key under which ``params`` holds ``array`` (the very object)."""
    for key, value in params.items():
        if value is array:
            return key
    raise ValueError("a layer holds a weight that is not in the net's params")


def _out_size(size: int, filter_size: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - filter_size) // stride + 1


class _Im2col:
    """``xpnet.common.util.im2col`` of one fixed input into one fixed buffer ``col``, in
    the input's dtype (the layers cast im2col's float64 back to it: the same values)."""

    def __init__(self, xp: Any, x: Any, fh: int, fw: int, stride: int, pad: int) -> None:
        n, c, h, w = x.shape
        oh, ow = _out_size(h, fh, stride, pad), _out_size(w, fw, stride, pad)
        self.xp, self.x, self.inner = xp, x, None
        padded = x
        if pad:  # the border is zeroed once; each step copies the image inside it
            padded = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
            self.inner = padded[:, :, pad:pad + h, pad:pad + w]
        patches = xp.empty((n, oh, ow, c, fh, fw), dtype=x.dtype)
        self.pairs = [
            (patches[..., dy, dx],
             padded[:, :, dy:dy + stride * oh:stride, dx:dx + stride * ow:stride]
             .transpose(0, 2, 3, 1))
            for dy in range(fh) for dx in range(fw)]
        self.col = patches.reshape(n * oh * ow, -1)
        self.out_hw = oh, ow

    def run(self) -> None:
        if self.inner is not None:
            self.xp.copyto(self.inner, self.x)
        for dst, src in self.pairs:
            self.xp.copyto(dst, src)


class _Col2im:
    """``xpnet.common.util.col2im`` of one fixed ``col`` into one fixed image: summed in
    float64, ``out`` in ``dtype`` (a copy when that is not float64), as the layers return it."""

    def __init__(self, xp: Any, col: Any, shape: tuple[int, ...], fh: int, fw: int,
                 stride: int, pad: int, dtype: np.dtype) -> None:
        n, c, h, w = shape
        oh, ow = _out_size(h, fh, stride, pad), _out_size(w, fw, stride, pad)
        patches = col.reshape(n, oh, ow, c, fh, fw)
        self.xp = xp
        self.image = xp.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1))
        self.pairs = [
            (self.image[:, :, dy:dy + stride * oh:stride, dx:dx + stride * ow:stride],
             patches[..., dy, dx].transpose(0, 3, 1, 2))
            for dy in range(fh) for dx in range(fw)]
        self.sums = self.image[:, :, pad:h + pad, pad:w + pad]
        self.out = self.sums if dtype == F64 else xp.empty(shape, dtype=dtype)

    def run(self) -> None:
        self.image.fill(0)
        for dst, src in self.pairs:
            self.xp.add(dst, src, out=dst)
        if self.out is not self.sums:
            self.xp.copyto(self.out, self.sums, casting="unsafe")


class _AffineStep:
    def __init__(self, xp: Any, layer: Affine, x: Any) -> None:
        self.xp, self.W, self.b, self.source = xp, layer.W, layer.b, None
        n = x.shape[0]
        if x.flags.c_contiguous:
            self.x = x.reshape(n, -1)
        else:  # the book's reshape copies a strided input
            self.x = xp.empty((n, x.size // n), dtype=x.dtype)
            self.source, self.x_as_source = x, self.x.reshape(x.shape)
        self.in_shape = x.shape
        self.out = xp.empty((n, self.W.shape[1]), dtype=_dtype(x, self.W, self.b))

    def forward(self) -> None:
        xp = self.xp
        if self.source is not None:
            xp.copyto(self.x_as_source, self.source)
        xp.dot(self.x, self.W, out=self.out)
        self.out += self.b

    def wire_backward(self, dout: Any, need_dx: bool) -> Any:
        xp = self.xp
        self.dout = dout
        self.dW = xp.empty(self.W.shape, dtype=_dtype(self.x, dout))
        self.db = xp.empty(self.b.shape, dtype=dout.dtype)
        self.dx = xp.empty(self.x.shape, dtype=_dtype(dout, self.W)) if need_dx else None
        return None if self.dx is None else self.dx.reshape(self.in_shape)

    def backward(self) -> None:
        xp = self.xp
        if self.dx is not None:
            xp.dot(self.dout, self.W.T, out=self.dx)
        xp.dot(self.x.T, self.dout, out=self.dW)
        xp.sum(self.dout, axis=0, out=self.db)


class _ReluStep:
    def __init__(self, xp: Any, layer: Relu, x: Any) -> None:
        self.xp, self.x = xp, x
        self.mask = xp.empty(x.shape, dtype=bool)
        self.out = xp.empty(x.shape, dtype=x.dtype)
        self.zero = xp.zeros((), dtype=x.dtype)

    def forward(self) -> None:
        xp = self.xp
        xp.less_equal(self.x, 0, out=self.mask)
        xp.copyto(self.out, self.x)
        xp.copyto(self.out, self.zero, where=self.mask)

    def wire_backward(self, dout: Any, need_dx: bool) -> Any:
        self.dout = dout
        return dout  # zeroed in place, as the book's backward reuses dout

    def backward(self) -> None:
        self.xp.copyto(self.dout, self.zero, where=self.mask)


class _SigmoidStep:
    def __init__(self, xp: Any, layer: Sigmoid, x: Any) -> None:
        self.xp, self.x = xp, x
        self.out = xp.empty(x.shape, dtype=x.dtype)

    def forward(self) -> None:
        xp, out = self.xp, self.out
        xp.negative(self.x, out=out)
        with np.errstate(over="ignore"):  # exp(-x) -> inf gives the right limit, 0
            xp.exp(out, out=out)
        out += 1
        xp.true_divide(1, out, out=out)

    def wire_backward(self, dout: Any, need_dx: bool) -> Any:
        xp = self.xp
        self.dout = dout
        self.slope = xp.empty(self.out.shape, dtype=self.out.dtype)
        self.dx = xp.empty(dout.shape, dtype=_dtype(dout, self.out))
        return self.dx

    def backward(self) -> None:
        xp = self.xp
        xp.subtract(1.0, self.out, out=self.slope)
        xp.multiply(self.dout, self.slope, out=self.dx)
        self.dx *= self.out


class _DropoutStep:
    """The spec's dropout rule: the mask of Dropout layer ``k`` at iteration ``i`` comes
    from counter ``stream_start(seed, k, i, n)``; the Draw's counter advances on the device."""

    def __init__(self, xp: Any, layer: Dropout, x: Any, seed: int, k: int) -> None:
        self.xp, self.x, self.ratio = xp, x, layer.dropout_ratio
        self.seed, self.k, self.n = seed, k, x.size
        self.draw = Draw(x, x.size, stream_start(seed, k, 0, x.size))
        self.u = self.draw.out.reshape(x.shape)
        self.mask = xp.empty(x.shape, dtype=bool)
        self.out = xp.empty(x.shape, dtype=x.dtype)

    def seek(self, iteration: int) -> None:
        self.draw.seek(stream_start(self.seed, self.k, iteration, self.n))

    def forward(self) -> None:
        xp = self.xp
        self.draw.uniform()
        xp.greater(self.u, self.ratio, out=self.mask)
        xp.multiply(self.x, self.mask, out=self.out)

    def wire_backward(self, dout: Any, need_dx: bool) -> Any:
        self.dout = dout
        self.dx = self.xp.empty(dout.shape, dtype=dout.dtype)
        return self.dx

    def backward(self) -> None:
        self.xp.multiply(self.dout, self.mask, out=self.dx)


class _ConvolutionStep:
    def __init__(self, xp: Any, layer: Convolution, x: Any) -> None:
        self.xp, self.W, self.b = xp, layer.W, layer.b
        filters, _, fh, fw = self.W.shape
        self.geometry = fh, fw, layer.stride, layer.pad
        self.in_shape = x.shape
        self.im2col = _Im2col(xp, x, fh, fw, layer.stride, layer.pad)
        oh, ow = self.im2col.out_hw
        self.col_W = self.W.reshape(filters, -1).T
        self.rows_out = xp.empty((x.shape[0] * oh * ow, filters),
                                 dtype=_dtype(self.im2col.col, self.W, self.b))
        self.out = self.rows_out.reshape(x.shape[0], oh, ow, filters).transpose(0, 3, 1, 2)

    def forward(self) -> None:
        self.im2col.run()
        self.xp.dot(self.im2col.col, self.col_W, out=self.rows_out)
        self.rows_out += self.b

    def wire_backward(self, dout: Any, need_dx: bool) -> Any:
        xp, W = self.xp, self.W
        filters = W.shape[0]
        self.dout = dout
        self.rows = xp.empty(self.rows_out.shape, dtype=dout.dtype)
        self.rows_nhwc = self.rows.reshape(self.out.transpose(0, 2, 3, 1).shape)
        self.db = xp.empty(filters, dtype=dout.dtype)
        self.dW_t = xp.empty((self.col_W.shape[0], filters),
                             dtype=_dtype(self.im2col.col, dout))
        self.dW = xp.empty(W.shape, dtype=self.dW_t.dtype)
        self.col2im = None
        if need_dx:
            self.dcol = xp.empty(self.im2col.col.shape, dtype=_dtype(dout, W))
            self.col2im = _Col2im(xp, self.dcol, self.in_shape, *self.geometry, dout.dtype)
            return self.col2im.out
        return None

    def backward(self) -> None:
        xp = self.xp
        xp.copyto(self.rows_nhwc, self.dout.transpose(0, 2, 3, 1))
        xp.sum(self.rows, axis=0, out=self.db)
        xp.dot(self.im2col.col.T, self.rows, out=self.dW_t)
        xp.copyto(self.dW.reshape(self.W.shape[0], -1), self.dW_t.T)
        if self.col2im is not None:
            xp.dot(self.rows, self.col_W.T, out=self.dcol)
            self.col2im.run()


class _PoolingStep:
    def __init__(self, xp: Any, layer: Pooling, x: Any) -> None:
        self.xp = xp
        ph, pw, stride, pad = layer.pool_h, layer.pool_w, layer.stride, layer.pad
        self.geometry, self.in_shape = (ph, pw, stride, pad), x.shape
        self.im2col = _Im2col(xp, x, ph, pw, stride, pad)
        self.windows = self.im2col.col.reshape(-1, ph * pw)
        self.arg_max = xp.empty(self.windows.shape[0], dtype=np.intp)
        self.max = xp.empty(self.windows.shape[0], dtype=x.dtype)
        n, c = x.shape[:2]
        self.out = self.max.reshape(n, *self.im2col.out_hw, c).transpose(0, 3, 1, 2)

    def forward(self) -> None:
        xp = self.xp
        self.im2col.run()
        xp.argmax(self.windows, axis=1, out=self.arg_max)
        xp.max(self.windows, axis=1, out=self.max)

    def wire_backward(self, dout: Any, need_dx: bool) -> Any:
        xp = self.xp
        self.dout = dout
        self.dout_nhwc = xp.empty(dout.transpose(0, 2, 3, 1).shape, dtype=dout.dtype)
        self.dout_column = self.dout_nhwc.reshape(-1, 1)
        self.slots = xp.arange(self.windows.shape[1], dtype=np.intp)
        self.winner_column = self.arg_max.reshape(-1, 1)
        self.winner = xp.empty(self.windows.shape, dtype=bool)
        self.dmax = xp.empty(self.windows.shape, dtype=dout.dtype)
        dcol = self.dmax.reshape(self.im2col.col.shape)
        self.col2im = _Col2im(xp, dcol, self.in_shape, *self.geometry, dout.dtype)
        return self.col2im.out

    def backward(self) -> None:
        xp = self.xp
        # each output's gradient goes to the one input that won its window
        xp.copyto(self.dout_nhwc, self.dout.transpose(0, 2, 3, 1))
        xp.equal(self.slots, self.winner_column, out=self.winner)
        self.dmax.fill(0)
        xp.copyto(self.dmax, self.dout_column, where=self.winner)
        self.col2im.run()


class _SoftmaxWithLossStep:
    """Softmax, the book's cross-entropy (``loss``, 0-d) and ``dx = (y - onehot(t)) / B``."""

    def __init__(self, xp: Any, scores: Any, labels: Any) -> None:
        b, c = scores.shape
        dt = scores.dtype
        self.xp, self.scores, self.labels = xp, scores, labels
        self.top, self.total = xp.empty((b, 1), dtype=dt), xp.empty((b, 1), dtype=dt)
        self.e, self.y = xp.empty((b, c), dtype=dt), xp.empty((b, c), dtype=dt)
        self.row_starts = xp.arange(0, b * c, c, dtype=np.intp)
        self.flat = xp.empty(b, dtype=np.intp)
        self.picked = xp.empty(b, dtype=dt)
        self.loss = xp.empty((), dtype=dt)
        self.classes = xp.arange(c, dtype=np.intp)
        self.label_column = labels.reshape(-1, 1)
        self.onehot = xp.empty((b, c), dtype=bool)
        self.dx = xp.empty((b, c), dtype=dt)

    def forward(self) -> None:
        xp, b = self.xp, self.scores.shape[0]
        xp.max(self.scores, axis=-1, keepdims=True, out=self.top)
        xp.subtract(self.scores, self.top, out=self.e)
        xp.exp(self.e, out=self.e)
        xp.sum(self.e, axis=-1, keepdims=True, out=self.total)
        xp.true_divide(self.e, self.total, out=self.y)
        xp.add(self.row_starts, self.labels, out=self.flat)
        xp.take(self.y, self.flat, out=self.picked)
        self.picked += DELTA
        xp.log(self.picked, out=self.picked)
        xp.sum(self.picked, out=self.loss)
        xp.negative(self.loss, out=self.loss)
        self.loss /= b

    def backward(self) -> None:
        xp = self.xp
        xp.equal(self.classes, self.label_column, out=self.onehot)
        xp.subtract(self.y, self.onehot, out=self.dx)
        self.dx /= self.scores.shape[0]


class ChunkFeed:
    """A step's batch for a graph: the chunk's indices and two counters on the device.

    A captured step replays the same gather on the same addresses, so what changes from
    step to step lives in device arrays: ``slot`` (where this step's indices are in the
    chunk's ``batches``; ``gather`` advances it) and ``loss_slot`` (this step's place in
    the chunk: its loss's index, Adam's step size; the step advances it when done).
    ``gather`` fills ``xb`` (B, features) and ``tb`` (B,) from ``x`` and ``labels``.
    """

    def __init__(self, xp: Any, x: Any, labels: Any, *, batch_size: int,
                 chunk_length: int) -> None:
        b = batch_size
        self.xp, self.x, self.labels, self.batch_size = xp, x, labels, b
        self.batches = xp.zeros(chunk_length * b, dtype=np.int64)
        self.lanes = xp.arange(b, dtype=np.int64)
        self.slot = xp.zeros(b, dtype=np.int64)
        self.loss_slot = xp.zeros(1, dtype=np.int64)
        self.index = xp.empty(b, dtype=np.int64)
        self.xb = xp.empty((b, x.shape[1]), dtype=x.dtype)
        self.tb = xp.empty(b, dtype=labels.dtype)

    def start(self, batches: np.ndarray, offset: int) -> None:
        """Upload a chunk's (L, B) indices (one copy) and point the counters at step
        ``offset`` of it; on the caller's stream."""
        _upload(self.batches, np.ascontiguousarray(batches.reshape(-1), dtype=np.int64))
        self.xp.add(self.lanes, offset * self.batch_size, out=self.slot)
        self.loss_slot.fill(offset)

    def gather(self) -> None:
        xp = self.xp
        xp.take(self.batches, self.slot, out=self.index)
        self.slot += self.batch_size
        xp.take(self.x, self.index, axis=0, out=self.xb)
        xp.take(self.labels, self.index, out=self.tb)


def _upload(device_array: Any, host: np.ndarray) -> None:
    """Copy ``host`` into ``device_array`` (NumPy or CuPy) in place: its address stays."""
    if get_array_module(device_array) is np:
        device_array[...] = host
    else:
        device_array.set(host)


_LAYERS = {Affine: _AffineStep, Relu: _ReluStep, Sigmoid: _SigmoidStep,
           Convolution: _ConvolutionStep, Pooling: _PoolingStep}


class _Update:
    """One optimizer's ``update`` in place, on its own state arrays (made here if None)."""

    def __init__(self, xp: Any, opt: Any, params: dict[str, Any], grads: dict[str, Any],
                 chunk_length: int) -> None:
        self.xp, self.opt, self.params, self.grads = xp, opt, params, grads
        self.kind = type(opt)
        if self.kind not in optimizers.SLOTS:
            raise TypeError(f"no in-place update for {type(opt).__name__}: use one of "
                            "xpnet.common.optimizer's six")
        for slot in optimizers.SLOTS[self.kind]:  # made now: a capture allocates nothing
            if getattr(opt, slot) is None:
                setattr(opt, slot, {k: xp.zeros_like(p) for k, p in params.items()})
        # every gradient has its parameter's dtype, so the eager expressions' terms do too
        self.temp = {k: (xp.empty_like(p), xp.empty_like(p), xp.empty_like(p))
                     for k, p in params.items()}
        self.adam = self.kind is optimizers.Adam
        if self.adam:  # its step size changes every step: a chunk's, picked on the device
            dt = next(iter(params.values())).dtype
            self.step_sizes = xp.zeros(chunk_length, dtype=dt)
            self.step_now = xp.empty(1, dtype=dt)

    def step_sizes_from(self, offset: int) -> np.ndarray:
        """Adam's step size for slots ``offset..``, as its ``update`` computes them."""
        opt = self.opt
        b1, b2 = opt.beta1, opt.beta2
        sizes = np.zeros(self.step_sizes.shape[0], dtype=self.step_sizes.dtype)
        for slot in range(offset, sizes.shape[0]):
            it = opt.iter + 1 + slot - offset
            sizes[slot] = opt.lr * math.sqrt(1.0 - b2**it) / (1.0 - b1**it)
        return sizes

    def run(self, slot: Any) -> None:
        xp, opt, kind = self.xp, self.opt, self.kind
        if self.adam:
            xp.take(self.step_sizes, slot, out=self.step_now)
        for key, p in self.params.items():
            g, (t, tp, up) = self.grads[key], self.temp[key]
            if kind is optimizers.SGD:
                xp.multiply(g, opt.lr, out=t)
                p -= t
            elif kind is optimizers.Momentum:
                v = opt.v[key]
                v *= opt.momentum
                xp.multiply(g, opt.lr, out=t)
                v -= t
                p += v
            elif kind is optimizers.Nesterov:
                mu, lr, v = opt.momentum, opt.lr, opt.v[key]
                xp.multiply(v, mu * mu, out=tp)
                p += tp
                xp.multiply(g, (1 + mu) * lr, out=t)
                p -= t
                v *= mu
                xp.multiply(g, lr, out=t)
                v -= t
            elif kind is optimizers.Adam:
                b1, b2, m, v = opt.beta1, opt.beta2, opt.m[key], opt.v[key]
                xp.subtract(g, m, out=t)
                t *= 1 - b1
                m += t
                xp.power(g, 2, out=t)
                t -= v
                t *= 1 - b2
                v += t
                xp.multiply(m, self.step_now, out=tp)
                self._divide_by_root(v, tp, up)
                p -= tp
            else:  # AdaGrad, RMSprop
                h = opt.h[key]
                if kind is optimizers.RMSprop:
                    h *= opt.decay_rate
                    xp.multiply(g, 1 - opt.decay_rate, out=t)
                    t *= g
                else:
                    xp.multiply(g, g, out=t)
                h += t
                xp.multiply(g, opt.lr, out=t)
                self._divide_by_root(h, t, up)
                p -= t

    def _divide_by_root(self, h: Any, t: Any, u: Any) -> None:
        """``t /= sqrt(h) + EPS``."""
        self.xp.sqrt(h, out=u)
        u += optimizers.EPS
        t /= u


class LayeredStep:
    """One training step of a book net (``nets.BookNet``) in buffers: see the module doc.

    Same protocol as ``trainer._DeviceStep``: ``x`` (N, features) and ``labels`` (N,) are
    the whole training set on the net's device; ``start_chunk`` uploads a chunk's (L, B)
    batch indices (and Adam's step sizes) once; each call is one step, whose loss goes to
    ``losses[offset]``, ``losses[offset + 1]``, ... through a device counter. With
    ``graph`` (CUDA only) the first step runs eagerly, the second is captured and every
    later one is one launch of that graph. The step updates ``network.params`` and the
    optimizer's state arrays in place (keep them: the graph holds their addresses) and
    counts Adam's ``iter`` on the host.
    """

    def __init__(self, network: Any, optimizer: Any, x: Any, labels: Any, *,
                 batch_size: int, chunk_length: int, losses: Any, graph: bool) -> None:
        xp = get_array_module(x)
        self.xp, self.network, self.optimizer = xp, network, optimizer
        self.x, self.labels, self.losses = x, labels, losses
        self.batch_size = batch_size
        with use_device(network.device):
            if xp is np:
                self.stream: Any = contextlib.nullcontext()
            else:
                self.stream = new_stream(network.device)
            self._build(chunk_length)
        self.replay = GraphedStep(self.stream, self.step, graph=graph and xp is not np)

    def _build(self, chunk_length: int) -> None:
        xp, net, b = self.xp, self.network, self.batch_size
        params = net.params
        self.feed = feed = ChunkFeed(xp, self.x, self.labels, batch_size=b,
                                     chunk_length=chunk_length)
        h = feed.xb if net.input_shape is None else feed.xb.reshape(b, *net.input_shape)
        self.layers, self.dropouts, self.affines = [], [], []
        for layer in net.layers:
            if isinstance(layer, Dropout):
                step = _DropoutStep(xp, layer, h, net.seed, len(self.dropouts))
                self.dropouts.append(step)
            else:
                step = _LAYERS[type(layer)](xp, layer, h)
                if isinstance(layer, Affine):
                    self.affines.append(step)
            self.layers.append(step)
            h = step.out
        self.last = _SoftmaxWithLossStep(xp, h, feed.tb)
        dout = self.last.dx
        for position in range(len(self.layers) - 1, -1, -1):
            dout = self.layers[position].wire_backward(dout, need_dx=position > 0)
        self.loss = xp.empty((), dtype=self.last.loss.dtype)
        grads = {}
        for step in self.layers:
            if hasattr(step, "dW"):
                grads[_param_name(params, step.W)] = step.dW
                grads[_param_name(params, step.b)] = step.db
        self.decay = net.decayed_count > 0  # the weight-decayed W1..Wn, as the net says
        if self.decay:
            self.lam = float(net.weight_decay)
            self.squares = [xp.empty(s.W.shape, dtype=s.W.dtype) for s in self.affines]
            self.square_sums = [xp.empty((), dtype=s.W.dtype) for s in self.affines]
            self.penalty = xp.empty((), dtype=self.affines[0].W.dtype)
            self.decayed = [_param_name(params, s.W) for s in self.affines]
            for step, name in zip(self.affines, self.decayed, strict=True):
                grads[name] = xp.empty(step.W.shape, dtype=_dtype(step.dW, step.W))
        self.grads = {k: grads[k] for k in params}
        self.update = _Update(xp, self.optimizer, params, self.grads, chunk_length)

    def start_chunk(self, batches: np.ndarray, offset: int, iteration: int) -> None:
        """Upload a chunk's (L, B) indices (one copy; Adam: one more for its step sizes) and
        point the counters at step ``offset`` of it, iteration ``iteration`` of the run."""
        with self.stream:
            self.feed.start(batches, offset)
            if self.update.adam:
                _upload(self.update.step_sizes, self.update.step_sizes_from(offset))
            for dropout in self.dropouts:
                dropout.seek(iteration)

    def __call__(self) -> None:
        """One step: eager, captured after the first (with ``graph``), then replayed."""
        self.replay()
        if self.update.adam:
            self.optimizer.iter += 1

    @property
    def graph(self) -> Any:
        return self.replay.graph

    def step(self) -> None:
        """The step's kernels, written into the buffers (what a capture records)."""
        xp, feed = self.xp, self.feed
        feed.gather()
        for layer in self.layers:
            layer.forward()
        self.last.forward()
        if self.decay:
            self.penalty.fill(0)
            for step, square, total in zip(self.affines, self.squares, self.square_sums,
                                           strict=True):
                xp.power(step.W, 2, out=square)
                xp.sum(square, out=total)
                total *= 0.5 * self.lam
                self.penalty += total
            xp.add(self.last.loss, self.penalty, out=self.loss)
        else:
            xp.copyto(self.loss, self.last.loss)
        self.losses.put(feed.loss_slot, self.loss)
        self.last.backward()
        for layer in reversed(self.layers):
            layer.backward()
        if self.decay:
            for step, square, name in zip(self.affines, self.squares, self.decayed, strict=True):
                xp.multiply(step.W, self.lam, out=square)
                xp.add(step.dW, square, out=self.grads[name])
        self.update.run(feed.loss_slot)
        feed.loss_slot += 1
