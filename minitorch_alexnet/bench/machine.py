"""The machine under the benchmarks: what it is, and the reference measurements every figure
is compared with.

- ``machine_header``: CPU, cores, NumPy, the BLAS behind ``numpy.matmul`` and its environment;
- ``gemm_samples``: the float32 matrix product (M, K) @ (K, N) of ``GEMM_SHAPE``, the rate a
  convolution built on matrix products cannot beat;
- ``copy_bandwidth_samples``: ``np.copyto`` of ``COPY_BYTES``, the memory-bound layers' yardstick;
- ``cross_core_write_ratio``: whether the two cores share a cache just now (a virtual machine
  can change that while the program runs, and the memory-bound steps change speed with it);
- ``median_seconds``: how one function is timed, ``synchronize``: waiting for the GPUs before
  reading the clock, and ``import_torch``: PyTorch, if it imports.

Timings on a shared machine are noisy: every figure is the median of several runs, and the
ratios compare numbers measured in the same run.
"""
import ctypes
import os
import platform
import statistics
import threading
import time

import numpy as np

GEMM_SHAPE = (4096, 4096, 1024)       # (M, K, N) of the reference product A (M, K) @ B (K, N)
COPY_BYTES = 256 * 2**20              # the reference copy: 256 MiB of float32, far beyond any cache
COPY_REPEAT = 5                       # copies timed at the start and again at the end (medians)
PROBE_BYTES = 7 * 2**20               # beyond one core's cache: several conv2 chunks
CORES_APART = 4.0                     # probe ratio above which two cores do not share a cache
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _openblas_facts():
    """Core type and thread count reported by the OpenBLAS that NumPy loaded, or None.

    OpenBLAS picks its kernels at start-up from the CPU (or from OPENBLAS_CORETYPE); the
    loaded library says which it chose. NumPy's wheels rename the symbols
    (``scipy_openblas_get_corename64_``), so try the usual spellings.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()
                            and line.split()[-1].startswith("/")})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("", ""), ("", "64_"), ("scipy_", "64_"), ("scipy_", "")):
            corename = getattr(lib, f"{prefix}openblas_get_corename{suffix}", None)
            threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
            if corename is not None and threads is not None:
                corename.restype = ctypes.c_char_p
                return f"core {corename().decode()}, {threads()} threads ({os.path.basename(path)})"
    return None


def blas_description():
    """One line about the BLAS behind ``numpy.matmul``."""
    parts = []
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        parts.append(f"{config.get('name')} {config.get('version')}")
    except Exception:                       # older NumPy: no dict mode
        parts.append("see numpy.show_config()")
    try:
        import threadpoolctl
        for pool in threadpoolctl.threadpool_info():
            parts.append(f"{pool.get('internal_api')} {pool.get('version')} "
                         f"core {pool.get('architecture')}, {pool.get('num_threads')} threads")
    except ImportError:
        facts = _openblas_facts()
        if facts:
            parts.append(facts)
    return "; ".join(parts)


def machine_header(title):
    """Lines describing the machine: CPU, cores, NumPy, BLAS and the BLAS environment."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = ", ".join(f"{name}={os.environ.get(name, '(unset)')}" for name in BLAS_ENV)
    return [
        title,
        f"machine: {cpu}, {os.cpu_count()} cores ({usable} usable), Python {platform.python_version()}, "
        f"NumPy {np.__version__}",
        f"BLAS: {blas_description()}",
        f"environment: {env}",
    ]


def synchronize(devices):
    """Wait until every GPU among ``devices`` (names such as "cuda:0" or "cpu") has finished
    its queued work, so that a clock read next includes it (nothing to do on the CPU)."""
    from ..backend import cupy_module, parse_device
    for device in devices:
        kind, index = parse_device(device)
        if kind == "cuda":
            cupy_module().cuda.Device(index).synchronize()


def median_seconds(function, repeat, warmup=1):
    """Median wall-clock seconds of ``function()`` over ``repeat`` calls, after ``warmup`` calls
    (the first call pays for page faults and for starting the BLAS threads)."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_samples(repeat):
    """GFLOP/s of the float32 reference product, one sample per call."""
    m, k, n = GEMM_SHAPE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=out)                 # warm-up
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        rates.append(2.0 * m * k * n / (time.perf_counter() - start) / 1e9)
    return rates


def copy_bandwidth_samples(repeat=COPY_REPEAT):
    """GB/s of ``np.copyto(dst, src)`` between two float32 arrays of COPY_BYTES, one sample per
    copy: 2 * nbytes (every byte is read once and written once) over the copy's time.

    This is the memory-bound layers' yardstick: a copy does no arithmetic at all, so an
    elementwise layer that moves B bytes cannot expect to take much less than a copy of B/2
    bytes. The arrays are far larger than any cache, so the copy measures the memory, and
    ``np.copyto`` runs on one thread, like the NumPy elementwise operations the layers are
    made of. (The hardware may also read dst before writing it; that traffic is not counted.)
    """
    source = np.ones(COPY_BYTES // 4, np.float32)
    destination = np.empty_like(source)
    np.copyto(destination, source)           # warm-up: the first touch of each page faults
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(destination, source)
        rates.append(2.0 * source.nbytes / (time.perf_counter() - start) / 1e9)
    return rates


def cross_core_write_ratio(repeat=9):
    """How much longer writing PROBE_BYTES takes when another core has just read them than
    when this core has; None with fewer than two usable cores or no ``sched_setaffinity``.

    Our unfolding writes into a workspace that BLAS's other thread has just read (it packs half
    of each matrix product's columns). Before a core may write a cache line that another core
    holds, that copy is invalidated: cheap between cores that share a cache, slow between cores
    that do not. On a virtual machine the host can move the two virtual cores between the two
    cases while a program runs, and the memory-bound steps change speed with it while the
    matrix product does not. On the 2-core machine of the README the ratio was 1.0-2.7 while
    the cores shared a cache and 6-16 while they did not.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        return None
    here, there = sorted(allowed)[:2]
    buffer = np.ones(PROBE_BYTES // 4, np.float32)
    source = np.full_like(buffer, 2.0)

    def read_on(cpu):
        def read():
            os.sched_setaffinity(0, {cpu})      # 0: the calling thread
            buffer.sum()
        reader = threading.Thread(target=read)
        reader.start()
        reader.join()

    def write_after_read_on(cpu):
        times = []
        for _ in range(repeat):
            read_on(cpu)
            start = time.perf_counter()
            np.copyto(buffer, source)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    os.sched_setaffinity(0, {here})
    try:
        return write_after_read_on(there) / write_after_read_on(here)
    finally:
        os.sched_setaffinity(0, allowed)


def import_torch():
    """PyTorch if it can be imported, else None (it is never a dependency of this package)."""
    try:
        import torch
    except (ImportError, OSError):
        return None
    return torch

