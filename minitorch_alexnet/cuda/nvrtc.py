"""Compile CUDA source with NVRTC through its C API (``ctypes`` only): no GPU, no driver, no CuPy.

``cupy.RawModule`` compiles our kernels with NVRTC, which (unlike nvcc) sees no host headers and
has its own defaults, so a kernel nvcc accepts can still fail on the GPU machine. The tests use
this module to compile the exact text the loader hands to RawModule, without a GPU.

Where libnvrtc comes from
    The PyPI wheel ``nvidia-cuda-nvrtc`` (in the ``dev`` extra) installs it under the namespace
    package ``nvidia``: ``nvidia/cu13/lib/libnvrtc.so.13`` (CUDA 13 wheels) or
    ``nvidia/cuda_nvrtc/lib/libnvrtc.so.12`` (CUDA 12 wheels). ``find_library()`` looks there
    first, then in the ``lib64`` folder of a CUDA toolkit (``$CUDA_HOME``, ``$CUDA_PATH``, next to
    ``nvcc`` on PATH, ``/usr/local/cuda``). Nothing here needs a GPU or its driver.

Usage
    >>> nvrtc = NVRTC.load()                     # raises NVRTCNotFound without libnvrtc
    >>> ok, log = nvrtc.compile(source, "pool.cu", ["--gpu-architecture=compute_80"])
"""
import ctypes
import glob
import importlib.util
import os
import shutil

NVRTC_SUCCESS = 0


class NVRTCNotFound(RuntimeError):
    """No libnvrtc shared library could be found or loaded."""


class NVRTCError(RuntimeError):
    """An NVRTC API call (other than the compilation itself) failed."""


def _wheel_folders():
    """``lib`` folders of the nvidia-cuda-nvrtc wheels installed in this Python."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    if spec is None or spec.submodule_search_locations is None:
        return []
    folders = []
    for root in spec.submodule_search_locations:
        for sub in ("cu13", "cuda_nvrtc", "cu12"):
            folders.append(os.path.join(root, sub, "lib"))
    return folders


def _toolkit_folders():
    """``lib64`` folders of a CUDA toolkit, if one is installed."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    roots.append("/usr/local/cuda")
    folders = []
    for root in roots:
        if root:
            folders += [os.path.join(root, "lib64"), os.path.join(root, "lib")]
    return folders


def candidate_libraries(include_toolkit=True):
    """Paths of every ``libnvrtc.so*`` found, wheel folders first (newest name first in each)."""
    folders = _wheel_folders() + (_toolkit_folders() if include_toolkit else [])
    found = []
    for folder in folders:
        names = sorted(glob.glob(os.path.join(folder, "libnvrtc.so*")), reverse=True)
        for path in names:
            if "builtins" not in os.path.basename(path) and path not in found:
                found.append(path)
    return found


def find_library(include_toolkit=True):
    """Path of the libnvrtc to use, or None."""
    candidates = candidate_libraries(include_toolkit)
    return candidates[0] if candidates else None


class NVRTC:
    """A loaded libnvrtc with just what a compile check needs."""

    def __init__(self, path):
        self.path = path
        try:
            # libnvrtc opens its builtins library (libnvrtc-builtins.so.<version>) by name when
            # it compiles; the wheel puts it beside libnvrtc but on no search path, so load it
            # first from that folder, globally, where the later lookup finds it.
            folder = os.path.dirname(path)
            for name in sorted(os.listdir(folder)):
                if name.startswith("libnvrtc-builtins.so"):
                    ctypes.CDLL(os.path.join(folder, name), mode=ctypes.RTLD_GLOBAL)
            lib = ctypes.CDLL(path)
        except OSError as error:
            raise NVRTCNotFound(f"cannot load {path}: {error}") from error
        self._lib = lib
        program = ctypes.c_void_p
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        lib.nvrtcGetErrorString.argtypes = [ctypes.c_int]
        lib.nvrtcVersion.restype = ctypes.c_int
        lib.nvrtcVersion.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
        lib.nvrtcCreateProgram.restype = ctypes.c_int
        lib.nvrtcCreateProgram.argtypes = [ctypes.POINTER(program), ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                                           ctypes.POINTER(ctypes.c_char_p)]
        lib.nvrtcCompileProgram.restype = ctypes.c_int
        lib.nvrtcCompileProgram.argtypes = [program, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        lib.nvrtcGetProgramLogSize.restype = ctypes.c_int
        lib.nvrtcGetProgramLogSize.argtypes = [program, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcGetProgramLog.restype = ctypes.c_int
        lib.nvrtcGetProgramLog.argtypes = [program, ctypes.c_char_p]
        lib.nvrtcGetPTXSize.restype = ctypes.c_int
        lib.nvrtcGetPTXSize.argtypes = [program, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcDestroyProgram.restype = ctypes.c_int
        lib.nvrtcDestroyProgram.argtypes = [ctypes.POINTER(program)]

    @classmethod
    def load(cls, include_toolkit=True):
        """Load the first libnvrtc ``find_library()`` finds; NVRTCNotFound if there is none."""
        path = find_library(include_toolkit)
        if path is None:
            raise NVRTCNotFound("no libnvrtc.so found (pip install nvidia-cuda-nvrtc, "
                                "or install the CUDA toolkit)")
        return cls(path)

    def _check(self, result, call):
        if result != NVRTC_SUCCESS:
            message = self._lib.nvrtcGetErrorString(result)
            raise NVRTCError(f"{call} failed: {message.decode() if message else result}")

    def version(self):
        """(major, minor) of this libnvrtc, e.g. (13, 0)."""
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self._lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        return major.value, minor.value

    def compile(self, source, name, options=()):
        """Compile ``source`` (program name ``name``); return (succeeded, log text).

        Only a failure of the NVRTC calls around the compilation raises; a compile error is
        reported as ``(False, log)``.
        """
        program = ctypes.c_void_p()
        self._check(self._lib.nvrtcCreateProgram(ctypes.byref(program), source.encode("utf-8"),
                                                 name.encode("utf-8"), 0, None, None),
                    "nvrtcCreateProgram")
        try:
            encoded = [option.encode("utf-8") for option in options]
            array = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
            result = self._lib.nvrtcCompileProgram(program, len(encoded), array)
            size = ctypes.c_size_t()
            self._check(self._lib.nvrtcGetProgramLogSize(program, ctypes.byref(size)),
                        "nvrtcGetProgramLogSize")
            buffer = ctypes.create_string_buffer(max(size.value, 1))
            self._check(self._lib.nvrtcGetProgramLog(program, buffer), "nvrtcGetProgramLog")
            log = buffer.value.decode("utf-8", errors="replace")
            if result == NVRTC_SUCCESS:
                ptx_size = ctypes.c_size_t()
                self._check(self._lib.nvrtcGetPTXSize(program, ctypes.byref(ptx_size)), "nvrtcGetPTXSize")
                if ptx_size.value <= 1:
                    return False, log + f"\n{name}: NVRTC reported success but produced no PTX"
                return True, log
            if not log.strip():
                message = self._lib.nvrtcGetErrorString(result)
                log = f"{name}: nvrtcCompileProgram failed: {message.decode() if message else result}"
            return False, log
        finally:
            self._lib.nvrtcDestroyProgram(ctypes.byref(program))
