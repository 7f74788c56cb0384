"""The stand-in ``cupy.ndarray`` and the machinery every CuPy routine goes through.

An ndarray is a NumPy view (``_a``) of a device buffer (``_mem``, a ``_standin.Memory``)
on one device. It is never a NumPy array and converts to one only through ``get`` (and
what CuPy builds on it: ``float``, ``item``, ``tolist``, ``repr`` ...), counted as a wait.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy

from . import _standin as sd

_SCALARS = (bool, int, float, complex, numpy.generic)
IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")


def _cupy():
    return sys.modules["cupy"]


# ----------------------------------------------------------- host <-> device


def host_read(nbytes: int) -> None:
    """A blocking device-to-host copy: refused while the current stream captures."""
    if sd.current_state().capturing:
        raise RuntimeError("the current stream is capturing, so D2H transfers are disallowed")
    sd.refuse_sync_while_capturing()
    sd.counts.d2h_copies += 1
    sd.counts.d2h_bytes += nbytes
    sd.counts.host_waits += 1


def host_write(nbytes: int) -> None:
    """A host-to-device copy: refused while the current stream captures."""
    if sd.current_state().capturing:
        raise RuntimeError("the current stream is capturing, so H2D transfers are disallowed")
    sd.counts.h2d_copies += 1
    sd.counts.h2d_bytes += nbytes


def _check_device(arr: ndarray, device_id: int) -> None:
    # CuPy's _check_peer_access, on a machine whose two devices have no peer access.
    if arr._mem.device_id != device_id:
        raise ValueError(
            f"The device where the array resides ({arr._mem.device_id}) is different from "
            f"the current device ({device_id}). Peer access is unavailable between these "
            "devices.")


# ------------------------------------------------------------------- ndarray


def _wrap(a: numpy.ndarray, mem: sd.Memory) -> ndarray:
    arr = object.__new__(ndarray)
    arr._a = a
    arr._mem = mem
    return arr


def new_array(result: Any, device_id: int | None = None) -> ndarray:
    """A fresh device array holding ``result`` (a NumPy array nobody else refers to)."""
    result = numpy.asarray(result)
    if result.base is not None or not result.flags.writeable:
        result = result.copy()
    device_id = sd.current_device if device_id is None else device_id
    return _wrap(result, sd.Memory(result, device_id))


def foreign_array(obj: Any) -> ndarray:
    """A zero-copy ndarray over memory that another library owns (its CUDA array interface)."""
    iface = obj.__cuda_array_interface__
    ptr = iface["data"][0]

    class _Host:  # the stand-in's device pointers are host pointers
        __array_interface__ = {"shape": tuple(iface["shape"]), "typestr": iface["typestr"],
                               "strides": iface.get("strides"), "data": (ptr, False),
                               "version": 3}

    view = numpy.asarray(_Host())
    return _wrap(view, sd.Memory(view, sd.current_device, owner=obj))


class MemoryPointer:
    """``ndarray.data``: a pointer into a device allocation."""

    def __init__(self, mem: sd.Memory, ptr: int) -> None:
        self.mem = mem
        self.ptr = ptr
        self.device_id = mem.device_id

    @property
    def device(self):
        return _cupy().cuda.Device(self.device_id)


class _Flags:
    def __init__(self, a: numpy.ndarray) -> None:
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = False

    def __getitem__(self, key: str) -> bool:
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


def _arg(x: Any, device_id: int) -> Any:
    """A kernel argument as NumPy sees it; refuses what CuPy's kernels refuse."""
    if isinstance(x, ndarray):
        _check_device(x, device_id)
        sd.note_buffer(x._mem)
        return x._a
    if isinstance(x, _SCALARS):
        return x
    if hasattr(x, "__cuda_array_interface__") and not isinstance(x, numpy.ndarray):
        return _arg(foreign_array(x), device_id)
    raise TypeError(f"Unsupported type {type(x)}")


def _loose(x: Any, device_id: int) -> Any:
    """A routine's argument: arrays as for kernels, options (axis, dtype, ...) as they are."""
    if isinstance(x, (ndarray, numpy.ndarray, *_SCALARS)) or hasattr(
            x, "__cuda_array_interface__"):
        return _arg(x, device_id)
    if isinstance(x, (list, tuple)) and any(isinstance(e, ndarray) for e in x):
        return type(x)(_arg(e, device_id) for e in x)  # concatenate, stack
    return x


def launch(compute: Callable[..., Any], args: tuple, kwargs: dict | None = None,
           out: Any = None, strict: bool = False) -> Any:
    """One CuPy kernel: ``compute(*args, **kwargs)`` over the arrays' NumPy views.

    With ``out``, the kernel writes there (recorded while capturing); without, the result
    is a new array from the pool (an allocation, which a capture refuses).
    """
    device = sd.current_device
    convert = _arg if strict else _loose
    uargs = tuple(convert(a, device) for a in args)
    ukw = {k: _loose(v, device) for k, v in (kwargs or {}).items()}
    if out is not None:
        if not isinstance(out, ndarray):
            raise TypeError(f"Output arrays must be cupy.ndarray, not {type(out)}")
        uout = _arg(out, device)
        sd.submit(lambda: compute(*uargs, out=uout, **ukw))
        return out
    if sd.current_state().capturing:  # NumPy makes the result: run it only to size it
        return new_array(compute(*uargs, **ukw))
    box = []
    sd.submit(lambda: box.append(compute(*uargs, **ukw)))
    result = box[0]
    if isinstance(result, tuple):
        return tuple(_adopt(r, uargs) for r in result)
    return _adopt(result, uargs)


def _adopt(result: Any, inputs: tuple) -> ndarray:
    result = numpy.asarray(result)
    if any(isinstance(a, numpy.ndarray) and numpy.may_share_memory(result, a) for a in inputs):
        result = result.copy()
    return new_array(result)


def routine(np_name: str, method: bool = False, sync: bool = False) -> Callable[..., Any]:
    """A CuPy routine computed by NumPy's function of the same meaning, ``out=`` honoured.

    ``sync``: the result's size depends on the data, so CuPy reads a count first (a wait).
    """
    np_func = getattr(numpy, np_name)
    signature = inspect.signature(np_func)

    def call(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        out = bound.arguments.pop("out", None)
        if sync:
            host_read(8)
        return launch(np_func, bound.args, bound.kwargs, out)

    call.__name__ = np_name
    call.__doc__ = f"CuPy's {np_name}, computed by numpy.{np_name} on the device's buffers."
    return call


def view_of(base: ndarray, view: numpy.ndarray) -> ndarray:
    return _wrap(view, base._mem)


class ndarray:  # noqa: N801 - CuPy's name
    """A device array (the stand-in's): see the module docstring."""

    __slots__ = ("_a", "_mem", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the stand-in makes ndarrays without memptr/strides")
        a = numpy.empty(shape, dtype=dtype, order=order)
        self._a = a
        self._mem = sd.Memory(a, sd.current_device)

    # -- what NumPy may and may not do with it ---------------------------------------

    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inout = inputs
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            inout += out
            kwargs["out"] = out[0]
        if method not in ("__call__", "outer", "at", "reduce", "accumulate", "reduceat"):
            return NotImplemented
        func = getattr(_cupy(), ufunc.__name__, None)
        if func is None:
            return NotImplemented
        if method != "__call__":
            func = getattr(func, method, None)
            if func is None:
                return NotImplemented
        for x in inout:
            if (type(x) not in (bool, int, float, complex) and not isinstance(x, numpy.generic)
                    and not isinstance(x, (ndarray, numpy.ndarray))
                    and not hasattr(x, "__cuda_array_interface__")):
                return NotImplemented
        return func(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        try:
            module = functools.reduce(getattr, func.__module__.split(".")[1:], _cupy())
            cupy_func = getattr(module, func.__name__)
        except AttributeError:
            return NotImplemented
        if cupy_func is func:
            return NotImplemented
        if not all(issubclass(t, (ndarray, numpy.ndarray)) for t in types):
            return NotImplemented
        return cupy_func(*args, **kwargs)

    # -- attributes ----------------------------------------------------------------

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    T = property(lambda self: view_of(self, self._a.T))
    mT = property(lambda self: view_of(self, numpy.swapaxes(self._a, -1, -2)))

    @property
    def base(self):
        return None if self._a.base is None else self

    @property
    def device(self):
        return _cupy().cuda.Device(self._mem.device_id)

    @property
    def data(self) -> MemoryPointer:
        return MemoryPointer(self._mem, self._a.__array_interface__["data"][0])

    @property
    def __cuda_array_interface__(self) -> dict:
        a = self._a
        stream = sd.current_state().ptr
        return {"shape": a.shape, "typestr": a.dtype.str, "descr": a.dtype.descr,
                "stream": 1 if stream == 0 else stream, "version": 3,
                "strides": None if a.flags.c_contiguous else a.strides,
                "data": (a.__array_interface__["data"][0] if a.size else 0, False)}

    # -- the host's views of it: every one waits for the device --------------------

    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is not None:
            if not isinstance(out, numpy.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained fromcupy.ndarray")
            if self.dtype != out.dtype:
                raise TypeError(f"{out.dtype} array cannot be obtained from {self.dtype} array")
            if self.shape != out.shape:
                raise ValueError(f"Shape mismatch. Expected shape: {self.shape}, "
                                 f"actual shape: {out.shape}")
        if self.size == 0 and out is None:
            return numpy.ndarray(self.shape, dtype=self.dtype)
        host_read(self.nbytes)
        if not blocking:
            sd.counts.host_waits -= 1
        if out is None:
            order = order.upper()
            if order == "A":
                order = "F" if self._a.flags.f_contiguous else "C"
            return numpy.array(self._a, order=order, copy=True)
        out[...] = self._a
        return out

    def set(self, arr, stream=None):
        if not isinstance(arr, numpy.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        host_write(arr.nbytes)
        self._a[...] = arr

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().item()

    def tolist(self):
        return self.get().tolist()

    def tobytes(self, order="C"):
        return self.get().tobytes(order)

    def __reduce__(self):
        return _cupy().array, (self.get(order="A"),)

    def __int__(self):
        return int(self.get())

    def __float__(self):
        return float(self.get())

    def __complex__(self):
        return complex(self.get())

    def __bytes__(self):
        return bytes(self.get())

    def __bool__(self):
        if self.size == 0:
            warnings.warn(
                "The truth value of an empty array is ambiguous. Returning False, but in "
                "future this will result in an error. Use `array.size > 0` to check that an "
                "array is not empty.", DeprecationWarning, stacklevel=2)
            return False
        if self.size == 1:
            return bool(self.get())
        raise ValueError("The truth value of an array with more than one element is "
                         "ambiguous. Use a.any() or a.all()")

    def __repr__(self):
        return repr(self.get())

    def __str__(self):
        return str(self.get())

    def __format__(self, format_spec):
        return format(self.get(), format_spec)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    __hash__ = None

    # -- indexing --------------------------------------------------------------------

    def _key(self, key: Any) -> tuple[Any, bool]:
        """(NumPy key, needs the device's count of True values)."""
        parts = key if isinstance(key, tuple) else (key,)
        out, mask = [], False
        for k in parts:
            if isinstance(k, ndarray):
                out.append(_arg(k, sd.current_device))
                mask = mask or k.dtype == bool
            elif isinstance(k, (numpy.ndarray, list)):
                k = numpy.asarray(k)
                host_write(k.nbytes)  # CuPy uploads a host index array
                out.append(k)
                mask = mask or k.dtype == bool
            else:
                out.append(k)
        if not any(isinstance(k, numpy.ndarray) for k in out) and Ellipsis not in out:
            out.append(Ellipsis)  # basic indexing always gives a view, even 0-d
        return tuple(out), mask

    def __getitem__(self, key):
        _check_device(self, sd.current_device)
        nkey, mask = self._key(key)
        if mask:
            host_read(8)  # CuPy reads the number of True values to size the result
        result = self._a[nkey]
        if isinstance(result, numpy.ndarray) and numpy.may_share_memory(result, self._a):
            return view_of(self, result)
        return launch(lambda a: a[nkey], (self,))

    def __setitem__(self, key, value):
        _check_device(self, sd.current_device)
        nkey, _ = self._key(key)
        if isinstance(value, (numpy.ndarray, list)):
            value = numpy.asarray(value)
            host_write(value.nbytes)
        else:
            value = _arg(value, sd.current_device)
        target = self._a
        sd.note_buffer(self._mem)

        def kernel() -> None:
            target[nkey] = value

        sd.submit(kernel)

    # -- shape and copies -------------------------------------------------------------

    def reshape(self, *shape, order="C"):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        result = self._a.reshape(shape, order=order)
        if numpy.may_share_memory(result, self._a):
            return view_of(self, result)
        return launch(lambda a: a.reshape(shape, order=order), (self,))

    def ravel(self, order="C"):
        return self.reshape(-1, order=order)

    def flatten(self, order="C"):
        return self.copy(order=order).reshape(-1)

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return view_of(self, self._a.transpose(*axes))

    def swapaxes(self, axis1, axis2):
        return view_of(self, self._a.swapaxes(axis1, axis2))

    def squeeze(self, axis=None):
        return view_of(self, self._a.squeeze(axis))

    def view(self, dtype=None):
        return view_of(self, self._a.view() if dtype is None else self._a.view(dtype))

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return view_of(self, self._a.diagonal(offset, axis1, axis2))

    def copy(self, order="C"):
        if self._mem.device_id != sd.current_device:
            with self.device:  # CuPy copies across devices through the source's device
                result = self._a.copy(order=order)
            sd.counts.d2d_bytes += self.nbytes
            return new_array(result)
        return launch(lambda a: a.copy(order=order), (self,))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and numpy.dtype(dtype) == self.dtype:
            return self
        return launch(lambda a: a.astype(dtype, order=order, casting=casting or "unsafe"),
                      (self,))

    def fill(self, value):
        self[...] = value

    # -- reductions and friends: the module functions of the same name ------------------

    for _name, _np in (("sum", "sum"), ("mean", "mean"), ("max", "max"), ("min", "min"),
                       ("argmax", "argmax"), ("argmin", "argmin"), ("all", "all"),
                       ("any", "any"), ("prod", "prod"), ("var", "var"), ("std", "std"),
                       ("cumsum", "cumsum"), ("cumprod", "cumprod"), ("clip", "clip"),
                       ("dot", "dot"), ("take", "take"), ("repeat", "repeat"),
                       ("argsort", "argsort"), ("round", "round"), ("conj", "conj"),
                       ("conjugate", "conjugate"), ("trace", "trace"), ("ptp", "ptp"),
                       ("searchsorted", "searchsorted"), ("choose", "choose"),
                       ("compress", "compress")):
        locals()[_name] = routine(_np, method=True)
    del _name, _np

    def nonzero(self):
        host_read(8)  # the number of results lives on the device
        return launch(numpy.nonzero, (self,))

    def put(self, indices, values, mode="wrap"):
        _check_device(self, sd.current_device)
        target, device = self._a, sd.current_device
        idx, vals = _loose(indices, device), _loose(values, device)
        sd.note_buffer(self._mem)
        sd.submit(lambda: numpy.put(target, idx, vals, mode=mode))

    def sort(self, axis=-1):
        target = self._a
        sd.note_buffer(self._mem)
        _check_device(self, sd.current_device)
        sd.submit(lambda: target.sort(axis=axis))

    # -- operators ----------------------------------------------------------------------

    def _binary(name, reflected=False, inplace=False):  # noqa: N805
        def op(self, other):
            if not inplace and _should_use_rop(self, other):
                return NotImplemented
            func = getattr(_cupy(), name)
            if inplace:
                return func(self, other, out=self)
            return func(other, self) if reflected else func(self, other)
        return op

    for _name, _ufunc in (("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                          ("truediv", "true_divide"), ("floordiv", "floor_divide"),
                          ("mod", "remainder"), ("pow", "power"), ("matmul", "matmul"),
                          ("and", "bitwise_and"), ("or", "bitwise_or"),
                          ("xor", "bitwise_xor"), ("lshift", "left_shift"),
                          ("rshift", "right_shift")):
        locals()[f"__{_name}__"] = _binary(_ufunc)
        locals()[f"__r{_name}__"] = _binary(_ufunc, reflected=True)
        if _name != "matmul":
            locals()[f"__i{_name}__"] = _binary(_ufunc, inplace=True)
    for _name, _ufunc in (("lt", "less"), ("le", "less_equal"), ("gt", "greater"),
                          ("ge", "greater_equal"), ("eq", "equal"), ("ne", "not_equal")):
        locals()[f"__{_name}__"] = _binary(_ufunc)
    del _name, _ufunc, _binary

    def __divmod__(self, other):
        return _cupy().divmod(self, other)

    def __neg__(self):
        return _cupy().negative(self)

    def __pos__(self):
        return _cupy().positive(self)

    def __abs__(self):
        return _cupy().absolute(self)

    def __invert__(self):
        return _cupy().invert(self)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()


ndarray.__module__ = "cupy"  # as CuPy names its class


def _should_use_rop(x: Any, y: Any) -> bool:
    y_ufunc = getattr(y, "__array_ufunc__", _should_use_rop)
    if y_ufunc is not _should_use_rop:
        return y_ufunc is None
    return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)
