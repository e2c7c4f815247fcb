"""Argument checks and the sliding-window size, shared by the CPU and the GPU path.

``functional`` (the layer math) and ``cuda.host`` (the host half of our kernels) both import
this module, and it imports neither of them: it sits below both, so there is no import cycle.

Each check raises a ``ValueError`` that names the argument, what was expected and what was
given, so that a wrong shape is found where it enters, not three layers later.
"""
import numpy as np

from .backend import device_of, is_cuda

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_array(name, array, ndim=None, dtype=None):
    """``array`` is a float32/float64 NumPy or CuPy array (of ``ndim`` dims, of ``dtype``)."""
    if not (isinstance(array, np.ndarray) or is_cuda(array)):
        raise ValueError(f"{name} must be a NumPy or CuPy array, got {type(array).__name__}")
    if array.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must have dtype float32 or float64, got {array.dtype}")
    if dtype is not None and array.dtype != dtype:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype)} (the input's), got {array.dtype}")
    if ndim is not None:
        wanted = ndim if isinstance(ndim, tuple) else (ndim,)
        if array.ndim not in wanted:
            expected = " or ".join(f"{n}-d" for n in wanted)
            raise ValueError(f"{name} must be {expected}, got shape {tuple(array.shape)}")


def check_shape(name, array, expected):
    """``array.shape == expected``; ``None`` entries in ``expected`` match any size."""
    shape = tuple(array.shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        shown = ", ".join("*" if e is None else str(e) for e in expected)
        shown = f"({shown},)" if len(expected) == 1 else f"({shown})"   # (2,) like Python
        raise ValueError(f"{name} must have shape {shown}, got {shape}")


def check_same_device(**arrays):
    """All arrays live on one device (no NumPy array mixed with a CuPy array)."""
    names = list(arrays)
    first = device_of(arrays[names[0]])
    for name in names[1:]:
        here = device_of(arrays[name])
        if here != first:
            raise ValueError(
                f"{name} is on {here} but {names[0]} is on {first}; move them to one device"
            )


def check_upstream(dy, shape, dtype=None, like=None):
    """A backward pass's incoming gradient ``dy`` matches what its forward pass produced:
    ``shape``, ``dtype`` (when known) and the device of ``like`` (an array of the cache)."""
    check_float_array("dy", dy, dtype=dtype)
    check_shape("dy", dy, tuple(shape))
    if like is not None:
        check_same_device(dy=dy, cache=like)


def output_size(size, kernel, stride, pad):
    """Output length of a sliding window: ``(size + 2*pad - kernel) // stride + 1``.

    The window starts at ``o*stride`` (in padded coordinates) for o = 0, 1, ...; the last
    start that still fits is ``size + 2*pad - kernel``. Used by conv2d and max_pool2d alike.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if size + 2 * pad < kernel:
        raise ValueError(
            f"window {kernel} does not fit in input of size {size} with pad {pad}"
        )
    return (size + 2 * pad - kernel) // stride + 1
