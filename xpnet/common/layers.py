"""The book's layers (chapters 5 to 7): ``forward`` and ``backward`` on NumPy or CuPy.

Each layer computes on the array module of what it is given and keeps its buffers
(masks, inputs, running statistics) on that device. Weights are held by reference, so
an optimizer updating a net's ``params`` in place updates its layers too. The
arithmetic follows the book's order, so float64 results are the book's to the bit.

The star import hands on what the book's does: these classes, ``im2col``/``col2im``,
the functions of ``common.functions`` and ``np``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.backend import get_array_module
from xpnet.functions import *  # noqa: F403  (the book's layers module hands these on)
from xpnet.functions import __all__ as _function_names
from xpnet.functions import cross_entropy_error, sigmoid, softmax

from .util import col2im, im2col, onto_device_of

__all__ = [*_function_names, "im2col", "col2im", "Relu", "Sigmoid", "Affine",
           "SoftmaxWithLoss", "Dropout", "BatchNormalization", "Convolution", "Pooling"]

BN_EPS = 10e-7  # the book's constant inside sqrt(var + eps), as it writes it


def _same_dtype(a: Any, like: Any) -> Any:
    """``a`` in ``like``'s dtype: im2col and col2im work in float64 (the book's), so a
    float32 net stays float32 (a no-op for float64)."""
    return a.astype(like.dtype, copy=False)


class Relu:
    """``max(0, x)``; ``mask`` marks where the input was <= 0."""

    def __init__(self) -> None:
        self.mask = None

    def forward(self, x: Any) -> Any:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: Any) -> Any:
        """The gradient, zero where the input was <= 0. Like the book, ``dout`` is reused."""
        dout[self.mask] = 0
        return dout


class Sigmoid:
    """``1 / (1 + exp(-x))``; ``out`` keeps the result for the backward pass."""

    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Any) -> Any:
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout * (1.0 - self.out) * self.out


class Affine:
    """``x @ W + b`` for x of any shape (N, ...), flattened to (N, D) on the way in.

    ``dW`` and ``db`` hold the gradients after ``backward``; ``x`` the flattened input,
    ``original_x_shape`` its shape as given (``backward`` returns dx in that shape).
    """

    def __init__(self, W: Any, b: Any) -> None:
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x, self.W)
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return xp.dot(self.x, self.W) + self.b

    def backward(self, dout: Any) -> Any:
        xp = get_array_module(dout, self.W)
        dx = xp.dot(dout, self.W.T)
        self.dW = xp.dot(self.x.T, dout)
        self.db = xp.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


def _label_column_flat(t: Any, y: Any) -> Any:
    """Labels given as a column (N, 1) read as (N,); anything else as it is."""
    if t.size != y.size and t.ndim == 2 and t.shape[1] == 1:
        return t.reshape(-1)
    return t


class SoftmaxWithLoss:
    """Softmax, then the book's cross-entropy against labels (N,) or one-hot ``t`` (N, C).

    ``y`` keeps the probabilities, ``t`` the targets as given, ``loss`` the value.
    ``backward`` returns ``(y - onehot(t)) / N``.
    """

    def __init__(self) -> None:
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x: Any, t: Any) -> Any:
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, _label_column_flat(t, self.y))
        return self.loss

    def backward(self, dout: Any = 1) -> Any:
        xp = get_array_module(self.y)
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:  # one-hot targets
            return (self.y - self.t) / batch_size
        dx = self.y.copy()
        dx[xp.arange(batch_size), _label_column_flat(self.t, self.y)] -= 1
        return dx / batch_size


class Dropout:
    """Srivastava et al.'s dropout: in training each unit is dropped with ``dropout_ratio``.

    The mask is drawn from NumPy's global generator (``np.random.seed`` gives the book's
    masks) and moved to the input's device. A run sets ``source``, a callable giving
    ``x.size`` float64 uniforms on ``x``'s device for an input ``x`` (xpnet.nets draws them
    from a counter, the same on every device); the mask is then ``u > dropout_ratio``.
    Outside training, outputs are scaled by ``1 - dropout_ratio``.
    """

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.mask = None
        self.source = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        if not train_flg:
            return x * (1.0 - self.dropout_ratio)
        if self.source is not None:
            self.mask = self.source(x).reshape(x.shape) > self.dropout_ratio
        else:
            keep = np.random.rand(*x.shape) > self.dropout_ratio  # noqa: NPY002
            self.mask = onto_device_of(keep, x)
        return x * self.mask

    def backward(self, dout: Any) -> Any:
        return dout * self.mask


class BatchNormalization:
    """Ioffe and Szegedy's batch normalization over the batch axis, scaled by ``gamma``
    and shifted by ``beta``.

    Inputs (N, D), or (N, C, H, W) normalised per flattened feature. Training updates
    ``running_mean``/``running_var`` with ``momentum``; they start as zeros of the
    first input's width on its device. After ``backward``: ``dgamma``, ``dbeta``.
    """

    def __init__(self, gamma: Any, beta: Any, momentum: float = 0.9,
                 running_mean: Any = None, running_var: Any = None) -> None:
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.input_shape = None
        self.running_mean = running_mean
        self.running_var = running_var
        # What backward needs from the last training forward pass.
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None
        self.dgamma = None
        self.dbeta = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        self.input_shape = x.shape
        flat = x.reshape(x.shape[0], -1) if x.ndim != 2 else x
        return self._forward(flat, train_flg).reshape(*self.input_shape)

    def _forward(self, x: Any, train_flg: bool) -> Any:
        xp = get_array_module(x)
        if self.running_mean is None:
            self.running_mean = xp.zeros(x.shape[1])
            self.running_var = xp.zeros(x.shape[1])
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = xp.mean(xc**2, axis=0)
            std = xp.sqrt(var + BN_EPS)
            xn = xc / std
            self.batch_size, self.xc, self.xn, self.std = x.shape[0], xc, xn, std
            keep = self.momentum
            self.running_mean = keep * self.running_mean + (1 - keep) * mu
            self.running_var = keep * self.running_var + (1 - keep) * var
        else:
            xc = x - self.running_mean
            xn = xc / xp.sqrt(self.running_var + BN_EPS)
        return self.gamma * xn + self.beta

    def backward(self, dout: Any) -> Any:
        flat = dout.reshape(dout.shape[0], -1) if dout.ndim != 2 else dout
        return self._backward(flat).reshape(*self.input_shape)

    def _backward(self, dout: Any) -> Any:
        xp = get_array_module(dout)
        n, std, xc = self.batch_size, self.std, self.xc
        self.dbeta = dout.sum(axis=0)
        self.dgamma = xp.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / std
        dstd = -xp.sum((dxn * xc) / (std * std), axis=0)
        dvar = 0.5 * dstd / std
        dxc += (2.0 / n) * xc * dvar
        dmu = xp.sum(dxc, axis=0)
        return dxc - dmu / n


class Convolution:
    """2-D convolution of (N, C, H, W) inputs with filters ``W`` (FN, C, FH, FW) and
    bias ``b`` (FN,), through ``im2col``. Output (N, FN, out_h, out_w).

    ``x``, ``col`` and ``col_W`` are kept for ``backward``; then ``dW`` and ``db``.
    """

    def __init__(self, W: Any, b: Any, stride: int = 1, pad: int = 0) -> None:
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x = None
        self.col = None
        self.col_W = None
        self.dW = None
        self.db = None

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x, self.W)
        filters, _, fh, fw = self.W.shape
        n, _, h, w = x.shape
        out_h = 1 + int((h + 2 * self.pad - fh) / self.stride)
        out_w = 1 + int((w + 2 * self.pad - fw) / self.stride)
        self.x = x
        self.col = _same_dtype(im2col(x, fh, fw, self.stride, self.pad), x)
        self.col_W = self.W.reshape(filters, -1).T
        out = xp.dot(self.col, self.col_W) + self.b
        return out.reshape(n, out_h, out_w, -1).transpose(0, 3, 1, 2)

    def backward(self, dout: Any) -> Any:
        xp = get_array_module(dout, self.W)
        filters, channels, fh, fw = self.W.shape
        rows = dout.transpose(0, 2, 3, 1).reshape(-1, filters)
        self.db = xp.sum(rows, axis=0)
        self.dW = xp.dot(self.col.T, rows).transpose(1, 0).reshape(filters, channels, fh, fw)
        dcol = xp.dot(rows, self.col_W.T)
        return _same_dtype(col2im(dcol, self.x.shape, fh, fw, self.stride, self.pad), dout)


class Pooling:
    """Max pooling over ``pool_h`` x ``pool_w`` windows; ``arg_max`` records the winners.

    Like the book, the output size is computed without ``pad``; pass ``pad=0``.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x = None
        self.arg_max = None

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        n, c, h, w = x.shape
        out_h = int(1 + (h - self.pool_h) / self.stride)
        out_w = int(1 + (w - self.pool_w) / self.stride)
        windows = _same_dtype(im2col(x, self.pool_h, self.pool_w, self.stride, self.pad), x)
        windows = windows.reshape(-1, self.pool_h * self.pool_w)
        self.x = x
        self.arg_max = xp.argmax(windows, axis=1)
        out = xp.max(windows, axis=1)
        return out.reshape(n, out_h, out_w, c).transpose(0, 3, 1, 2)

    def backward(self, dout: Any) -> Any:
        xp = get_array_module(dout)
        dout = dout.transpose(0, 2, 3, 1)
        size = self.pool_h * self.pool_w
        # Each output's gradient goes to the one input that won its window.
        dmax = xp.zeros((dout.size, size), dtype=dout.dtype)
        dmax[xp.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dcol = dmax.reshape(dout.shape[0] * dout.shape[1] * dout.shape[2], -1)
        return _same_dtype(
            col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad), dout)
