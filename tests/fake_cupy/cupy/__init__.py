"""A stand-in for the part of CuPy that minitorch_alexnet uses, for machines without a GPU.

TESTS ONLY: the package never imports this. ``tests/conftest.py`` installs it as ``cupy`` for
the tests marked ``gpu`` when no real CuPy with a GPU is present; put ``tests/fake_cupy`` first
on ``PYTHONPATH`` to run a program's GPU path with it::

    PYTHONPATH=tests/fake_cupy python -m minitorch_alexnet.train --device cuda --limit-train 64

What it is
    ``ndarray`` wraps a NumPy array (``_data``) and remembers the device it lives on. Math runs
    in NumPy (matrix products stand for cuBLAS); ``RawModule`` runs our ``kernels/*.cu`` through
    the CPU emulation (``_raw.py``) over the launch's grid and block; ``cuda`` has devices
    (two), the runtime's queries, and streams and events as ordered no-ops (``cuda.py``).

Where it is strict, as CuPy is (or stricter, so that code passing here runs on any GPU pair)
    * an array never turns into a NumPy array implicitly: ``numpy.asarray(a)`` raises
      TypeError, as does mixing a NumPy array into a CuPy operation or kernel launch. Moving
      data is explicit: ``cupy.asarray`` (host to device, or device to device), ``asnumpy``,
      ``ndarray.get()``;
    * an operation runs on the CURRENT device (``with cupy.cuda.Device(n):``) and refuses an
      array that lives on another device (CuPy allows that only between GPUs with peer
      access, with a warning); so does a kernel launch;
    * new arrays are made on the current device, ``empty`` ones filled with NaN (or the byte
      0xA5), as a GPU's fresh memory holds garbage, so a kernel that leaves an output entry
      unwritten shows it;
    * a launch's grid and block must be tuples within CUDA's limits, and scalar arguments
      must be NumPy scalars of the kernel's C types (``emulate.launch`` checks them).

What it cannot show: asynchrony and races (every call has finished when it returns), real
memory limits, NVRTC's own diagnostics (g++ compiles the sources), and speed.
"""
import builtins as _builtins
import functools as _functools
import types as _types

import numpy as _np
from numpy import (bool_, complex64, complex128, dtype, e, float16, float32, float64, floating,  # noqa: F401
                   inf, int8, int16, int32, int64, integer, intc, issubdtype, nan, newaxis, number,
                   pi, promote_types, result_type, signedinteger, uint8, uint16, uint32, uint64,
                   unsignedinteger, can_cast)

from . import cuda
from ._raw import CompileException, RawKernel, RawModule  # noqa: F401
from .cuda import get_device_id as _current_device

__version__ = "stand-in"
__stand_in__ = True          # tests tell the stand-in from the real CuPy by this
cuda.compiler = _types.SimpleNamespace(CompileException=CompileException)

_COMPARISONS = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal"}


# ---- the rules: where an array lives, what may enter an operation -----------------------------------

def _check_device(array, what):
    here = _current_device()
    if array._device_id != here:
        raise ValueError(f"{what}: the device where the array resides ({array._device_id}) is different "
                         f"from the current device ({here}); use `with cupy.cuda.Device({array._device_id}):` "
                         f"or move the array with cupy.asarray (CuPy stand-in)")


def _host_array_error(what, value):
    return TypeError(f"{what}: Unsupported type {type(value)}: a NumPy array is host memory and "
                     f"never enters a CuPy operation implicitly; move it with cupy.asarray (CuPy stand-in)")


def _unwrap(value, what):
    """The NumPy data behind ``value`` (arrays checked to be on the current device), recursing
    into lists and tuples; a NumPy array raises TypeError."""
    if isinstance(value, ndarray):
        _check_device(value, what)
        return value._data
    if isinstance(value, _np.ndarray):
        raise _host_array_error(what, value)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(item, what) for item in value)
    return value


def _wrap(value, device_id=None):
    """NumPy results as arrays on ``device_id`` (default: the current device); a NumPy scalar
    becomes a 0-d array, as CuPy's reductions return."""
    if isinstance(value, _np.ndarray):
        return ndarray._from_data(value, device_id)
    if isinstance(value, _np.generic):
        return ndarray._from_data(_np.asarray(value), device_id)
    if isinstance(value, tuple):
        return tuple(_wrap(item, device_id) for item in value)
    if isinstance(value, list):
        return [_wrap(item, device_id) for item in value]
    return value


def _garbage(shape, dtype_, order="C"):
    """Fresh device memory: NaN for floats, the byte 0xA5 for anything else."""
    data = _np.empty(shape, dtype=dtype_, order=order)
    if data.dtype.kind in "fc":
        data.fill(_np.nan)
    else:
        data.ravel(order="K").view(_np.uint8).fill(0xA5)       # ravel: a view of fresh memory
    return data


def _gpu(function, name=None):
    """A CuPy function made from a NumPy one: arguments checked and unwrapped, results wrapped
    on the current device, ``out=`` honoured."""
    name = name or function.__name__

    @_functools.wraps(function)
    def gpu_function(*args, **kwargs):
        what = f"cupy.{name}"
        out = kwargs.get("out")
        data_args = _unwrap(args, what)
        data_kwargs = {key: _unwrap(value, what) for key, value in kwargs.items()}
        result = function(*data_args, **data_kwargs)
        return out if isinstance(out, ndarray) else _wrap(result)

    return gpu_function


# ---- the array ---------------------------------------------------------------------------------------

class ndarray:
    """An array on one device of the stand-in (see the module docstring for its rules)."""

    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._data = _garbage(shape, dtype, order)
        self._device_id = _current_device()

    @classmethod
    def _from_data(cls, data, device_id=None):
        array = cls.__new__(cls)
        array._data = data
        array._device_id = _current_device() if device_id is None else device_id
        return array

    def _view(self, data):
        return ndarray._from_data(data, self._device_id)

    # -- what it is
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    nbytes = property(lambda self: self._data.nbytes)
    itemsize = property(lambda self: self._data.itemsize)
    strides = property(lambda self: self._data.strides)
    flags = property(lambda self: self._data.flags)
    T = property(lambda self: self._view(self._data.T))

    @property
    def device(self):
        return cuda.Device(self._device_id)

    @property
    def data(self):
        return _types.SimpleNamespace(ptr=self._data.ctypes.data, device_id=self._device_id)

    def __repr__(self):
        return f"{_np.array_repr(self._data)[:-1]}, device={self._device_id})"

    def __str__(self):
        return str(self._data)

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # -- leaving the device: only explicitly
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                        "construct a NumPy array explicitly. (CuPy stand-in)")

    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is not None:
            out[...] = self._data
            return out
        return _np.array(self._data, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray) or arr.shape != self.shape:
            raise ValueError(f"set() takes a NumPy array of shape {self.shape}")
        self._data[...] = arr

    def tolist(self):
        return self._data.tolist()

    def item(self):
        return self._data.item()

    def __float__(self):
        return float(self._data)

    def __int__(self):
        return int(self._data)

    def __bool__(self):
        return bool(self._data)

    def __index__(self):
        return self._data.__index__()

    def __complex__(self):
        return complex(self._data)

    # -- NumPy's protocols: ufuncs and functions dispatch here, as they do to CuPy
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        what = f"cupy.{ufunc.__name__}"
        if ufunc.__name__ in _COMPARISONS:
            inputs = tuple(x.item() if isinstance(x, _np.ndarray) and x.ndim == 0 else x for x in inputs)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_unwrap(item, what) for item in out)
        for value in inputs:
            if not isinstance(value, (ndarray, _np.ndarray, _np.generic, int, float, complex, bool)):
                return NotImplemented
        result = getattr(ufunc, method)(*_unwrap(inputs, what), **kwargs)
        if out is not None and len(out) == 1 and isinstance(out[0], ndarray):
            return out[0]
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        module = _functools.reduce(getattr, func.__module__.split(".")[1:], _this_module())
        ours = getattr(module, func.__name__, None)
        if ours is None or ours is func or not _builtins.all(issubclass(t, (ndarray, _np.ndarray)) for t in types):
            return NotImplemented
        return ours(*args, **kwargs)

    # -- views: no kernel, no device check
    def reshape(self, *shape, order="C"):
        data = self._data.reshape(*shape, order=order)
        if not _np.may_share_memory(data, self._data):
            _check_device(self, "ndarray.reshape")      # a copy: a kernel on the current device
            return _wrap(data)
        return self._view(data)

    def ravel(self, order="C"):
        return self.reshape(-1, order=order)

    def transpose(self, *axes):
        return self._view(self._data.transpose(*axes))

    def swapaxes(self, axis1, axis2):
        return self._view(self._data.swapaxes(axis1, axis2))

    def squeeze(self, axis=None):
        return self._view(self._data.squeeze(axis))

    def view(self, dtype=None):
        return self._view(self._data.view(dtype) if dtype is not None else self._data.view())

    def __getitem__(self, key):
        advanced = _has_arrays(key)
        if advanced:
            _check_device(self, "ndarray.__getitem__")
        data = self._data[_index(key)]
        if isinstance(data, _np.generic):
            return self._view(_np.asarray(data))
        return _wrap(data) if advanced else self._view(data)

    def __setitem__(self, key, value):
        _check_device(self, "ndarray.__setitem__")
        if isinstance(value, _np.ndarray) and value.ndim:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill (CuPy stand-in: move "
                             "it with cupy.asarray first)")
        self._data[_index(key)] = _unwrap(value, "ndarray.__setitem__")

    # -- copies and computations: on the current device
    def copy(self, order="C"):
        """A copy on the CURRENT device (CuPy copies across devices here)."""
        return _wrap(_np.array(self._data, order=order, copy=True))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and _np.dtype(dtype) == self.dtype:
            return self
        _check_device(self, "ndarray.astype")
        return _wrap(self._data.astype(dtype, order=order, copy=True))

    def fill(self, value):
        _check_device(self, "ndarray.fill")
        if isinstance(value, (ndarray, _np.ndarray)) and value.shape != ():
            raise ValueError("non-scalar array cannot be used for fill")
        self._data.fill(_unwrap(value, "ndarray.fill") if not isinstance(value, _np.ndarray) else value)

    def __deepcopy__(self, memo):
        return self._view(self._data.copy())

    def __copy__(self):
        return self._view(self._data.copy())


def _computing_method(name):
    def method(self, *args, **kwargs):
        what = f"ndarray.{name}"
        _check_device(self, what)
        return _wrap(getattr(self._data, name)(*_unwrap(args, what),
                                                **{k: _unwrap(v, what) for k, v in kwargs.items()}))
    method.__name__ = name
    return method


for _name in ("sum", "mean", "max", "min", "argmax", "argmin", "all", "any", "prod", "cumsum",
              "var", "std", "clip", "dot", "round", "nonzero", "take", "repeat", "flatten",
              "sort", "argsort", "conj"):
    setattr(ndarray, _name, _computing_method(_name))


def _operator(ufunc, reflected=False, inplace=False):
    def operator(self, other):
        if inplace:
            return self.__array_ufunc__(ufunc, "__call__", self, other, out=(self,))
        return self.__array_ufunc__(ufunc, "__call__", *((other, self) if reflected else (self, other)))
    return operator


for _name, _ufunc in {"add": _np.add, "sub": _np.subtract, "mul": _np.multiply,
                      "truediv": _np.true_divide, "floordiv": _np.floor_divide, "mod": _np.remainder,
                      "pow": _np.power, "matmul": _np.matmul, "and": _np.bitwise_and,
                      "or": _np.bitwise_or, "xor": _np.bitwise_xor, "lshift": _np.left_shift,
                      "rshift": _np.right_shift}.items():
    setattr(ndarray, f"__{_name}__", _operator(_ufunc))
    setattr(ndarray, f"__r{_name}__", _operator(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _operator(_ufunc, inplace=True))
for _name, _ufunc in {"lt": _np.less, "le": _np.less_equal, "gt": _np.greater, "ge": _np.greater_equal,
                      "eq": _np.equal, "ne": _np.not_equal}.items():
    setattr(ndarray, f"__{_name}__", _operator(_ufunc))
for _name, _ufunc in {"neg": _np.negative, "pos": _np.positive, "abs": _np.absolute,
                      "invert": _np.invert}.items():
    setattr(ndarray, f"__{_name}__", lambda self, _ufunc=_ufunc: self.__array_ufunc__(_ufunc, "__call__", self))


def _has_arrays(key):
    items = key if isinstance(key, tuple) else (key,)
    return _builtins.any(isinstance(item, (ndarray, _np.ndarray, list)) for item in items)


def _index(key):
    """An index with the stand-in's arrays replaced by their data (after the device check)."""
    if isinstance(key, tuple):
        return tuple(_unwrap(item, "ndarray index") if isinstance(item, ndarray) else item for item in key)
    return _unwrap(key, "ndarray index") if isinstance(key, ndarray) else key


def _this_module():
    import sys
    return sys.modules[__name__]


# ---- moving data ------------------------------------------------------------------------------------

def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """``obj`` on the current device: host data is uploaded (a copy); an array of another
    device is copied here; one already here is returned when no copy is asked for."""
    if isinstance(obj, ndarray):
        if obj._device_id == _current_device() and not copy:
            result = obj.astype(dtype or obj.dtype, copy=False)
        else:
            result = _wrap(_np.array(obj._data, dtype=dtype, order=order, copy=True))
    else:
        result = _wrap(_np.array(obj, dtype=dtype, order=order, copy=True))
    return result.reshape((1,) * (ndmin - result.ndim) + result.shape) if result.ndim < ndmin else result


def asarray(a, dtype=None, order=None, *, blocking=False):
    return array(a, dtype=dtype, copy=False, order=order or "K")


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"cupy.ascontiguousarray takes a cupy.ndarray, got {type(a)} (CuPy stand-in)")
    if a.flags.c_contiguous and (dtype is None or _np.dtype(dtype) == a.dtype):
        return a
    _check_device(a, "cupy.ascontiguousarray")
    return _wrap(_np.ascontiguousarray(a._data, dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return _this_module() if _builtins.any(isinstance(arg, ndarray) for arg in args) else _np


# ---- making arrays on the current device ------------------------------------------------------------

def empty(shape, dtype=float, order="C"):
    return _wrap(_garbage(shape, dtype, order))


def _like(a, dtype, shape, what):
    if not isinstance(a, ndarray):
        raise TypeError(f"cupy.{what} takes a cupy.ndarray, got {type(a)} (CuPy stand-in)")
    return (a.shape if shape is None else shape), (a.dtype if dtype is None else dtype)


def empty_like(a, dtype=None, order="K", subok=None, shape=None):
    return empty(*_like(a, dtype, shape, "empty_like"))


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    return zeros(*_like(a, dtype, shape, "zeros_like"))


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    return ones(*_like(a, dtype, shape, "ones_like"))


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    shape, dtype = _like(a, dtype, shape, "full_like")
    return full(shape, fill_value, dtype)


zeros = _gpu(_np.zeros)
ones = _gpu(_np.ones)
full = _gpu(_np.full)
arange = _gpu(_np.arange)
linspace = _gpu(_np.linspace)
eye = _gpu(_np.eye)

# ---- math: NumPy on the device's data (matmul stands for cuBLAS) ------------------------------------
# (sum, all, any, max, min, abs and round shadow Python's built-ins from here on: use _builtins.)

for _name in ("exp", "log", "log1p", "expm1", "sqrt", "square", "reciprocal", "tanh", "sign", "floor",
              "ceil", "maximum", "minimum", "abs", "absolute", "negative", "add", "subtract",
              "multiply", "divide", "true_divide", "power", "isfinite", "isnan", "isinf", "where",
              "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "all", "any", "prod",
              "cumsum", "dot", "vdot", "matmul", "tensordot", "outer", "einsum", "concatenate",
              "stack", "split", "transpose", "reshape", "ravel", "clip", "allclose", "array_equal",
              "sort", "argsort", "take", "pad", "broadcast_to", "expand_dims", "squeeze"):
    globals()[_name] = _gpu(getattr(_np, _name), _name)

linalg = _types.ModuleType("cupy.linalg")
linalg.norm = _gpu(_np.linalg.norm, "linalg.norm")


# ---- memory pools: nothing is pooled (real memory limits are beyond the stand-in) -------------------

class _MemoryPool:
    def free_all_blocks(self, stream=None):
        pass

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def n_free_blocks(self):
        return 0


_memory_pool, _pinned_memory_pool = _MemoryPool(), _MemoryPool()


def get_default_memory_pool():
    return _memory_pool


def get_default_pinned_memory_pool():
    return _pinned_memory_pool
