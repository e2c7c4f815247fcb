"""Where AlexNet's time goes: per-layer timings and whole training steps.

    python -m minitorch_alexnet.bench layers [--preset paper|small] [--batch 32] [--repeat 3] [--rounds 3]
                                             [--no-torch] [--device cpu|cuda]
    python -m minitorch_alexnet.bench model  [--batch 32] [--steps 3] [--preset paper] [--device cpu|cuda]
    python -m minitorch_alexnet.bench input  [--preset small] [--batch 64]   (see bench_input.py)

``layers`` times the forward and the backward pass of every layer of a preset's network at its
real shape (conv2, conv4 and conv5 grouped, LRN within each column, as ``model.py`` runs them):
the paper's (``--preset paper``, the default, batch 32) or the small one (``--preset small``,
32x32 images and 10 classes, batch 64).
For each convolution it prints the achieved GFLOP/s, counting 2 FLOPs per multiply-accumulate
(forward: 2 * N*F*OH*OW * C/groups*KH*KW; backward: twice that, dW and dX), the share of its
time spent unfolding and folding back (``im2col``/``col2im`` or, on the CPU for conv2..conv5,
``im2row``/``row2im``; measured inside the real calls), and compares the rate with
a float32 matrix product (4096 x 4096) @ (4096 x 1024) timed in the same run. A convolution
cannot beat the matrix product it is built on, so that ratio says how much the unfolding, the
transposes and the small per-group products cost. Targets on the CPU: conv2..conv5 at 60% or
more of the matrix-product rate, and the unfolding under 25% of each convolution's time.

The other layers (ReLU, LRN, max-pool, dropout, the loss, and each convolution's bias add and
bias gradient timed apart) do little arithmetic per byte: memory bounds them, not the
multipliers. For each of them ``layers`` prints the fewest bytes its forward and its backward
must move (``minimum_bytes`` says which arrays are counted), the GB/s that makes, and the ratio
to the machine's copy bandwidth (``np.copyto`` of 256 MiB, timed at the start and at the end of
the run): how close the layer comes to the memory's limit.

When PyTorch can be imported (it is never a dependency), every layer is also timed in PyTorch
in the same round, right after ours, on the same arrays (``torch.from_numpy``), at PyTorch's own
thread count (2 on the README's machine; the header says). PyTorch splits each operation among
its threads and waits for all of them, so on a machine whose cores are busy with other work its
small operations can take a scheduler time slice (4, 8, 12 ms) instead of microseconds: such
round numbers in the PyTorch columns mean the machine was busy, not that PyTorch is slow.

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

from . import bench_input
from . import functional as F
from .model import (DROPOUT_P, LRN_ALPHA, LRN_BETA, LRN_K, LRN_SIZE, POOL_SIZE, POOL_STRIDE,
                    PRESETS, AlexNet, Conv)
from .backend import keep_freed_memory
from .optim import SGD

GEMM_SHAPE = (4096, 4096, 1024)       # (M, K, N) of the reference product A (M, K) @ B (K, N)
CONV_RATE_TARGET = 0.60               # conv2..conv5 forward+backward vs the matrix product
UNFOLD_SHARE_TARGET = 0.25            # unfolding + folding back: share of each convolution's time
MODEL_RATIO_TARGET = 1.3              # whole training steps: our images/s over PyTorch's
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
COPY_BYTES = 256 * 2**20              # the reference copy: 256 MiB of float32, far beyond any cache
COPY_REPEAT = 5                       # copies timed at the start and again at the end (medians)
POOL_INDEX_BYTES = 8                  # one argmax index per pooled output, int64 as PyTorch keeps it
DROPOUT_MASK_BYTES = 1                # one bool per unit: kept or dropped
LABEL_BYTES = 8                       # one int64 class index per image
NUM_CLASSES = {"paper": 1000, "small": 10}
DEFAULT_BATCH = {"paper": 32, "small": 64}    # bench layers on the CPU, unless --batch


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


# ---- the layers of the network ------------------------------------------------------------------

def layer_plan(preset="paper", batch=32):
    """Every layer of a preset's one-device network as (name, kind, input shape, settings), in
    forward order, following model.py's table (so the shapes cannot drift from the model).

    After each convolution comes a row ``convN.bias``: the bias add and its gradient at that
    convolution's output shape, timed apart (they are already inside the convolution's time)."""
    make_layers, size, channels, _ = PRESETS[preset]
    plan = []
    for layer in make_layers(NUM_CLASSES[preset]):
        index = layer.name[-1]
        if isinstance(layer, Conv):
            groups = 2 if layer.sees == "own" else 1
            plan.append((layer.name, "conv", (batch, channels, size, size),
                         dict(filters=layer.maps, kernel=layer.kernel, stride=layer.stride,
                              pad=layer.pad, groups=groups)))
            size, channels = F.output_size(size, layer.kernel, layer.stride, layer.pad), layer.maps
            plan.append((f"{layer.name}.bias", "bias", (batch, channels, size, size), {}))
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


def layer_inputs(kind, shape, settings, rng, dtype):
    """The random arrays one layer runs on: x, and w and b, or labels, where the layer has them.
    Ours and PyTorch's run on these same arrays."""
    x = rng.standard_normal(shape).astype(dtype)
    inputs = dict(x=x)
    if kind == "conv":
        f, c, k, groups = settings["filters"], shape[1], settings["kernel"], settings["groups"]
        inputs.update(w=(rng.standard_normal((f, c // groups, k, k)) * 0.01).astype(dtype),
                      b=np.zeros(f, dtype))
    elif kind == "fc":
        inputs.update(w=(rng.standard_normal((settings["units"], shape[1])) * 0.01).astype(dtype),
                      b=np.zeros(settings["units"], dtype))
    elif kind == "bias":
        inputs["b"] = (rng.standard_normal(shape[1]) * 0.01).astype(dtype)
    elif kind == "lrn":
        # within each column, as model.py does on one device: (N, C, H, W) -> (2N, C/2, H, W)
        n, c, h, w = shape
        inputs["x"] = x.reshape(2 * n, c // 2, h, w)
    elif kind == "loss":
        inputs["labels"] = rng.integers(0, shape[1], shape[0])
    elif kind not in ("relu", "pool", "dropout"):
        raise ValueError(f"unknown layer kind {kind!r}")
    return inputs


def our_layer_ops(kind, settings, inputs):
    """``(forward, backward_of)`` of our layer: ``forward()`` returns ``(y, cache)`` and
    ``backward_of(dy, cache)`` the gradients; ``backward_of`` is None for the loss, whose
    forward call also returns the gradient."""
    x, w, b = inputs["x"], inputs.get("w"), inputs.get("b")
    if kind == "bias":
        # y += b[f] at every image and pixel, in place on a copy of x (conv.add_bias), and db[f] =
        # dy summed over images and pixels (conv.bias_gradient, what conv2d_backward calls): the
        # bias add as one separate pass over the whole output (our convolution adds b to each
        # chunk's product while that is still in cache, so this row says what the step would
        # cost on its own, not what it costs inside the layer)
        y = x.copy()
        return (lambda: (F.add_bias(y, b), None)), (lambda dy, cache: F.bias_gradient(dy))
    dropout_rng = np.random.default_rng(1)
    ops = {
        "conv": (lambda: F.conv2d_forward(x, w, b, settings["stride"], settings["pad"], settings["groups"]),
                 F.conv2d_backward),
        "fc": (lambda: F.linear_forward(x, w, b), F.linear_backward),
        "relu": (lambda: F.relu_forward(x), F.relu_backward),
        "lrn": (lambda: F.lrn_forward(x, LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K), F.lrn_backward),
        "pool": (lambda: F.max_pool2d_forward(x, POOL_SIZE, POOL_STRIDE, 0), F.max_pool2d_backward),
        "dropout": (lambda: F.dropout_forward(x, DROPOUT_P, True, dropout_rng), F.dropout_backward),
        "loss": (lambda: F.softmax_cross_entropy(x, inputs["labels"]), None),
    }
    return ops[kind]


def layer_flops(kind, shape, settings):
    """Forward FLOPs (2 per multiply-accumulate) of a convolution or fc layer, else None."""
    if kind == "conv":
        n, c, h, _ = shape
        f, k, groups = settings["filters"], settings["kernel"], settings["groups"]
        out = F.output_size(h, k, settings["stride"], settings["pad"])
        return 2.0 * n * f * out * out * (c // groups) * k * k
    if kind == "fc":
        return 2.0 * shape[0] * shape[1] * settings["units"]
    return None


def layer_functions(kind, shape, settings, rng, dtype):
    """One layer of ours on random data, as a dict: ``forward`` and ``backward`` (no arguments;
    backward None for the loss), ``out_shape``, ``flops`` (forward, or None) and ``inputs``, the
    arrays (x, w, b, labels, and dy: the upstream gradient backward is given) for PyTorch."""
    inputs = layer_inputs(kind, shape, settings, rng, dtype)
    forward, backward_of = our_layer_ops(kind, settings, inputs)
    layer = dict(forward=forward, backward=None, out_shape=(), flops=layer_flops(kind, shape, settings),
                 inputs=inputs)
    if backward_of is None:
        return layer
    y, cache = forward()
    dy = rng.standard_normal(y.shape).astype(dtype)
    inputs["dy"] = dy
    layer.update(backward=lambda: backward_of(dy, cache),
                 out_shape=shape if kind == "lrn" else y.shape)   # LRN's output is x's shape, viewed back
    return layer


def minimum_bytes(kind, in_shape, out_shape, itemsize):
    """``(forward, backward)``: the fewest bytes a memory-bound layer's passes must move to and
    from memory, counted from the math: every array the pass needs is read once, every array it
    produces is written once, and nothing else (no temporaries, no cache beyond what backward
    needs). None for convolutions and fc layers (matrix products: see their GFLOP/s).

    With X and Y the bytes of the input and the output and n(.) their element counts:

    relu     forward: reads x, writes y: 2X. backward: reads dy and y (y > 0 is the mask),
             writes dx: 3X.
    lrn      forward: reads x, writes y: 2X. Only x and y are counted: whatever else a cache
             keeps for backward (the window sums, say) is the implementation's choice.
             backward: reads dy and x (the window sums and y can be recomputed from x),
             writes dx: 3X.
    pool     forward: reads x, writes y and one argmax index per output (int64, 8 bytes, as
             PyTorch keeps it): X + Y + 8 n(Y). backward: reads dy and the index, writes the
             whole dx, zeros included: Y + 8 n(Y) + X.
    dropout  forward: reads x, writes y and the mask (one byte per unit): 2X + n(X).
             backward: reads dy and the mask, writes dx: 2X + n(X).
    loss     softmax cross-entropy, which gives the gradient in its forward call: reads the
             logits and the labels (int64), writes dlogits: 2X + 8N. Backward: 0.
    bias     forward, y += b: reads y and b, writes y: 2Y + F. backward, db = dy summed over
             images and pixels: reads dy, writes db: Y + F (F: the bias's bytes).
    """
    x_bytes = int(np.prod(in_shape)) * itemsize
    y_count = int(np.prod(out_shape))
    if kind in ("relu", "lrn"):
        return 2 * x_bytes, 3 * x_bytes
    if kind == "pool":
        moved = x_bytes + y_count * itemsize + y_count * POOL_INDEX_BYTES
        return moved, moved
    if kind == "dropout":
        moved = 2 * x_bytes + (x_bytes // itemsize) * DROPOUT_MASK_BYTES
        return moved, moved
    if kind == "loss":
        return 2 * x_bytes + in_shape[0] * LABEL_BYTES, 0
    if kind == "bias":
        bias_bytes = in_shape[1] * itemsize
        return 2 * x_bytes + bias_bytes, x_bytes + bias_bytes
    return None, None


# ---- the same layers in PyTorch -------------------------------------------------------------------

def import_torch():
    """PyTorch if it can be imported, else None (it is never a dependency of this package)."""
    try:
        import torch
    except (ImportError, OSError):
        return None
    return torch


def torch_layer_op(torch, kind, settings, tensors):
    """PyTorch's forward of one layer as a function of no arguments, on ``tensors``."""
    nn_f, x, w, b = torch.nn.functional, tensors["x"], tensors.get("w"), tensors.get("b")
    ops = {
        "conv": lambda: nn_f.conv2d(x, w, b, settings["stride"], settings["pad"], groups=settings["groups"]),
        "fc": lambda: nn_f.linear(x, w, b),
        "relu": lambda: torch.relu(x),
        # x is already viewed (2N, C/2, H, W); PyTorch divides alpha by size, the paper does not
        "lrn": lambda: nn_f.local_response_norm(x, LRN_SIZE, alpha=LRN_ALPHA * LRN_SIZE, beta=LRN_BETA, k=LRN_K),
        "pool": lambda: nn_f.max_pool2d(x, POOL_SIZE, POOL_STRIDE),
        "dropout": lambda: nn_f.dropout(x, DROPOUT_P, training=True),
        "loss": lambda: nn_f.cross_entropy(x, tensors["labels"]),
    }
    return ops[kind]


def torch_layer_functions(torch, kind, settings, inputs):
    """``(forward, backward)`` of the same layer in PyTorch, on the same arrays as ours
    (``torch.from_numpy`` shares their memory), at PyTorch's own thread count.

    Backward is autograd's: ``torch.autograd.grad(y, leaves, dy, retain_graph=True)`` gives the
    gradients of x (and w, b) like ours, keeps the graph so that it can run again, and returns
    them instead of adding them into ``.grad`` (which would cost one more pass over each). The
    forward runs with x requiring a gradient, so it saves what backward needs, as ours does.
    The bias row is two plain tensor operations, as ours are."""
    tensors = {name: torch.from_numpy(array) for name, array in inputs.items()}
    if kind == "bias":
        y, b_column, dy = torch.from_numpy(inputs["x"].copy()), tensors["b"].view(-1, 1, 1), tensors["dy"]
        return (lambda: y.add_(b_column)), (lambda: dy.sum(dim=(0, 2, 3)))
    leaves = [tensors[name].requires_grad_() for name in ("x", "w", "b") if name in tensors]
    forward = torch_layer_op(torch, kind, settings, tensors)
    y = forward()
    upstream = tensors.get("dy")              # None for the loss: a scalar's gradient is 1
    return forward, (lambda: torch.autograd.grad(y, leaves, upstream, retain_graph=True))


# ---- timing the layers ------------------------------------------------------------------------------

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


def time_layer_round(record, index, kind, shape, settings, repeat, dtype, torch):
    """One round of one layer, its samples added to ``record``: ours (a convolution with its
    unfolding clock, the matrix product nearby and the cross-core probe), then, when ``torch``
    is given, PyTorch's on the same arrays. Returns the nearby matrix-product samples."""
    rng = np.random.default_rng(index)        # the same data every round: one generator per layer
    layer = layer_functions(kind, shape, settings, rng, dtype)
    forward, backward = layer["forward"], layer["backward"]
    record.update(kind=kind, shape=shape, out_shape=layer["out_shape"], flops=layer["flops"])
    nearby = []
    if kind == "conv":
        fwd, bwd, shares, nearby = time_convolution(forward, backward, repeat)
        seconds = statistics.median(fwd) + statistics.median(bwd)
        record["round_ratios"].append(3 * layer["flops"] / seconds / 1e9 / statistics.median(nearby))
        record["round_shares"].append(statistics.median(shares))
        record["round_probes"].append(cross_core_write_ratio())
        record["shares"] += shares
        record["nearby"] += nearby
    else:
        fwd = [median_seconds(forward, repeat)]
        bwd = [median_seconds(backward, repeat)] if backward else []
    record["fwd"] += fwd
    record["bwd"] += bwd
    if torch is not None:
        torch_forward, torch_backward = torch_layer_functions(torch, kind, settings, layer["inputs"])
        record["torch_fwd"].append(median_seconds(torch_forward, repeat))
        record["torch_bwd"].append(median_seconds(torch_backward, repeat))
    return nearby


def summarise_layer(name, record, itemsize):
    """One table row from a layer's samples over all rounds (see ``layer_benchmark``)."""
    median_ms = lambda samples: 1e3 * statistics.median(samples) if samples else None
    row = dict(name=name, kind=record["kind"], shape=record["shape"], out_shape=record["out_shape"],
               forward_ms=median_ms(record["fwd"]), backward_ms=median_ms(record["bwd"]))
    seconds = (row["forward_ms"] + (row["backward_ms"] or 0.0)) / 1e3
    if record["kind"] == "conv":
        row.update(unfold_share=statistics.median(record["shares"]),
                   gemm_gflops=statistics.median(record["nearby"]),
                   round_ratios=record["round_ratios"], round_shares=record["round_shares"],
                   round_probes=record["round_probes"])
    if record["flops"] is not None:
        row["gflops"] = 3 * record["flops"] / seconds / 1e9
    forward_bytes, backward_bytes = minimum_bytes(record["kind"], record["shape"], record["out_shape"], itemsize)
    if forward_bytes is not None:
        row.update(forward_bytes=forward_bytes, backward_bytes=backward_bytes,
                   forward_gbps=forward_bytes / (row["forward_ms"] / 1e3) / 1e9,
                   backward_gbps=backward_bytes / (row["backward_ms"] / 1e3) / 1e9 if row["backward_ms"] else None,
                   gbps=(forward_bytes + backward_bytes) / seconds / 1e9)
    if record["torch_fwd"]:
        row.update(torch_forward_ms=median_ms(record["torch_fwd"]),
                   torch_backward_ms=median_ms(record["torch_bwd"]))
        # ours over PyTorch's, forward + backward (for the loss: our one call over both of theirs)
        row["torch_ratio"] = seconds * 1e3 / (row["torch_forward_ms"] + row["torch_backward_ms"])
    return row


def layer_benchmark(batch=32, repeat=3, rounds=3, dtype=np.float32, preset="paper", torch=None):
    """Time every layer of a preset's network on the CPU; returns ``(rows, gemm_gflops, memory)``.

    The whole network is timed ``rounds`` times, one round after the other, and every figure is
    a median over all rounds: on a shared machine the memory-bound steps (the unfolding, the
    transposes) can run two or three times slower for seconds at a time while the matrix product
    hardly changes, and rounds spread each layer's runs over the whole benchmark. The copy
    bandwidth is measured at the start and at the end: ``memory`` holds both lists of samples
    (``copy_start``, ``copy_end``, GB/s) and ``copy_gbps``, the median of all of them.

    Each row: name, kind, input and output shapes, forward_ms, backward_ms (None for the loss)
    and, for convolutions and fc layers, gflops (forward+backward); for convolutions also
    unfold_share (im2col/im2row + col2im/row2im time over forward + backward time), gemm_gflops
    (the matrix-product rate measured just before and after that convolution), and per round
    ``round_ratios`` (GFLOP/s over that round's nearby rate), ``round_shares`` and
    ``round_probes`` (``cross_core_write_ratio()`` just after the round, or None). Memory-bound
    rows (everything but conv and fc) have forward_bytes and backward_bytes (``minimum_bytes``),
    forward_gbps, backward_gbps (None for the loss), gbps (both passes' bytes over both passes'
    time) and copy_ratio (gbps over copy_gbps). With ``torch`` (the module), every row also has
    torch_forward_ms, torch_backward_ms and torch_ratio (ours over PyTorch's forward+backward
    time: 1.0 or less means ours is at least as fast).
    """
    memory = dict(copy_start=copy_bandwidth_samples())
    rates = gemm_samples(max(3, repeat))
    plan = layer_plan(preset, batch)
    samples = {name: dict(fwd=[], bwd=[], shares=[], nearby=[], round_ratios=[], round_shares=[],
                          round_probes=[], torch_fwd=[], torch_bwd=[]) for name, _, _, _ in plan}
    for _ in range(rounds):
        for index, (name, kind, shape, settings) in enumerate(plan):
            rates += time_layer_round(samples[name], index, kind, shape, settings, repeat, dtype, torch)
    rates += gemm_samples(max(3, repeat))   # again at the end: the machine may have changed
    memory["copy_end"] = copy_bandwidth_samples()
    memory["copy_gbps"] = statistics.median(memory["copy_start"] + memory["copy_end"])
    rows = [summarise_layer(name, samples[name], np.dtype(dtype).itemsize) for name, *_ in plan]
    for row in rows:
        if "gbps" in row:
            row["copy_ratio"] = row["gbps"] / memory["copy_gbps"]
    return rows, rates, memory


# ---- the tables -----------------------------------------------------------------------------------

def _shape(shape):
    return "x".join(str(s) for s in shape[1:]) if len(shape) > 1 else "-"


def _cell(value, spec, width):
    """``value`` formatted with ``spec``, or '-' when there is none, right-aligned in ``width``."""
    return f"{'-' if value is None else format(value, spec):>{width}}"


def _header_lines(rates, memory, batch, repeat, rounds, torch_line, with_torch):
    gemm, start, end = statistics.median(rates), memory["copy_start"], memory["copy_end"]
    return [f"float32 matrix product {GEMM_SHAPE[0]}x{GEMM_SHAPE[1]} @ {GEMM_SHAPE[1]}x{GEMM_SHAPE[2]}: "
            f"{gemm:.1f} GFLOP/s (median of {len(rates)}, range {min(rates):.1f}..{max(rates):.1f})",
            f"copy bandwidth (np.copyto, {COPY_BYTES >> 20} MiB float32, one thread, 2 x bytes / time): "
            f"{statistics.median(start):.1f} GB/s at the start, {statistics.median(end):.1f} GB/s at the end "
            f"(medians of {len(start)} copies each; the memory-bound rows use {memory['copy_gbps']:.1f})",
            torch_line,
            f"batch {batch}, float32, medians over {rounds} round(s) of {repeat} run(s) each; GFLOP/s "
            f"counts forward + backward (= 3x the forward FLOPs); x GEMM = GFLOP/s over the "
            f"matrix-product rate (for a convolution, the rate measured just before and after it); "
            f"unfold = im2col/im2row + col2im/row2im share of the convolution's time; convN.bias = "
            f"the bias add and its gradient at convN's output, timed apart (already inside convN's "
            f"time, so not in the total)"
            + ("; ours/torch = our forward+backward time over PyTorch's (1.00 or less: ours is at "
               "least as fast)" if with_torch else ""), ""]


def _layer_lines(rows, gemm, batch, with_torch):
    """The main table: every layer's times and GFLOP/s and, with PyTorch, its times beside ours."""
    torch_head = f" {'torch fwd':>10} {'torch bwd':>10} {'ours/torch':>10}" if with_torch else ""
    lines = [f"{'layer':<13} {'input':>12} {'output':>12} {'fwd ms':>9} {'bwd ms':>9} "
             f"{'GFLOP/s':>8} {'x GEMM':>7} {'unfold':>7}" + torch_head]
    totals = dict(fwd=0.0, bwd=0.0, torch_fwd=0.0, torch_bwd=0.0)
    for row in rows:
        gflops, share = row.get("gflops"), row.get("unfold_share")
        if row["kind"] != "bias":             # the bias rows are inside their convolution's time
            totals["fwd"] += row["forward_ms"]
            totals["bwd"] += row["backward_ms"] or 0.0
            totals["torch_fwd"] += row.get("torch_forward_ms", 0.0)
            totals["torch_bwd"] += row.get("torch_backward_ms", 0.0)
        line = (f"{row['name']:<13} {_shape(row['shape']):>12} {_shape(row['out_shape']):>12} "
                f"{row['forward_ms']:>9.2f} {_cell(row['backward_ms'], '.2f', 9)} {_cell(gflops, '.1f', 8)} "
                f"{_cell(None if gflops is None else gflops / row.get('gemm_gflops', gemm), '.2f', 7)} "
                f"{'-' if share is None else format(100 * share, '.1f') + '%':>7}")
        if with_torch:
            line += (f" {row['torch_forward_ms']:>10.2f} {row['torch_backward_ms']:>10.2f} "
                     f"{row['torch_ratio']:>10.3g}")
        lines.append(line)
    ours = totals["fwd"] + totals["bwd"]
    line = (f"{'total':<13} {'':>12} {'':>12} {totals['fwd']:>9.1f} {totals['bwd']:>9.1f}   "
            f"=> {1e3 * batch / ours:.1f} images/s (layers alone)")
    if with_torch:
        theirs = totals["torch_fwd"] + totals["torch_bwd"]
        line += (f"; PyTorch {totals['torch_fwd']:.1f} + {totals['torch_bwd']:.1f} ms "
                 f"=> {1e3 * batch / theirs:.1f} images/s, ours/torch {ours / theirs:.2f}")
    return lines + [line]


def _memory_lines(rows, copy_gbps):
    """The memory-bound layers: the fewest bytes they must move and how fast they move them."""
    lines = ["", f"memory-bound layers: MB = the fewest bytes each pass must move (10^6 bytes; see "
             f"minimum_bytes: ReLU forward reads x and writes y, ...), GB/s = those bytes over the "
             f"pass's median time, x copy = both passes' bytes over both passes' time, over the copy "
             f"bandwidth ({copy_gbps:.1f} GB/s): 1.00 moves the bytes as fast as a plain copy; above 1 "
             f"only when the arrays fit in a cache",
             f"{'layer':<13} {'output':>12} {'fwd ms':>9} {'bwd ms':>9} {'fwd MB':>9} {'bwd MB':>9} "
             f"{'fwd GB/s':>9} {'bwd GB/s':>9} {'x copy':>7}"]
    for row in rows:
        if "gbps" not in row:
            continue
        lines.append(f"{row['name']:<13} {_shape(row['out_shape']):>12} {row['forward_ms']:>9.2f} "
                     f"{_cell(row['backward_ms'], '.2f', 9)} {row['forward_bytes'] / 1e6:>9.3g} "
                     f"{row['backward_bytes'] / 1e6:>9.3g} {row['forward_gbps']:>9.3g} "
                     f"{_cell(row['backward_gbps'], '.3g', 9)} {row['copy_ratio']:>7.3g}")
    return lines


def _target_lines(rows, preset):
    """Each convolution's rate and unfolding share against the targets, with its round range."""
    lines = ["", f"targets: conv2..conv5 forward+backward >= {CONV_RATE_TARGET:.0%} of the matrix-product "
             f"rate; unfolding (im2col/im2row + col2im/row2im) < {UNFOLD_SHARE_TARGET:.0%} of each "
             f"convolution's time. Judged on the medians; 'rounds' gives the lowest and highest "
             f"round's figure." + ("" if preset == "paper" else " (The targets were set for the "
                                    "paper's shapes.)"),
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
    return lines


def _round_lines(rows):
    """Each convolution's rounds: x GEMM, unfolding share and the cross-core probe after it."""
    lines = ["", "each round: x GEMM / unfold share / cross-core write ratio (time to write "
             f"{PROBE_BYTES >> 20} MB just read by the other core over the time after this core read "
             f"it; above {CORES_APART:g} the two cores do not share a cache and the memory-bound "
             "steps slow down; '-' when it cannot be measured)"]
    for row in rows:
        if row["kind"] != "conv":
            continue
        cells = [f"{ratio:.2f} / {100 * share:4.1f}% / " + ("-" if probe is None else f"{probe:.1f}")
                 for ratio, share, probe in zip(row["round_ratios"], row["round_shares"], row["round_probes"])]
        lines.append(f"{row['name']:<6} " + "   ".join(cells))
    return lines


def torch_description(torch, skipped=False):
    """The header's line about PyTorch: its version and thread count, or why it is not measured."""
    if torch is None:
        return ("PyTorch: not measured (" + ("--no-torch" if skipped else "not importable here") + "); "
                "the table has no PyTorch columns")
    return (f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads (torch.get_num_threads(), "
            f"left as they are), timed on the same arrays right after ours in every round")


def format_layer_table(rows, rates, batch, repeat, rounds, memory, torch_line, preset="paper"):
    """The whole report of ``bench layers``: the header, every layer, the memory-bound layers,
    the convolutions' targets and their rounds."""
    with_torch = all("torch_ratio" in row for row in rows)
    lines = _header_lines(rates, memory, batch, repeat, rounds, torch_line, with_torch)
    lines += _layer_lines(rows, statistics.median(rates), batch, with_torch)
    lines += _memory_lines(rows, memory["copy_gbps"])
    lines += _target_lines(rows, preset) + _round_lines(rows)
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
    batch = args.batch or DEFAULT_BATCH[args.preset]
    torch = None if args.no_torch else import_torch()
    print("\n".join(machine_header(f"AlexNet layers ({args.preset} preset), forward and backward, CPU, "
                                   f"batch {batch}")))
    rows, rates, memory = layer_benchmark(batch, args.repeat, args.rounds, preset=args.preset, torch=torch)
    print(format_layer_table(rows, rates, batch, args.repeat, args.rounds, memory,
                             torch_description(torch, skipped=args.no_torch), args.preset))
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


def our_train_step(preset, batch, devices, num_classes=1000, seed=0):
    """A full training step of our AlexNet on ``devices`` as a function, and a function that
    returns what the step holds: ``(step, memory)``."""
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

    def step():
        logits = model.forward(x, train=True)
        loss, dlogits = F.softmax_cross_entropy(logits, labels)
        model.backward(dlogits, input_grad=False)   # as training does: no d(image)
        optimizer.step()
        _synchronize(model.devices)
        return loss

    def memory():
        held = held_bytes(model.params, model.grads, model.caches, optimizer.velocity) / 2**20
        return dict(held_mib=held, gpu_pool_mib=pool.total_bytes() / 2**20 if pool is not None else None)

    return step, memory


def torch_alexnet(torch, preset, num_classes):
    """The same network in PyTorch: the table of model.py, grouped convolutions, LRN within each
    column with alpha*size (PyTorch divides alpha by size; the paper does not)."""
    nn = torch.nn
    make_layers, size, channels, _ = PRESETS[preset]

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


def torch_train_step(preset, batch, device, num_classes=1000):
    """``(step, version)`` for PyTorch training steps of the same network, or None without
    torch (or without a CUDA device for ``device="cuda"``)."""
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.manual_seed(0)
    _, size, channels, _ = PRESETS[preset]
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

    return step, f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads"


def time_in_rounds(steps, per_round, rounds):
    """Step times of every function in ``steps`` (a dict), taken in turns: each round times
    ``per_round`` steps of each in order, so that a change in the machine's state hits all of
    them alike. Two warm-up steps each first. Returns {name: [seconds, ...]}."""
    for step in steps.values():
        step()
        step()
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                samples[name].append(time.perf_counter() - start)
    return samples


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
    configs = {"ours, one column": one, "ours, two columns": two_column_devices(device)}
    print("\n".join(machine_header(
        f"AlexNet training steps ({args.preset} preset), {device}, batch {batch}, float32; {args.rounds} "
        f"round(s) of {args.steps} steps of each network in turn, after two warm-up steps; medians")))
    steps, memories = {}, {}
    for label, devices in configs.items():
        steps[label], memories[label] = our_train_step(args.preset, batch, devices)
    reference = None if args.no_torch else torch_train_step(args.preset, batch, device)
    if reference is not None:
        steps["PyTorch, grouped convs"] = reference[0]
    samples = time_in_rounds(steps, args.steps, args.rounds)
    print("step = forward(train=True) + softmax cross-entropy + backward + SGD step (momentum 0.9, "
          "weight decay 5e-4)")
    print("held = parameters + gradients + velocities + the caches kept for backward")
    print("")
    print(f"{'network':<26} {'devices':<18} {'step ms':>9} {'images/s':>9} {'held MiB':>9}")
    for label, times in samples.items():
        seconds = statistics.median(times)
        devices = ",".join(configs.get(label, (device,)))
        held = memories[label]()["held_mib"] if label in memories else None
        print(f"{label:<26} {devices:<18} {1e3 * seconds:>9.1f} {batch / seconds:>9.2f} "
              f"{'-' if held is None else format(held, '.0f'):>9}")
    pool = memories["ours, one column"]()["gpu_pool_mib"]
    print(f"peak RSS of the process: {_peak_rss_mib():.0f} MiB" +
          ("" if pool is None else f"; GPU memory pool (one column): {pool:.0f} MiB"))
    if reference is None:
        print("PyTorch: not measured (not importable here" + (", or --no-torch" if args.no_torch else "") + ")")
        return 0
    print_model_ratio(samples, args.steps, device, reference[1])
    return 0


def print_model_ratio(samples, per_round, device, version):
    """Our one-column throughput over PyTorch's: from the medians, and in each round."""
    ours, theirs = samples["ours, one column"], samples["PyTorch, grouped convs"]
    ratio = statistics.median(theirs) / statistics.median(ours)
    rounds = [statistics.median(theirs[k:k + per_round]) / statistics.median(ours[k:k + per_round])
              for k in range(0, len(ours), per_round)]
    target = (f" (target >= {MODEL_RATIO_TARGET:.2f}: " + ("met" if ratio >= MODEL_RATIO_TARGET else "NOT met")
              + ")") if device == "cpu" else ""
    print(f"ours (one column) / PyTorch throughput: {ratio:.2f}{target}; rounds "
          f"{min(rounds):.2f}-{max(rounds):.2f}; {version}")


# ---- command line ------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minitorch_alexnet.bench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    layers = commands.add_parser("layers", help="forward/backward time of every AlexNet layer")
    layers.add_argument("--batch", type=int, default=None,
                        help="images per batch (on the CPU 32 for the paper preset, 64 for small; 128 on a GPU)")
    layers.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                        help="whose layer shapes: the paper's network or the small one (CPU only)")
    layers.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
    layers.add_argument("--repeat", type=int, default=3, help="timed runs per layer in each round")
    layers.add_argument("--rounds", type=int, default=3,
                        help="times the whole network is timed, one round after the other (medians over all)")
    layers.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    model = commands.add_parser("model", help="training images per second, one and two columns")
    model.add_argument("--batch", type=int, default=None, help="images per batch (32 on the CPU, 128 on a GPU)")
    model.add_argument("--steps", type=int, default=3, help="timed training steps of each network per round")
    model.add_argument("--rounds", type=int, default=3,
                       help="turns in which every network runs --steps steps (medians over all)")
    model.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    model.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    model.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    bench_input.add_arguments(commands.add_parser("input", help=bench_input.HELP))
    args = parser.parse_args(argv)
    keep_freed_memory()          # as train does; PyTorch's own allocator caches freed blocks too
    if (getattr(args, "repeat", 1) < 1 or getattr(args, "rounds", 1) < 1 or getattr(args, "steps", 1) < 1
            or (args.batch is not None and args.batch < 1)):
        parser.error("--batch, --repeat, --rounds and --steps must be positive")
    if args.command == "input":
        return bench_input.run_input(args)
    return run_layers(args) if args.command == "layers" else run_model(args)


if __name__ == "__main__":
    sys.exit(main())
