"""Find the CUDA sources in ``kernels/`` and compile them with ``cupy.RawModule``.

Where the sources are
    ``kernels/*.cu`` at the top of the repository is installed as the sub-package
    ``minitorch_alexnet.kernels`` (see setup.py), so ``importlib.resources`` finds the files in
    an installed wheel; in a source checkout that is not installed we fall back to the
    ``kernels/`` folder next to the package.

How a kernel is found
    Every kernel is an ``extern "C" __global__ void <name>(...)`` function with a greppable
    name such as ``im2col_f32``. ``kernel_index()`` scans the sources once and maps each name
    to the file that defines it; ``get_kernel(name)`` compiles that file (once per process,
    cached in ``_modules``) and returns the ``cupy.RawKernel``.

Headers
    Our own headers (``#include "common.cuh"``) are pasted into the source before compiling,
    surrounded by ``#line`` directives so that compiler messages still name the right file and
    line. Pasting (instead of passing ``-I``) matters for the disk cache below: CuPy keys its
    cache on the source text and options, so an edited header must change the source text.

Disk cache
    CuPy stores every compiled binary under ``$CUPY_CACHE_DIR`` (default
    ``~/.cupy/kernel_cache``) keyed by a hash of source, options and GPU architecture. We pass
    the source through ``RawModule(code=...)`` unchanged between runs and use fixed options, so
    a second process loads the binaries from that cache instead of recompiling. Set
    ``CUPY_CACHE_DIR`` to move the cache (CI), or delete it to force recompilation.

Compile errors
    A failed compilation raises ``KernelCompileError`` whose message starts with
    ``<file>.cu:<line>: error: ...`` for the first error found in NVRTC's log.
"""
import functools
import importlib.resources
import os
import re
from pathlib import Path

from .. import backend

# Options given to NVRTC (none: the kernels need only C++11, and NVRTC defaults to a newer
# dialect). Fixed, with no paths or timestamps, so that CuPy's disk cache hits.
COMPILE_OPTIONS = ()

_KERNEL_PATTERN = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')
_INCLUDE_PATTERN = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)
_LOG_PATTERN = re.compile(r"([\w./\\-]+)\((\d+)\): (error|warning)\s*:?\s*(.*)")

_modules = {}          # file name -> cupy.RawModule, compiled once per process
_kernels = {}          # kernel name -> cupy.RawKernel, looked up once per process


class KernelCompileError(RuntimeError):
    """A kernel source failed to compile; the message names the file and line."""


def kernels_dir():
    """The folder holding the ``.cu`` files (installed package first, then the checkout)."""
    try:
        installed = importlib.resources.files("minitorch_alexnet.kernels")
        if installed.is_dir() and any(entry.name.endswith(".cu") for entry in installed.iterdir()):
            return Path(str(installed))
    except (ModuleNotFoundError, TypeError):
        pass
    checkout = Path(__file__).resolve().parents[2] / "kernels"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("cannot find the kernels/ folder with the .cu sources")


def kernel_files():
    """Sorted paths of every ``kernels/*.cu`` file."""
    return sorted(kernels_dir().glob("*.cu"))


def kernel_names(source):
    """The ``extern "C" __global__`` function names defined in a source text."""
    return _KERNEL_PATTERN.findall(source)


@functools.lru_cache(maxsize=None)
def kernel_index():
    """Map every kernel name to the file name that defines it, e.g. {"im2col_f32": "im2col.cu"}."""
    index = {}
    for path in kernel_files():
        for name in kernel_names(path.read_text(encoding="utf-8")):
            index[name] = path.name
    return index


def expanded_source(file_name):
    """The text of ``kernels/<file_name>`` with our own ``#include "..."`` headers pasted in.

    ``#line`` directives keep compiler messages pointing at the original file and line.
    Each header is pasted at most once (they all use ``#pragma once`` anyway).
    """
    folder = kernels_dir()
    seen = set()

    def expand(name):
        text = (folder / name).read_text(encoding="utf-8")
        pieces = [f'#line 1 "{name}"\n']
        position = 0
        for match in _INCLUDE_PATTERN.finditer(text):
            header = match.group(1)
            if not (folder / header).is_file():
                continue                      # not ours: leave the #include to the compiler
            pieces.append(text[position:match.start()])
            if header not in seen:
                seen.add(header)
                # "#pragma once" is meaningless (and warned about) once pasted into the main file
                pieces.append(re.sub(r"^\s*#\s*pragma\s+once\s*$", "", expand(header), flags=re.MULTILINE))
            line_after = text.count("\n", 0, match.end()) + 2
            pieces.append(f'\n#line {line_after} "{name}"\n')
            position = match.end() + 1 if text[match.end():match.end() + 1] == "\n" else match.end()
        pieces.append(text[position:])
        return "".join(pieces)

    return expand(file_name)


def parse_compile_log(file_name, log):
    """Turn NVRTC's log into ``"<file>:<line>: error: <message>"`` (first error first)."""
    found = []
    for line in str(log).splitlines():
        match = _LOG_PATTERN.search(line)
        if match:
            path, line_number, kind, message = match.groups()
            found.append((kind != "error", f"{os.path.basename(path)}:{line_number}: {kind}: {message}"))
    if not found:
        return f"{file_name}: compilation failed:\n{log}"
    found.sort(key=lambda item: item[0])     # errors before warnings, otherwise in log order
    return found[0][1] + "\n\nfull compiler log:\n" + str(log)


def get_module(file_name):
    """The compiled ``cupy.RawModule`` of ``kernels/<file_name>`` (compiled once per process)."""
    module = _modules.get(file_name)
    if module is not None:
        return module
    module = compile_source(file_name, expanded_source(file_name))
    _modules[file_name] = module
    return module


def compile_source(file_name, source):
    """Compile CUDA source text with NVRTC into a ``cupy.RawModule`` (no in-process cache;
    CuPy's disk cache still applies). ``file_name`` is only used in error messages."""
    cupy = backend.cupy_module()
    try:
        module = cupy.RawModule(code=source, options=COMPILE_OPTIONS)
        compile_now = getattr(module, "compile", None)   # CuPy otherwise compiles on first use
        if compile_now is not None:
            compile_now()
    except Exception as error:
        if type(error).__name__ != "CompileException":
            raise
        log = getattr(error, "log", None) or str(error)
        raise KernelCompileError(parse_compile_log(file_name, log)) from error
    return module


def get_kernel(name):
    """The ``cupy.RawKernel`` called ``name`` (for example ``"im2col_f32"``)."""
    kernel = _kernels.get(name)
    if kernel is None:
        index = kernel_index()
        if name not in index:
            raise KeyError(f"no kernel named {name!r} in {kernels_dir()}")
        kernel = _kernels[name] = get_module(index[name]).get_function(name)
    return kernel
