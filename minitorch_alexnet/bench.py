"""Where AlexNet's time goes: per-layer timings and whole training steps.

    python -m minitorch_alexnet.bench layers [--batch 32] [--repeat 3] [--rounds 3] [--device cpu|cuda]
    python -m minitorch_alexnet.bench model  [--batch 32] [--steps 3] [--preset paper] [--device cpu|cuda]

``layers`` times the forward and the backward pass of every layer of the paper's network at its
real shape (conv2, conv4 and conv5 grouped, LRN within each column, as ``model.py`` runs them).
For each convolution it prints the achieved GFLOP/s, counting 2 FLOPs per multiply-accumulate
(forward: 2 * N*F*OH*OW * C/groups*KH*KW; backward: twice that, dW and dX), the share of its
time spent unfolding and folding back (``im2col``/``col2im`` or, on the CPU for conv2..conv5,
``im2row``/``row2im``; measured inside the real calls), and compares the rate with
a float32 matrix product (4096 x 4096) @ (4096 x 1024) timed in the same run. A convolution
cannot beat the matrix product it is built on, so that ratio says how much the unfolding, the
transposes and the small per-group products cost. Targets on the CPU: conv2..conv5 at 60% or
more of the matrix-product rate, and the unfolding under 25% of each convolution's time.

``model`` times whole training steps (``model.forward(x, train=True)``, the loss, ``backward``
and one ``SGD.step``) for one column and for two columns, and, when PyTorch can be imported, the
same network in PyTorch in the same run (PyTorch is never a dependency of this package).

Timings on a shared machine are noisy: every figure is the median of several runs, and the
ratios compare numbers measured in the same run. ``layers`` times the whole network in several
rounds (``--rounds``) and reports medians over all of them, with each convolution's lowest and
highest round beside the targets, and after each round a probe of whether the two cores share a
cache (``cross_core_write_ratio``): on a virtual machine that can change while the program runs,
and the unfolding's speed changes with it. ``layers`` times each layer on the same input again
and again, so it cannot see costs that depend on where the previous layer left its output (in
which core's cache): whole steps (``model``) can.  ``--device cuda`` hands ``layers`` to
``minitorch_alexnet.cuda.bench`` (batch 128 unless ``--batch`` says otherwise).
"""
import argparse
import contextlib
import ctypes
import importlib.util
import os
import platform
import resource
import statistics
import sys
import threading
import time

import numpy as np

from . import functional as F
from .model import (DROPOUT_P, LRN_ALPHA, LRN_BETA, LRN_K, LRN_SIZE, POOL_SIZE, POOL_STRIDE,
                    PRESETS, AlexNet, Conv)
from .optim import SGD

GEMM_SHAPE = (4096, 4096, 1024)       # (M, K, N) of the reference product A (M, K) @ B (K, N)
CONV_RATE_TARGET = 0.60               # conv2..conv5 forward+backward vs the matrix product
UNFOLD_SHARE_TARGET = 0.25            # unfolding + folding back: share of each convolution's time
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ---- machine facts ---------------------------------------------------------------------------

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


# ---- timing ------------------------------------------------------------------------------------

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


PROBE_BYTES = 7 * 2**20               # about one chunk of conv2's unfolded columns
CORES_APART = 4.0                     # probe ratio above which two cores do not share a cache


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


@contextlib.contextmanager
def unfold_clock(seconds):
    """While active, ``seconds[0]`` accumulates the time that ``functional.conv`` spends
    unfolding and folding back (im2col, col2im, im2row, row2im: the names it calls are
    wrapped, then restored)."""
    from .functional import conv as conv_module
    names = ("im2col", "col2im", "im2row", "row2im")
    originals = {name: getattr(conv_module, name) for name in names}

    def clocked(function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[0] += time.perf_counter() - start
        return wrapper

    for name in names:
        setattr(conv_module, name, clocked(originals[name]))
    try:
        yield
    finally:
        for name in names:
            setattr(conv_module, name, originals[name])


# ---- the layers of the paper's network -----------------------------------------------------------

def paper_layer_plan(batch):
    """Every layer of the paper's one-device network as (name, kind, input shape, settings),
    in forward order, following model.py's table (so the shapes cannot drift from the model)."""
    make_layers, size, channels = PRESETS["paper"]
    plan = []
    for layer in make_layers(1000):
        index = layer.name[-1]
        if isinstance(layer, Conv):
            groups = 2 if layer.sees == "own" else 1
            plan.append((layer.name, "conv", (batch, channels, size, size),
                         dict(filters=layer.maps, kernel=layer.kernel, stride=layer.stride,
                              pad=layer.pad, groups=groups)))
            size, channels = F.output_size(size, layer.kernel, layer.stride, layer.pad), layer.maps
            plan.append((f"relu{index}", "relu", (batch, channels, size, size), {}))
            if layer.lrn:
                plan.append((f"lrn{index}", "lrn", (batch, channels, size, size), {}))
            if layer.pool:
                plan.append((f"pool{index}", "pool", (batch, channels, size, size), {}))
                size = F.output_size(size, POOL_SIZE, POOL_STRIDE, 0)
        else:
            features = channels * size * size if size else channels
            plan.append((layer.name, "fc", (batch, features), dict(units=layer.units)))
            channels, size = layer.units, 0
            if not layer.last:
                plan.append((f"relu{index}", "relu", (batch, channels), {}))
            if layer.dropout:
                plan.append((f"dropout{index}", "dropout", (batch, channels), {}))
    plan.append(("softmax-xent", "loss", (batch, channels), {}))
    return plan


def layer_functions(kind, shape, settings, rng, dtype):
    """``(forward, backward, output_shape, flops_forward)`` for one layer on random data;
    ``backward`` is None for the loss (its gradient comes with the forward call)."""
    x = rng.standard_normal(shape).astype(dtype)
    flops = None
    if kind == "conv":
        n, c, h, _ = shape
        f, k, groups = settings["filters"], settings["kernel"], settings["groups"]
        w = (rng.standard_normal((f, c // groups, k, k)) * 0.01).astype(dtype)
        b = np.zeros(f, dtype)
        args = (settings["stride"], settings["pad"], groups)
        forward = lambda: F.conv2d_forward(x, w, b, *args)
        backward_of = F.conv2d_backward
        out = F.output_size(h, k, settings["stride"], settings["pad"])
        flops = 2.0 * n * f * out * out * (c // groups) * k * k
    elif kind == "relu":
        forward, backward_of = (lambda: F.relu_forward(x)), F.relu_backward
    elif kind == "lrn":
        # within each column, as model.py does on one device: (N, C, H, W) -> (2N, C/2, H, W)
        n, c, h, w_ = shape
        halves = x.reshape(2 * n, c // 2, h, w_)
        forward = lambda: F.lrn_forward(halves, LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)
        backward_of = F.lrn_backward
    elif kind == "pool":
        forward = lambda: F.max_pool2d_forward(x, POOL_SIZE, POOL_STRIDE, 0)
        backward_of = F.max_pool2d_backward
    elif kind == "fc":
        w = (rng.standard_normal((settings["units"], shape[1])) * 0.01).astype(dtype)
        b = np.zeros(settings["units"], dtype)
        forward, backward_of = (lambda: F.linear_forward(x, w, b)), F.linear_backward
        flops = 2.0 * shape[0] * shape[1] * settings["units"]
    elif kind == "dropout":
        dropout_rng = np.random.default_rng(1)
        forward = lambda: F.dropout_forward(x, DROPOUT_P, True, dropout_rng)
        backward_of = F.dropout_backward
    elif kind == "loss":
        labels = rng.integers(0, shape[1], shape[0])
        return (lambda: F.softmax_cross_entropy(x, labels)), None, (), None
    else:
        raise ValueError(f"unknown layer kind {kind!r}")
    y, cache = forward()
    dy = rng.standard_normal(y.shape).astype(dtype)
    out_shape = shape if kind == "lrn" else y.shape       # LRN's output is x's shape, viewed back
    return forward, (lambda: backward_of(dy, cache)), out_shape, flops


def time_convolution(forward, backward, repeat):
    """One round of a convolution: ``repeat`` forward+backward passes timed with the unfolding
    clock running, and the matrix product timed just before and just after them, so that the
    ratio compares two rates measured under the same load. Returns lists of samples."""
    forward()
    backward()
    nearby = gemm_samples(2)
    fwd, bwd, shares = [], [], []
    for _ in range(repeat):
        unfold = [0.0]
        with unfold_clock(unfold):
            start = time.perf_counter()
            forward()
            middle = time.perf_counter()
            backward()
            end = time.perf_counter()
        fwd.append(middle - start)
        bwd.append(end - middle)
        shares.append(unfold[0] / (end - start))
    nearby += gemm_samples(2)
    return fwd, bwd, shares, nearby


def layer_benchmark(batch=32, repeat=3, rounds=3, dtype=np.float32):
    """Time every layer on the CPU; returns ``(rows, gemm_gflops)``.

    The whole network is timed ``rounds`` times, one round after the other, and every figure is
    a median over all rounds: on a shared machine the memory-bound steps (the unfolding, the
    transposes) can run two or three times slower for seconds at a time while the matrix product
    hardly changes, and rounds spread each layer's runs over the whole benchmark.

    Each row: name, kind, input and output shapes, forward_ms, backward_ms (None for the loss)
    and, for convolutions and fc layers, gflops (forward+backward); for convolutions also
    unfold_share (im2col/im2row + col2im/row2im time over forward + backward time), gemm_gflops
    (the matrix-product rate measured just before and after that convolution), and per round
    ``round_ratios`` (GFLOP/s over that round's nearby rate), ``round_shares`` and
    ``round_probes`` (``cross_core_write_ratio()`` just after the round, or None).
    """
    rates = gemm_samples(max(3, repeat))
    plan = paper_layer_plan(batch)
    samples = {name: dict(fwd=[], bwd=[], shares=[], nearby=[], round_ratios=[], round_shares=[],
                          round_probes=[]) for name, _, _, _ in plan}
    for _ in range(rounds):
        for index, (name, kind, shape, settings) in enumerate(plan):
            # the same data every round: one generator per layer
            rng = np.random.default_rng(index)
            forward, backward, out_shape, flops = layer_functions(kind, shape, settings, rng, dtype)
            record = samples[name]
            record.update(kind=kind, shape=shape, out_shape=out_shape, flops=flops)
            if kind == "conv":
                fwd, bwd, shares, nearby = time_convolution(forward, backward, repeat)
                seconds = statistics.median(fwd) + statistics.median(bwd)
                record["round_ratios"].append(3 * flops / seconds / 1e9 / statistics.median(nearby))
                record["round_shares"].append(statistics.median(shares))
                record["round_probes"].append(cross_core_write_ratio())
                rates += nearby
            else:
                fwd = [median_seconds(forward, repeat)]
                bwd = [median_seconds(backward, repeat)] if backward else []
                shares, nearby = [], []
            for key, values in (("fwd", fwd), ("bwd", bwd), ("shares", shares), ("nearby", nearby)):
                record[key] += values
    rates += gemm_samples(max(3, repeat))   # again at the end: the machine may have changed
    rows = []
    for name, *_ in plan:
        record = samples[name]
        row = dict(name=name, kind=record["kind"], shape=record["shape"], out_shape=record["out_shape"],
                   forward_ms=1e3 * statistics.median(record["fwd"]),
                   backward_ms=1e3 * statistics.median(record["bwd"]) if record["bwd"] else None)
        if record["kind"] == "conv":
            row.update(unfold_share=statistics.median(record["shares"]),
                       gemm_gflops=statistics.median(record["nearby"]),
                       round_ratios=record["round_ratios"], round_shares=record["round_shares"],
                       round_probes=record["round_probes"])
        if record["flops"] is not None:
            row["gflops"] = 3 * record["flops"] / ((row["forward_ms"] + row["backward_ms"]) / 1e3) / 1e9
        rows.append(row)
    return rows, rates


def _shape(shape):
    return "x".join(str(s) for s in shape[1:]) if len(shape) > 1 else "-"


def format_layer_table(rows, rates, batch, repeat, rounds):
    gemm = statistics.median(rates)
    lines = [f"float32 matrix product {GEMM_SHAPE[0]}x{GEMM_SHAPE[1]} @ {GEMM_SHAPE[1]}x{GEMM_SHAPE[2]}: "
             f"{gemm:.1f} GFLOP/s (median of {len(rates)}, range {min(rates):.1f}..{max(rates):.1f})",
             f"batch {batch}, float32, medians over {rounds} round(s) of {repeat} run(s) each; GFLOP/s "
             f"counts forward + backward (= 3x the forward FLOPs); x GEMM = GFLOP/s over the "
             f"matrix-product rate (for a convolution, the rate measured just before and after it); "
             f"unfold = im2col/im2row + col2im/row2im share of the convolution's time", "",
             f"{'layer':<13} {'input':>12} {'output':>12} {'fwd ms':>9} {'bwd ms':>9} "
             f"{'GFLOP/s':>8} {'x GEMM':>7} {'unfold':>7}"]
    total_f = total_b = 0.0
    for row in rows:
        gflops = row.get("gflops")
        share = row.get("unfold_share")
        total_f += row["forward_ms"]
        total_b += row["backward_ms"] or 0.0
        lines.append(
            f"{row['name']:<13} {_shape(row['shape']):>12} {_shape(row['out_shape']):>12} "
            f"{row['forward_ms']:>9.2f} "
            f"{'-' if row['backward_ms'] is None else format(row['backward_ms'], '.2f'):>9} "
            f"{'-' if gflops is None else format(gflops, '.1f'):>8} "
            f"{'-' if gflops is None else format(gflops / row.get('gemm_gflops', gemm), '.2f'):>7} "
            f"{'-' if share is None else format(100 * share, '.1f') + '%':>7}")
    lines.append(f"{'total':<13} {'':>12} {'':>12} {total_f:>9.1f} {total_b:>9.1f}   "
                 f"=> {1e3 * batch / (total_f + total_b):.1f} images/s (layers alone)")
    lines += ["", f"targets: conv2..conv5 forward+backward >= {CONV_RATE_TARGET:.0%} of the matrix-product "
              f"rate; unfolding (im2col/im2row + col2im/row2im) < {UNFOLD_SHARE_TARGET:.0%} of each "
              f"convolution's time. Judged on the medians; 'rounds' gives the lowest and highest "
              f"round's figure.",
              f"{'conv':<6} {'GFLOP/s':>8} {'GEMM nearby':>12} {'x GEMM':>7} {'rounds':>11} {'rate target':>12} "
              f"{'unfold':>7} {'rounds':>13} {'unfold target':>14}"]
    for row in rows:
        if row["kind"] != "conv":
            continue
        ratio = row["gflops"] / row["gemm_gflops"]
        rate_ok = "-" if row["name"] == "conv1" else ("met" if ratio >= CONV_RATE_TARGET else "NOT met")
        unfold_ok = "met" if row["unfold_share"] < UNFOLD_SHARE_TARGET else "NOT met"
        ratios, shares = row["round_ratios"], row["round_shares"]
        ratio_range = f"{min(ratios):.2f}-{max(ratios):.2f}"
        share_range = f"{100 * min(shares):.1f}-{100 * max(shares):.1f}%"
        lines.append(f"{row['name']:<6} {row['gflops']:>8.1f} {row['gemm_gflops']:>12.1f} {ratio:>7.2f} "
                     f"{ratio_range:>11} {rate_ok:>12} {100 * row['unfold_share']:>6.1f}% "
                     f"{share_range:>13} {unfold_ok:>14}")
    lines += ["", "each round: x GEMM / unfold share / cross-core write ratio (time to write "
              f"{PROBE_BYTES >> 20} MB just read by the other core over the time after this core read "
              f"it; above {CORES_APART:g} the two cores do not share a cache and the memory-bound "
              "steps slow down; '-' when it cannot be measured)"]
    for row in rows:
        if row["kind"] != "conv":
            continue
        cells = [f"{ratio:.2f} / {100 * share:4.1f}% / " + ("-" if probe is None else f"{probe:.1f}")
                 for ratio, share, probe in zip(row["round_ratios"], row["round_shares"], row["round_probes"])]
        lines.append(f"{row['name']:<6} " + "   ".join(cells))
    return "\n".join(lines)


def run_layers(args):
    if args.device == "cuda":
        if importlib.util.find_spec("minitorch_alexnet.cuda.bench") is None:
            print("--device cuda needs minitorch_alexnet/cuda/bench.py (the GPU layer benchmark), "
                  "which this installation does not have.")
            return 2
        from .cuda import bench as gpu_bench
        result = gpu_bench.gpu_layer_benchmark(batch=args.batch or 128, repeat=max(args.repeat, 5))
        gpu_bench.print_gpu_benchmark(result)
        return 0
    batch = args.batch or 32
    print("\n".join(machine_header(f"AlexNet layers, forward and backward, CPU, batch {batch}")))
    rows, rates = layer_benchmark(batch, args.repeat, args.rounds)
    print(format_layer_table(rows, rates, batch, args.repeat, args.rounds))
    return 0


# ---- whole training steps -------------------------------------------------------------------------

def held_bytes(*containers):
    """Bytes of the distinct arrays reachable from ``containers`` (dicts, lists, tuples): what a
    training step keeps alive (parameters, gradients, velocities, the caches for backward).
    Views count once, through the array that owns the memory."""
    seen, total, stack = set(), 0, list(containers)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "nbytes") and hasattr(item, "base"):
            owner = item
            while getattr(owner, "base", None) is not None and hasattr(owner.base, "nbytes"):
                owner = owner.base
            if id(owner) not in seen:
                seen.add(id(owner))
                total += owner.nbytes
    return total


def _peak_rss_mib():
    """The process's peak resident memory so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _synchronize(devices):
    from .backend import cupy_module, parse_device
    for device in devices:
        kind, index = parse_device(device)
        if kind == "cuda":
            with cupy_module().cuda.Device(index):
                cupy_module().cuda.Device(index).synchronize()


def train_step_benchmark(preset, batch, steps, devices, num_classes=1000, seed=0):
    """Images per second of full training steps of our AlexNet on ``devices``, plus memory."""
    from .backend import cupy_module, parse_device, to_device
    model = AlexNet(num_classes=num_classes, preset=preset, seed=seed, devices=devices)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, model.in_channels, model.input_size, model.input_size)).astype(np.float32)
    labels = rng.integers(0, num_classes, batch)
    on_gpu = parse_device(model.devices[0])[0] == "cuda"
    pool = cupy_module().get_default_memory_pool() if on_gpu else None
    if pool is not None:
        pool.free_all_blocks()
    x, labels = to_device(x, model.devices[0]), to_device(labels, model.devices[0])
    optimizer = SGD(model)
    rss_before = _peak_rss_mib()

    def step():
        logits = model.forward(x, train=True)
        loss, dlogits = F.softmax_cross_entropy(logits, labels)
        model.backward(dlogits)
        optimizer.step()
        _synchronize(model.devices)
        return loss

    loss = float(step())                     # warm-up (and the optimizer's velocities)
    seconds = median_seconds(step, steps, warmup=0)
    result = dict(images_per_s=batch / seconds, step_ms=1e3 * seconds, loss=loss,
                  held_mib=held_bytes(model.params, model.grads, model.caches, optimizer.velocity) / 2**20,
                  rss_peak_mib=_peak_rss_mib(), rss_growth_mib=_peak_rss_mib() - rss_before)
    if pool is not None:
        result["gpu_pool_mib"] = pool.total_bytes() / 2**20   # blocks kept = the pool's peak
    return result


def torch_alexnet(torch, preset, num_classes):
    """The same network in PyTorch: the table of model.py, grouped convolutions, LRN within each
    column with alpha*size (PyTorch divides alpha by size; the paper does not)."""
    nn = torch.nn
    make_layers, size, channels = PRESETS[preset]

    class ColumnLRN(nn.Module):
        def __init__(self):
            super().__init__()
            self.lrn = nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA * LRN_SIZE, beta=LRN_BETA, k=LRN_K)

        def forward(self, x):
            n, c, h, w = x.shape
            return self.lrn(x.reshape(2 * n, c // 2, h, w)).reshape(n, c, h, w)

    modules, flat = [], False
    for layer in make_layers(num_classes):
        if isinstance(layer, Conv):
            groups = 2 if layer.sees == "own" else 1
            modules += [nn.Conv2d(channels, layer.maps, layer.kernel, layer.stride, layer.pad, groups=groups),
                        nn.ReLU()]
            size, channels = F.output_size(size, layer.kernel, layer.stride, layer.pad), layer.maps
            if layer.lrn:
                modules.append(ColumnLRN())
            if layer.pool:
                modules.append(nn.MaxPool2d(POOL_SIZE, POOL_STRIDE))
                size = F.output_size(size, POOL_SIZE, POOL_STRIDE, 0)
        else:
            if not flat:
                modules.append(nn.Flatten())
                channels, flat = channels * size * size, True
            modules.append(nn.Linear(channels, layer.units))
            channels = layer.units
            if not layer.last:
                modules.append(nn.ReLU())
            if layer.dropout:
                modules.append(nn.Dropout(DROPOUT_P))
    return nn.Sequential(*modules)


def torch_train_step_benchmark(preset, batch, steps, device, num_classes=1000):
    """Images per second of PyTorch training steps of the same network, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.manual_seed(0)
    _, size, channels = PRESETS[preset]
    net = torch_alexnet(torch, preset, num_classes).to(device).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, channels, size, size, device=device)
    labels = torch.randint(0, num_classes, (batch,), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), labels)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    step()
    seconds = median_seconds(step, steps, warmup=0)
    return dict(images_per_s=batch / seconds, step_ms=1e3 * seconds,
                version=f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")


def two_column_devices(device):
    if device == "cpu":
        return ("cpu:0", "cpu:1")
    from .backend import cupy_module
    count = cupy_module().cuda.runtime.getDeviceCount()
    return ("cuda:0", "cuda:1") if count >= 2 else ("cuda:0", "cuda:0")


def run_model(args):
    batch = args.batch or (128 if args.device == "cuda" else 32)
    device = args.device
    one = ("cuda:0",) if device == "cuda" else ("cpu",)
    configs = [("one column", one), ("two columns", two_column_devices(device))]
    print("\n".join(machine_header(f"AlexNet training steps ({args.preset} preset), {device}, batch {batch}, "
                                   f"float32, median of {args.steps} steps after one warm-up")))
    results = []
    for label, devices in configs:
        results.append((label, devices, train_step_benchmark(args.preset, batch, args.steps, devices)))
    reference = None if args.no_torch else torch_train_step_benchmark(args.preset, batch, args.steps, device)
    print("step = forward(train=True) + softmax cross-entropy + backward + SGD step (momentum 0.9, "
          "weight decay 5e-4)")
    print("held = parameters + gradients + velocities + the caches kept for backward")
    print("")
    memory = "GPU pool MiB" if device == "cuda" else "peak RSS MiB"
    print(f"{'network':<26} {'devices':<18} {'step ms':>9} {'images/s':>9} {'held MiB':>9} {memory:>13}")
    for label, devices, result in results:
        peak = result.get("gpu_pool_mib", result["rss_peak_mib"])
        print(f"{'ours, ' + label:<26} {','.join(devices):<18} {result['step_ms']:>9.1f} "
              f"{result['images_per_s']:>9.2f} {result['held_mib']:>9.0f} {peak:>13.0f}")
    if reference is None:
        print("PyTorch: not measured (not importable here" + (", or --no-torch" if args.no_torch else "") + ")")
    else:
        print(f"{'PyTorch, grouped convs':<26} {device:<18} {reference['step_ms']:>9.1f} "
              f"{reference['images_per_s']:>9.2f} {'-':>9} {'-':>13}")
        ratio = results[0][2]["images_per_s"] / reference["images_per_s"]
        target = " (target >= 0.70: " + ("met" if ratio >= 0.7 else "NOT met") + ")" if device == "cpu" else ""
        print(f"ours (one column) / PyTorch throughput: {ratio:.2f}{target}; {reference['version']}")
    return 0


# ---- command line ------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minitorch_alexnet.bench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    layers = commands.add_parser("layers", help="forward/backward time of every AlexNet layer")
    layers.add_argument("--batch", type=int, default=None, help="images per batch (32 on the CPU, 128 on a GPU)")
    layers.add_argument("--repeat", type=int, default=3, help="timed runs per layer in each round")
    layers.add_argument("--rounds", type=int, default=3,
                        help="times the whole network is timed, one round after the other (medians over all)")
    layers.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    model = commands.add_parser("model", help="training images per second, one and two columns")
    model.add_argument("--batch", type=int, default=None, help="images per batch (32 on the CPU, 128 on a GPU)")
    model.add_argument("--steps", type=int, default=3, help="timed training steps (the median is shown)")
    model.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    model.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    model.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    args = parser.parse_args(argv)
    if (getattr(args, "repeat", 1) < 1 or getattr(args, "rounds", 1) < 1 or getattr(args, "steps", 1) < 1
            or (args.batch is not None and args.batch < 1)):
        parser.error("--batch, --repeat, --rounds and --steps must be positive")
    return run_layers(args) if args.command == "layers" else run_model(args)


if __name__ == "__main__":
    sys.exit(main())
