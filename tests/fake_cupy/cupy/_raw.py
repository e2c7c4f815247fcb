"""``cupy.RawModule`` and ``cupy.RawKernel`` of the stand-in: our ``.cu`` sources, run on the CPU.

``RawModule(code=...)`` takes CUDA source text as CuPy does. ``compile()`` accepts the text of
any of our ``kernels/*.cu`` files as ``minitorch_alexnet.cuda.loader`` expands it (their
kernels are in the emulation library that ``minitorch_alexnet.cuda.emulate`` builds with g++
from the same files); other text is compiled with g++ and the emulation header, and a compile
error raises ``CompileException`` whose ``log`` is written as NVRTC writes its log
(``lrn.cu(57): error: ...``). Kernels of other text can be compiled but not run.

A launch ``kernel(grid, block, args)`` is checked as a GPU would refuse it (grid and block
tuples within CUDA's limits) and, stricter than CuPy, every array argument must be a CuPy
array on the current device: a NumPy array, or an array of another device, raises instead
of handing the GPU a pointer it cannot use. The kernel then runs through
``emulate.launch``, thread by thread over the same grid and block.
"""
import hashlib
import os
import re
import subprocess

from .cuda import CUDADriverError, get_device_id

_BLOCK_LIMITS = (1024, 1024, 64)
_GRID_LIMITS = (2**31 - 1, 65535, 65535)
_GCC_DIAGNOSTIC = re.compile(r"^(.+?):(\d+):(?:\d+:)? (error|warning): (.*)$", re.MULTILINE)
_checked_sources = {}     # sha256 of source text -> None (compiles) or the CompileException


class CompileException(Exception):
    """A kernel source failed to compile; ``log`` holds the compiler's messages."""

    def __init__(self, log, source="", name="", options=()):
        super().__init__(log)
        self.log, self.source, self.name, self.options = log, source, name, options


def _emulate():
    from minitorch_alexnet.cuda import emulate
    return emulate


def _library_sources():
    """The expanded text of every kernels/*.cu file, the sources the emulation library holds."""
    from minitorch_alexnet.cuda import loader
    return {loader.expanded_source(path.name) for path in loader.kernel_files()}


def _compile_check(code):
    """None if g++ compiles ``code`` with the emulation header, else a CompileException."""
    key = hashlib.sha256(code.encode()).hexdigest()
    if key not in _checked_sources:
        from minitorch_alexnet.cuda import loader
        emulate = _emulate()
        flags = [flag for flag in emulate.compiler_flags() if flag not in ("-fPIC",)]
        command = [os.environ.get("CXX", "g++"), *flags, "-fsyntax-only", "-x", "c++", "-"]
        result = subprocess.run(command, input=code, text=True, capture_output=True,
                                cwd=str(loader.kernels_dir()))
        error = None
        if result.returncode != 0:
            # g++ writes "lrn.cu:57:23: error: ..."; NVRTC writes "lrn.cu(57): error: ..."
            log = _GCC_DIAGNOSTIC.sub(r"\1(\2): \3: \4", result.stderr)
            error = CompileException(log, code)
        _checked_sources[key] = error
    return _checked_sources[key]


class RawModule:
    """CUDA source text compiled on first use (``compile()`` or ``get_function``)."""

    def __init__(self, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 *, enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if code is None:
            raise NotImplementedError("the CuPy stand-in takes RawModule(code=...) only")
        self.code, self.options = code, tuple(options)
        self._compiled = False
        self._runnable = None

    def compile(self, log_stream=None):
        if not self._compiled:
            self._runnable = self.code in _library_sources()
            if not self._runnable:
                error = _compile_check(self.code)
                if error is not None:
                    raise error
            self._compiled = True

    def get_function(self, name):
        from minitorch_alexnet.cuda import loader
        self.compile()
        if name not in loader.kernel_names(self.code):
            raise CUDADriverError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {name!r}")
        return RawKernel(None, name, _module=self)


class RawKernel:
    """One ``extern "C" __global__`` function; call it as ``kernel(grid, block, args)``."""

    def __init__(self, code, name, options=(), backend="nvrtc", *, _module=None, **kwargs):
        self.name = name
        self.module = _module if _module is not None else RawModule(code=code, options=options)

    def __call__(self, grid, block, args, shared_mem=0, stream=None, enable_cooperative_groups=False):
        self.module.compile()
        _check_launch_shape(grid, block)
        if not self.module._runnable:
            raise NotImplementedError("the CuPy stand-in runs only the kernels of kernels/*.cu")
        _emulate().launch(self.name, grid, block, tuple(_device_argument(self.name, i, arg)
                                                        for i, arg in enumerate(args)))


def _check_launch_shape(grid, block):
    for what, dims, limits in (("grid", grid, _GRID_LIMITS), ("block", block, _BLOCK_LIMITS)):
        if not isinstance(dims, tuple) or not 1 <= len(dims) <= 3:
            raise TypeError(f"{what} must be a tuple of 1 to 3 ints, got {dims!r}")
        for size, limit in zip(dims, limits):
            if not isinstance(size, int) or not 1 <= size <= limit:
                raise CUDADriverError(f"CUDA_ERROR_INVALID_VALUE: {what} {dims} (each size from 1 "
                                      f"to {limits[:len(dims)]})")
    threads = 1
    for size in block:
        threads *= size
    if threads > 1024:
        raise CUDADriverError(f"CUDA_ERROR_INVALID_VALUE: block {block} has {threads} threads (at most 1024)")


def _device_argument(name, position, arg):
    """The NumPy data behind a kernel argument; a scalar passes unchanged (emulate checks its C type)."""
    import numpy as np

    from . import ndarray
    if isinstance(arg, ndarray):
        if arg.device.id != get_device_id():
            raise ValueError(f"{name} argument {position}: the array lives on device {arg.device.id} but the "
                             f"kernel is launched on the current device {get_device_id()}")
        return arg._data
    if isinstance(arg, np.ndarray):
        raise TypeError(f"{name} argument {position}: Unsupported type {type(arg)} (a NumPy array is "
                        f"host memory; a kernel needs a CuPy array)")
    return arg
