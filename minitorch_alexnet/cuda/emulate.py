"""Run our CUDA kernels on the CPU: the same ``kernels/*.cu`` sources, compiled by g++.

Why
    CI has no GPU, and neither have many students. The kernels are plain C++ apart from a few
    CUDA keywords and built-in variables, so ``kernels/cuda_emulation.h`` defines those
    (``__global__``, ``threadIdx``, ``blockIdx``, ``blockDim``, ``gridDim``, ``__shared__``,
    ``__syncthreads`` ...) and the host compiler builds the unchanged sources into a shared
    library. A launcher sets ``blockIdx`` / ``threadIdx`` and calls the kernel function once per
    thread, over the same grid and block shape the GPU path uses: both go through ``host.py``,
    which computes the launch and the argument list once for both. Kernels that synchronise
    (the tiled GEMM) run the threads of a block as cooperative fibers that take turns at each
    ``__syncthreads()``, so they are emulated too.

Use
    >>> import numpy as np
    >>> from minitorch_alexnet.cuda import emulate
    >>> x = np.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype(np.float32)
    >>> cols = emulate.im2col(x, 3, 3, 2, 1)            # runs kernels/im2col.cu's im2col_f32
    >>> y, cache = emulate.max_pool2d_forward(x, 3, 2, 0)
    >>> dx = emulate.max_pool2d_backward(np.ones_like(y), cache)

    Every function of ``minitorch_alexnet.cuda.ops`` has a twin here taking NumPy arrays (both
    modules are made from the one table ``host.OPERATIONS``), including ``gemm_tiled(a, b)``,
    and ``launch(name, grid, block, args)`` runs any kernel yourself.
    The library is built on first use (a few seconds) into ``$MINITORCH_EMU_CACHE`` (default
    ``~/.cache/minitorch_alexnet/emulation``, or the temp folder) under a hash of the sources,
    so later runs reuse it until a kernel file changes. ``$CXX`` picks the compiler (g++).

Stepping through a kernel with a debugger
    Set ``MINITORCH_EMU_DEBUG=1`` to build without optimisation and with debug symbols
    (``-O0 -g``; a separate cached library), then run Python under gdb::

        MINITORCH_EMU_DEBUG=1 gdb --args "$(python -c 'import sys; print(sys.executable)')" -c "
        import numpy as np
        from minitorch_alexnet.cuda import emulate
        emulate.im2col(np.arange(32.).reshape(1, 2, 4, 4), 3, 3, 1, 1)"
        (gdb) set breakpoint pending on
        (gdb) break im2col_impl if blockIdx.x == 0 && threadIdx.x == 5
        (gdb) run
        (gdb) print threadIdx      # {x = 5, y = 0, z = 0}
        (gdb) next                 # step line by line (a function name, not a line number,
        (gdb) info locals          # survives edits): flat, row, col, ... of thread 5

    (``gdb`` needs the real interpreter, hence ``sys.executable``: ``python`` may be a shell
    script, e.g. under pyenv.)

    ``threadIdx`` and ``blockIdx`` are ordinary global variables here, so conditions on them
    pick one thread. ``printf`` inside a kernel also works (print a few threads only).

What differs from a GPU
    Threads run one after another in a fixed order (block by block, x fastest), so a race
    between threads that a GPU would expose is not reproduced; warps, timing, and float
    contraction (the GPU may fuse a*b+c into one rounding) differ too, so results agree with
    the GPU to rounding error, not bit for bit.
"""
import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from . import host, loader

_EMULATION_HEADER = "cuda_emulation.h"
_SIGNATURE_PATTERN = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.S)
_C_SCALARS = {"int": np.int32, "float": np.float32, "double": np.float64}
_C_POINTEES = {"int": np.int32, "float": np.float32, "double": np.float64,
               "unsigned char": np.uint8}

_library = None        # the loaded ctypes.CDLL
_signatures = None     # kernel name -> list of (C type, is_pointer)
_launch_lock = threading.Lock()   # the emulated built-ins are globals: one launch at a time


# ---- building the library ---------------------------------------------------------------------

def debug_build():
    """True when MINITORCH_EMU_DEBUG=1: build with -O0 -g for a debugger."""
    return os.environ.get("MINITORCH_EMU_DEBUG", "") not in ("", "0")


def compiler_flags():
    """Flags for g++: the emulation header is force-included before every kernel file."""
    optimisation = ["-O0", "-g"] if debug_build() else ["-O1"]
    folder = loader.kernels_dir()
    return ["-std=c++17", *optimisation, "-fPIC", "-I", str(folder),
            "-include", str(folder / _EMULATION_HEADER)]


def _wrapper_source(path):
    """A small C++ file that includes one .cu file and exports a launcher per kernel."""
    source = path.read_text(encoding="utf-8")
    export = "EMU_EXPORT_WITH_BARRIERS" if "__syncthreads" in source else "EMU_EXPORT"
    lines = [f'#include "{path.name}"']
    lines += [f"{export}({name})" for name in loader.kernel_names(source)]
    return "\n".join(lines) + "\n"


def _cache_root():
    configured = os.environ.get("MINITORCH_EMU_CACHE")
    if configured:
        return Path(configured)
    home_cache = Path.home() / ".cache" / "minitorch_alexnet" / "emulation"
    try:
        home_cache.mkdir(parents=True, exist_ok=True)
        return home_cache
    except OSError:
        return Path(tempfile.gettempdir()) / "minitorch_alexnet_emulation"


def build(force=False):
    """Compile every kernels/*.cu for the CPU into one shared library; return its path.

    The library is cached under a hash of the kernel folder's files and the compiler flags.
    """
    compiler = os.environ.get("CXX", "g++")
    folder = loader.kernels_dir()
    files = loader.kernel_files()
    digest = hashlib.sha256()
    digest.update(" ".join([compiler, *compiler_flags()]).encode())
    for path in sorted(folder.iterdir()):
        if path.suffix in (".cu", ".cuh", ".h"):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    target_dir = _cache_root() / digest.hexdigest()[:16]
    library = target_dir / "libminitorch_kernels.so"
    if library.exists() and not force:
        return library

    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir) as work:
        work = Path(work)
        # compile the .cu files in parallel, one translation unit each, then link
        jobs = []
        for path in files:
            wrapper = work / (path.stem + "_emu.cpp")
            wrapper.write_text(_wrapper_source(path), encoding="utf-8")
            command = [compiler, *compiler_flags(), "-c", str(wrapper), "-o", str(work / (path.stem + ".o"))]
            jobs.append((path, command, subprocess.Popen(command, stdout=subprocess.PIPE,
                                                         stderr=subprocess.STDOUT, text=True)))
        for path, command, job in jobs:
            output, _ = job.communicate()
            if job.returncode != 0:
                raise RuntimeError(f"emulation build of {path.name} failed:\n{' '.join(command)}\n{output}")
        objects = [str(work / (path.stem + ".o")) for path in files]
        partial = work / library.name
        result = subprocess.run([compiler, "-shared", "-o", str(partial), *objects],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"emulation link failed:\n{result.stdout}")
        os.replace(partial, library)      # atomic: a concurrent build never sees half a file
    return library


def _parse_signatures():
    """kernel name -> [(C type without qualifiers, is_pointer), ...] from the sources."""
    signatures = {}
    for path in loader.kernel_files():
        for name, parameters in _SIGNATURE_PATTERN.findall(path.read_text(encoding="utf-8")):
            parsed = []
            for parameter in parameters.split(","):
                words = parameter.replace("*", " * ").replace("__restrict__", " ").split()
                is_pointer = "*" in words
                words = [word for word in words if word not in ("*", "const")][:-1]   # drop the name
                parsed.append((" ".join(words), is_pointer))
            signatures[name] = parsed
    return signatures


def library():
    """The loaded shared library (built on first use)."""
    global _library, _signatures
    if _library is None:
        _library = ctypes.CDLL(str(build()))
        _signatures = _parse_signatures()
    return _library


# ---- launching ---------------------------------------------------------------------------------

def launch(name, grid, block, args):
    """Run kernel ``name`` on the CPU over ``grid`` blocks of ``block`` threads.

    Same convention as ``cupy.RawKernel.__call__``: ``args`` holds C-contiguous NumPy arrays
    (passed as pointers) and NumPy scalars (np.int32 for int, np.float32 / np.float64 for
    float / double), in the order of the kernel's parameters. Types and count are checked
    against the kernel's C signature, so a mistake raises TypeError instead of crashing.
    Launches are serialised (the emulated threadIdx etc. are process-wide globals).
    """
    lib = library()
    signature = _signatures.get(name)
    if signature is None:
        raise KeyError(f"no kernel named {name!r}")
    if len(args) != len(signature):
        raise TypeError(f"{name} takes {len(signature)} arguments, got {len(args)}")

    keep_alive = []                                   # ctypes objects must outlive the call
    pointers = []
    for position, (arg, (c_type, is_pointer)) in enumerate(zip(args, signature)):
        if is_pointer:
            if not isinstance(arg, np.ndarray) or not arg.flags.c_contiguous:
                raise TypeError(f"{name} argument {position}: expected a C-contiguous array")
            if arg.dtype != _C_POINTEES[c_type]:
                raise TypeError(f"{name} argument {position}: {c_type}* needs "
                                f"{np.dtype(_C_POINTEES[c_type])}, got {arg.dtype}")
            value = ctypes.c_void_p(arg.ctypes.data)  # the pointer value ...
            keep_alive.append(value)
            pointers.append(ctypes.addressof(value))  # ... and where it is stored
        else:
            expected = _C_SCALARS[c_type]
            if not isinstance(arg, expected):
                raise TypeError(f"{name} argument {position}: {c_type} needs {expected.__name__}, "
                                f"got {type(arg).__name__}")
            value = np.array(arg)                     # the scalar's bytes in memory
            keep_alive.append(value)
            pointers.append(value.ctypes.data)
    params = (ctypes.c_void_p * max(1, len(pointers)))(*pointers)
    grid3 = (ctypes.c_uint * 3)(*(tuple(grid) + (1, 1, 1))[:3])
    block3 = (ctypes.c_uint * 3)(*(tuple(block) + (1, 1, 1))[:3])
    with _launch_lock:
        getattr(lib, "emu_launch_" + name)(grid3, block3, params)


# ---- the operations, on NumPy arrays (twins of ops.py) -----------------------------------------

def _numpy():
    """NumPy, the emulation's array module (a function, like ops.py's ``_cupy``)."""
    return np


# One function per entry of host.OPERATIONS, each host.<name>(numpy, launch, ...), the same
# table ops.py is made from: im2col, col2im, relu_forward, relu_backward, lrn_forward,
# lrn_backward, max_pool2d_forward, max_pool2d_backward, dropout_forward, dropout_backward,
# softmax_cross_entropy, bias_add, bias_grad and gemm_tiled.
globals().update(host.bind_operations(_numpy, launch, __name__))


def matmul(a, b):
    """a @ b by the shared-memory tiled kernel of kernels/gemm.cu (the emulation has no
    cuBLAS; its threads run as fibers)."""
    return host.gemm_tiled(np, launch, a, b)
