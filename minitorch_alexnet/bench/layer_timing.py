"""``bench layers``, part 2: timing every layer of the network, in rounds.

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

``layers`` times the whole network in several rounds (``--rounds``) and reports medians over
all of them, with each convolution's lowest and highest round beside the targets, and after
each round a probe of whether the two cores share a cache (``cross_core_write_ratio``): on a
virtual machine that can change while the program runs, and the unfolding's speed changes with
it. ``layers`` times each layer on the same input again and again, so it cannot see costs that
depend on where the previous layer left its output (in which core's cache): whole steps
(``bench model``) can. ``--device cuda`` hands ``layers`` to ``minitorch_alexnet.cuda.bench``
(batch 128 unless ``--batch`` says otherwise).
"""
import contextlib
import importlib.util
import statistics
import time

import numpy as np

from .layer_table import format_layer_table, torch_description
from .layers import layer_functions, layer_plan, minimum_bytes, torch_layer_functions
from .machine import (copy_bandwidth_samples, cross_core_write_ratio, gemm_samples, import_torch,
                      machine_header, median_seconds)

DEFAULT_BATCH = {"paper": 32, "small": 64}    # bench layers on the CPU, unless --batch


@contextlib.contextmanager
def unfold_clock(seconds):
    """While active, ``seconds[0]`` accumulates the time that ``functional.conv`` spends
    unfolding and folding back (im2col, col2im, im2row, row2im: the names it calls are
    wrapped, then restored)."""
    from ..functional import conv as conv_module
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


def run_layers(args):
    """``bench layers``: the machine, then the table of every layer (or the GPU's, with
    ``--device cuda``); returns the exit status."""
    if args.device == "cuda":
        if importlib.util.find_spec("minitorch_alexnet.cuda.bench") is None:
            print("--device cuda needs minitorch_alexnet/cuda/bench.py (the GPU layer benchmark), "
                  "which this installation does not have.")
            return 2
        from ..cuda import bench as gpu_bench
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

