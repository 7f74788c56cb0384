"""CuPy's module functions on the stand-in's arrays (only names CuPy 14 has: see _names.json)."""

from __future__ import annotations

import numpy

from . import _standin as sd
from ._core import _check_device, host_write, launch, ndarray, new_array, routine

__all__: list[str] = []  # filled below; cupy/__init__ re-exports every name listed


def export(func):
    __all__.append(func.__name__)
    return func


# ------------------------------------------------------------------------ ufuncs


class ufunc:  # noqa: N801 - CuPy's name
    """An elementwise kernel: ``ufunc(*inputs, out=None, dtype=None, casting=...)``."""

    def __init__(self, name: str, np_ufunc: numpy.ufunc) -> None:
        self.name = name
        self.__name__ = name
        self._np = np_ufunc
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def __repr__(self) -> str:
        return f"<ufunc '{self.name}'>"

    def __call__(self, *args, out=None, dtype=None, casting="same_kind", **kwargs):
        if isinstance(out, tuple):
            out = out[0] if len(out) == 1 else out
        if len(args) > self.nin and out is None:
            args, out = args[:self.nin], args[self.nin]
        if len(args) != self.nin:
            raise TypeError(f"Wrong number of arguments for {self.name}")
        if kwargs:
            raise TypeError(f"Wrong arguments {kwargs}")
        options = {"casting": casting}
        if dtype is not None:
            options["dtype"] = dtype
        return launch(self._np, args, options, out, strict=True)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        return launch(self._np.reduce, (array,),
                      {"axis": axis, "dtype": dtype, "keepdims": keepdims}, out, strict=True)

    def accumulate(self, array, axis=0, dtype=None, out=None):
        return launch(self._np.accumulate, (array,), {"axis": axis, "dtype": dtype}, out,
                      strict=True)

    def outer(self, A, B, **kwargs):
        return launch(self._np.outer, (A, B), kwargs, kwargs.pop("out", None), strict=True)

    def at(self, a, indices, b=None):
        _check_device(a, sd.current_device)
        args = (indices,) if b is None else (indices, b)
        launch(lambda x, *rest, out: self._np.at(out, *rest), (a, *args), out=a)


_UFUNCS = (
    "add subtract multiply divide true_divide floor_divide remainder mod fmod power "
    "float_power negative positive absolute fabs exp exp2 expm1 log log2 log10 log1p sqrt "
    "cbrt square reciprocal sign floor ceil trunc rint tanh sinh cosh arctanh arcsinh "
    "arccosh sin cos tan arcsin arccos arctan arctan2 hypot deg2rad rad2deg degrees "
    "radians maximum minimum fmax fmin greater greater_equal less less_equal equal "
    "not_equal logical_and logical_or logical_xor logical_not isnan isinf isfinite "
    "signbit copysign nextafter bitwise_and bitwise_or bitwise_xor invert bitwise_not "
    "left_shift right_shift heaviside logaddexp logaddexp2 conjugate conj ldexp frexp "
    "modf divmod gcd lcm"
).split()

for _name in _UFUNCS:
    globals()[_name] = ufunc(_name, getattr(numpy, _name))
    __all__.append(_name)
abs = globals()["absolute"]  # noqa: A001 - CuPy's alias
__all__.append("abs")


@export
def matmul(x1, x2, /, out=None, **kwargs):
    return launch(numpy.matmul, (x1, x2), kwargs, out, strict=True)


# ------------------------------------------------------- routines that keep out=

_ROUTINES = (
    "dot vdot inner outer tensordot kron cross trace cumsum cumprod diff einsum "
    "count_nonzero average nansum nanmean nanmax nanmin median percentile "
    "take_along_axis concatenate stack vstack hstack dstack column_stack tile "
    "where isclose array_equal allclose searchsorted sort argsort partition "
    "diag diagflat tril triu flip fliplr flipud roll rot90 "
    "around round cumulative_sum broadcast_arrays meshgrid histogram "
    "amax amin var std mean"
).split()
_DATA_SIZED = "unique bincount argwhere flatnonzero".split()  # the result's size: a read

for _name in _ROUTINES:
    if hasattr(numpy, _name):
        globals()[_name] = routine(_name)
        __all__.append(_name)
for _name in _DATA_SIZED:
    globals()[_name] = routine(_name, sync=True)
    __all__.append(_name)
del _name


@export
def where(condition, x=None, y=None):
    if x is None and y is None:
        return nonzero(condition)
    return launch(numpy.where, (condition, x, y))


@export
def clip(a, a_min=None, a_max=None, out=None, **kwargs):
    return a.clip(a_min, a_max, out=out, **kwargs)


@export
def copyto(dst, src, casting="same_kind", where=None):
    _check_device(dst, sd.current_device)
    options = {"casting": casting} if where is None else {"casting": casting, "where": where}
    launch(lambda s, out, **kw: numpy.copyto(out, s, **kw), (src,), options, out=dst)


# CuPy's functions that are ``a.method(...)``: a NumPy array gets NumPy's answer.
def _delegate(name: str, method: str | None = None):
    method = method or name

    def call(a, *args, **kwargs):
        return getattr(a, method)(*args, **kwargs)

    call.__name__ = name
    __all__.append(name)
    return call


sum = _delegate("sum")  # noqa: A001
prod = _delegate("prod")
max = _delegate("max")  # noqa: A001
min = _delegate("min")  # noqa: A001
argmax = _delegate("argmax")
argmin = _delegate("argmin")
all = _delegate("all")  # noqa: A001
any = _delegate("any")  # noqa: A001
take = _delegate("take")
repeat = _delegate("repeat")
nonzero = _delegate("nonzero")
squeeze = _delegate("squeeze")
ravel = _delegate("ravel")
swapaxes = _delegate("swapaxes")
ptp = _delegate("ptp")
diagonal = _delegate("diagonal")
choose = _delegate("choose")
compress = _delegate("compress")


@export
def reshape(a, newshape=None, order="C", *, shape=None, copy=None):
    return a.reshape(newshape if shape is None else shape, order=order)


@export
def transpose(a, axes=None):
    return a.transpose(axes)


@export
def argsort(a, axis=-1, kind=None):
    return a.argsort(axis=axis)


# --------------------------------------------------------------------- views


def _view(name: str):
    np_func = getattr(numpy, name)

    def call(a, *args, **kwargs):
        _check_device(a, sd.current_device)
        return ndarray_view(a, np_func(a._a, *args, **kwargs))

    call.__name__ = name
    __all__.append(name)
    return call


def ndarray_view(base: ndarray, view: numpy.ndarray) -> ndarray:
    from ._core import view_of
    return view_of(base, view)


expand_dims = _view("expand_dims")
broadcast_to = _view("broadcast_to")
moveaxis = _view("moveaxis")
rollaxis = _view("rollaxis")


@export
def atleast_1d(*arys):
    res = [a if a.ndim >= 1 else a.reshape(1) for a in arys]
    return res[0] if len(res) == 1 else res


@export
def atleast_2d(*arys):
    res = [a if a.ndim >= 2 else a.reshape((1,) * (2 - a.ndim) + a.shape) for a in arys]
    return res[0] if len(res) == 1 else res


@export
def ndim(a):
    return a.ndim if isinstance(a, ndarray) else numpy.ndim(a)


@export
def shape(a):
    return a.shape if isinstance(a, ndarray) else numpy.shape(a)


@export
def size(a, axis=None):
    if isinstance(a, ndarray):
        return a.size if axis is None else a.shape[axis]
    return numpy.size(a, axis)


# ------------------------------------------------------------------ creation


def _creation(name: str):
    np_func = getattr(numpy, name)

    def call(*args, **kwargs):
        result = new_array(np_func(*args, **kwargs))
        if name != "empty":
            sd.submit(lambda: None)  # CuPy fills the new block with a kernel
        return result

    call.__name__ = name
    __all__.append(name)
    return call


for _name in "empty zeros ones full arange linspace logspace eye identity tri".split():
    globals()[_name] = _creation(_name)
del _name


def _like(name: str):
    np_func = getattr(numpy, name)

    def call(a, *args, **kwargs):
        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        form = numpy.empty(a.shape, dtype=a.dtype)  # a's form, not its data
        result = new_array(np_func(form, *args, **kwargs))
        if name != "empty_like":
            sd.submit(lambda: None)
        return result

    call.__name__ = name
    __all__.append(name)
    return call


for _name in "empty_like zeros_like ones_like full_like".split():
    globals()[_name] = _like(_name)
del _name


@export
def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        if obj._mem.device_id != sd.current_device:
            result = obj.copy()  # a copy between devices, onto the current one
            return result.astype(dtype or result.dtype, copy=False)
        if copy is False and (dtype is None or numpy.dtype(dtype) == obj.dtype):
            return obj if obj.ndim >= ndmin else obj.reshape((1,) * (ndmin - obj.ndim) + obj.shape)
        if copy is None and (dtype is None or numpy.dtype(dtype) == obj.dtype) and (
                order in "KA" or obj._a.flags[f"{order}_CONTIGUOUS"]):
            return obj
        result = obj.astype(dtype or obj.dtype, order=order)
        return result if result.ndim >= ndmin else result.reshape(
            (1,) * (ndmin - result.ndim) + result.shape)
    if hasattr(obj, "__cuda_array_interface__") and not isinstance(obj, numpy.ndarray):
        from ._core import foreign_array
        return array(foreign_array(obj), dtype=dtype, copy=copy, order=order, ndmin=ndmin)
    host = numpy.array(obj, dtype=dtype, order=order, ndmin=ndmin, copy=True)
    if host.dtype == object:
        raise ValueError("Unsupported dtype object")
    host_write(host.nbytes)
    return new_array(host)


@export
def asarray(a, dtype=None, order=None, *, blocking=False):
    return array(a, dtype=dtype, copy=None, order=order or "K", blocking=blocking)


@export
def asanyarray(a, dtype=None, order=None, *, blocking=False):
    return asarray(a, dtype=dtype, order=order, blocking=blocking)


@export
def ascontiguousarray(a, dtype=None):
    return array(a, dtype=dtype, copy=None, order="C", ndmin=1)


@export
def asfortranarray(a, dtype=None):
    return array(a, dtype=dtype, copy=None, order="F", ndmin=1)


@export
def copy(a, order="K"):
    return array(a, order=order, copy=True)


@export
def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    if hasattr(a, "__cuda_array_interface__"):
        return array(a).get(stream=stream, order=order, out=out, blocking=blocking)
    result = numpy.asarray(a, order=order)
    if out is not None:
        out[...] = result
        return out
    return result


@export
def get_array_module(*args):
    import cupy
    return cupy if builtin_any(isinstance(a, ndarray) for a in args) else numpy


builtin_any = __builtins__["any"] if isinstance(__builtins__, dict) else __builtins__.any


@export
def savez(file, *args, **kwds):
    args = [asnumpy(a) for a in args]
    numpy.savez(file, *args, **{k: asnumpy(v) for k, v in kwds.items()})


@export
def savez_compressed(file, *args, **kwds):
    args = [asnumpy(a) for a in args]
    numpy.savez_compressed(file, *args, **{k: asnumpy(v) for k, v in kwds.items()})


@export
def save(file, arr, allow_pickle=None):
    numpy.save(file, asnumpy(arr), allow_pickle=bool(allow_pickle))


@export
def may_share_memory(a, b, max_work=None):
    return a._mem is b._mem and numpy.may_share_memory(a._a, b._a)


@export
def shares_memory(a, b, max_work=None):
    return a._mem is b._mem and numpy.shares_memory(a._a, b._a)


@export
def isscalar(element):
    return numpy.isscalar(element)


for _name in ("result_type", "can_cast", "promote_types", "min_scalar_type", "dtype",
              "finfo", "iinfo", "issubdtype", "newaxis", "pi", "e", "inf", "nan", "euler_gamma",
              "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128", "intp", "uintp",
              "byte", "short", "intc", "int_", "longlong", "ubyte", "ushort", "uintc", "uint",
              "ulonglong", "half", "single", "double", "csingle", "cdouble", "number",
              "integer", "signedinteger", "unsignedinteger", "floating", "complexfloating",
              "inexact", "generic", "bool"):
    if hasattr(numpy, _name):
        globals()[_name] = getattr(numpy, _name)
        __all__.append(_name)
del _name
