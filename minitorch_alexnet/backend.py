"""Where arrays live: NumPy on the CPU, CuPy on a CUDA GPU.

CuPy is imported lazily, the first time a GPU is asked for or a CuPy array is seen, so the
package imports and runs fully on a machine without CUDA. The layer math is written once
against the array module ``xp`` (``numpy`` or ``cupy``), as in Chainer's
``get_array_module``; only the functions that need a raw CUDA kernel branch on ``is_cuda``.
"""
import importlib
import sys
from contextlib import nullcontext

import numpy as np

_cupy = None
_cupy_import_error = None


def cupy_module():
    """Return the ``cupy`` module, importing it on first use; raise a clear error if missing."""
    global _cupy, _cupy_import_error
    if _cupy is None:
        if _cupy_import_error is not None:
            raise RuntimeError(_cupy_import_error)
        try:
            _cupy = importlib.import_module("cupy")
        except Exception as error:  # ImportError, or a CUDA library that fails to load
            _cupy_import_error = (
                f"CuPy is needed for the GPU but could not be imported ({error}). "
                "Install it with `pip install .[cuda12]` or `pip install .[cuda13]`."
            )
            raise RuntimeError(_cupy_import_error) from error
    return _cupy


def is_cuda(array):
    """True if ``array`` is a CuPy array. Never imports CuPy: a program that has not imported
    it cannot hold a CuPy array."""
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(array, cupy.ndarray)


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for array in arrays:
        if is_cuda(array):
            return sys.modules["cupy"]
    return np


def cuda_available():
    """True if CuPy imports and sees at least one CUDA device."""
    try:
        return cupy_module().cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def parse_device(device):
    """Normalise a device name to ``("cpu", index)`` or ``("cuda", index)``.

    Accepted: ``"cpu"``, ``"cpu:0"``, ``"cpu:1"`` (simulated CPU devices, used to test the
    two-column split without two GPUs), ``"cuda"`` (= ``"cuda:0"``), ``"cuda:N"``.
    """
    if device is None:
        return ("cpu", 0)
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise ValueError(f"device must be 'cpu', 'cpu:N', 'cuda' or 'cuda:N', got {device!r}")
    return (kind, int(index) if index else 0)


def check_device(device):
    """Raise a ValueError with a clear message, before any work, if ``device`` is not a name
    ``parse_device`` accepts, or names a GPU that cannot be used (no CuPy, no CUDA GPU, or
    an index past the machine's last GPU). Returns nothing when the device is usable."""
    kind, index = parse_device(device)
    if kind == "cuda":
        if not cuda_available():
            raise ValueError(f"device {device} asked for, but CuPy with a CUDA GPU is not available; "
                             f"use --device cpu or install CuPy (pip install .[cuda12] or .[cuda13])")
        count = cupy_module().cuda.runtime.getDeviceCount()
        if index >= count:
            raise ValueError(f"device {device} asked for, but this machine has {count} GPU(s)")


def to_device(array, device):
    """Copy ``array`` to ``device`` (a name accepted by ``parse_device``); no copy if it is
    already there."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return cupy_module().asnumpy(array) if is_cuda(array) else np.asarray(array)
    cupy = cupy_module()
    with cupy.cuda.Device(index):
        if is_cuda(array) and array.device.id == index:
            return array
        return cupy.asarray(array)


def to_numpy(array):
    """A NumPy copy (or view) of ``array`` wherever it lives."""
    return cupy_module().asnumpy(array) if is_cuda(array) else np.asarray(array)


def device_of(array):
    """The device name of ``array``: ``"cpu"`` or ``"cuda:N"``."""
    return f"cuda:{array.device.id}" if is_cuda(array) else "cpu"


def device_context(device):
    """``with device_context("cuda:1"):`` makes new CuPy arrays and kernels use GPU 1 (nothing
    to do for the CPU). CuPy works on the *current* device, so code touching arrays of GPU k
    runs inside this."""
    kind, index = parse_device(device)
    return cupy_module().cuda.Device(index) if kind == "cuda" else nullcontext()


def device_scope(array):
    """The ``device_context`` of the device ``array`` lives on."""
    return array.device if is_cuda(array) else nullcontext()


# ---- CPU memory: keep freed blocks for the next step ----------------------------------------------

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # mallopt's parameter numbers (glibc malloc.h)
MMAP_THRESHOLD_MAX = 32 * 2**20                  # glibc refuses more on 64-bit machines
_kept_freed_memory = None


def keep_freed_memory():
    """Ask the C library's ``malloc`` (glibc) to keep the memory of freed arrays for the next
    ones instead of handing it back to the system; True if it took the settings.

    Why: every training step allocates the same large arrays (activations, caches, gradients)
    and frees them again. By default glibc maps pages of their own for a block above its mmap
    threshold (128 KiB at first, raised as blocks are freed, at most 32 MiB) and unmaps them
    when the block is freed, and it hands the free top of its heap back to the system beyond
    its trim threshold (128 KiB). The next step's arrays then get fresh pages, and the first
    write to a fresh page costs a page fault: for AlexNet's small preset that is a tenth of a
    training step. Here the mmap threshold is set to 32 MiB, so every smaller block comes from
    the heap, and the trim threshold so high that freed heap memory stays in the process: the
    next step's arrays reuse pages that are already mapped. Blocks over 32 MiB are still
    mapped afresh (glibc allows no higher mmap threshold). PyTorch reaches the same end with
    its caching allocator; the command-line programs call this once at start. Elsewhere
    (macOS, musl) it does nothing and returns False.
    """
    global _kept_freed_memory
    if _kept_freed_memory is None:
        _kept_freed_memory = False
        try:
            import ctypes
            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        # both values in bytes; mallopt takes a C int, so the trim threshold is 2 GiB - 1
        _kept_freed_memory = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
                                  and mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return _kept_freed_memory
