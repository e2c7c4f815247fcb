"""Per-layer GPU timings of AlexNet at the paper's shapes, through ``minitorch_alexnet.functional``.

``gpu_layer_benchmark(batch=128)`` times the forward and backward pass of every operation of
the paper's network (``model.layer_plan``: the walk of the layer table the model is built from,
in forward order, without the loss; LRN within each column as the model runs it) on CuPy
arrays (our kernels, cuBLAS for the matrix products unless ``MINITORCH_GEMM=tiled``), on the
inputs and with the operations of the CPU benchmark (``bench/layers.py``), and reports for
each:

* milliseconds per forward and per backward pass (CUDA events, after warm-up, averaged);
* for the memory-bound kernels (max-pool, LRN, ReLU, dropout) the achieved GB/s, counting the
  bytes each pass must read and write at least once, and that as a fraction of the GPU's peak
  bandwidth (memory clock * bus width * 2, from the device attributes); for dropout the GB/s
  is that of the mask-applying kernel alone, because the layer draws its mask on the host (by
  design, so a seed gives the same mask on CPU and GPU) and that dominates the layer time;
* when ``import torch`` works, PyTorch + cuDNN's times for the same shapes in the same run and
  the ratio ``torch_ms / our_ms`` (1.0 = as fast as cuDNN, 0.5 = half its speed).

``gpu_gemm_benchmark`` puts our tiled SGEMM (kernels/gemm.cu) beside cuBLAS in GFLOP/s.

Precision: float32 with TF32 OFF on both sides: CuPy uses full fp32 in cuBLAS unless the
environment sets ``CUPY_TF32=1`` (the benchmark refuses that), and PyTorch gets
``torch.backends.cuda.matmul.allow_tf32 = False`` and ``torch.backends.cudnn.allow_tf32 = False``.

Result: a dict ``{"info": {...}, "layers": [row, ...], "gemm": [row, ...]}``; each layer row
has ``layer, shape, forward_ms, backward_ms`` and, where they apply, ``forward_gbs,
backward_gbs, forward_peak_fraction, backward_peak_fraction, torch_forward_ms,
torch_backward_ms, forward_ratio, backward_ratio``. ``format_gpu_benchmark(result)`` renders
it as text, ``print_gpu_benchmark`` prints it. ``python -m minitorch_alexnet.cuda.bench``
runs both. Importing this module needs no GPU (CuPy is imported inside the functions).
"""
import argparse
import os
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..bench.layers import layer_inputs, our_layer_ops, torch_layer_op
from ..model import layer_plan

PRESET = "paper"          # the layers timed: every operation of this preset's network but the loss
# (M, N, K) of C = A @ B for the GEMM table: fc6 forward, conv2's per-group product, a square
DEFAULT_GEMM_SIZES = ((128, 4096, 9216), (128, 128 * 27 * 27, 1200), (4096, 4096, 4096))


# ---- timing and device facts ---------------------------------------------------------------------

def time_ms(function, repeat, warmup):
    """Average milliseconds of ``function()`` on the current stream, timed with CUDA events.

    The events are recorded on the GPU's stream, so the time covers everything the calls
    enqueue, plus any gap while the host prepares the next call (as in a real training step).
    """
    cupy = backend.cupy_module()
    for _ in range(warmup):
        function()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeat):
        function()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / repeat


def peak_bandwidth_gbs():
    """Theoretical memory bandwidth of the current GPU in GB/s: memory clock (kHz) * 1000 *
    bus width (bits) / 8 * 2 (double data rate) / 1e9; None if the driver does not say."""
    cupy = backend.cupy_module()
    device = cupy.cuda.Device().id
    properties = cupy.cuda.runtime.getDeviceProperties(device)
    clock_khz = properties.get("memoryClockRate")
    bus_bits = properties.get("memoryBusWidth")
    try:
        if not clock_khz:
            clock_khz = cupy.cuda.runtime.deviceGetAttribute(36, device)   # cudaDevAttrMemoryClockRate
        if not bus_bits:
            bus_bits = cupy.cuda.runtime.deviceGetAttribute(37, device)    # cudaDevAttrGlobalMemoryBusWidth
    except Exception:
        return None
    if not clock_khz or not bus_bits:
        return None
    return clock_khz * 1e3 * (bus_bits / 8) * 2 / 1e9


def device_name():
    cupy = backend.cupy_module()
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def _torch():
    """PyTorch with TF32 off and cuDNN's autotuner on, or None if it (or its CUDA) is missing."""
    try:
        import torch
    except Exception:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch


def torch_time_ms(torch, function, repeat, warmup):
    """Like ``time_ms`` with PyTorch's CUDA events."""
    for _ in range(warmup):
        function()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        function()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / repeat


# ---- one layer -------------------------------------------------------------------------------------

def _row(layer, shape, forward, backward, repeat, warmup, bytes_moved=None, peak=None):
    """Time ``forward()`` and ``backward()``; add GB/s when the bytes moved are given."""
    row = {"layer": layer, "shape": shape,
           "forward_ms": time_ms(forward, repeat, warmup),
           "backward_ms": time_ms(backward, repeat, warmup)}
    if bytes_moved is not None:
        for direction, count in zip(("forward", "backward"), bytes_moved):
            seconds = row[f"{direction}_ms"] / 1e3
            row[f"{direction}_gbs"] = count / seconds / 1e9
            row[f"{direction}_peak_fraction"] = row[f"{direction}_gbs"] / peak if peak else None
    return row


def _add_torch(row, torch, forward, backward, repeat, warmup):
    row["torch_forward_ms"] = torch_time_ms(torch, forward, repeat, warmup)
    row["torch_backward_ms"] = torch_time_ms(torch, backward, repeat, warmup)
    row["forward_ratio"] = row["torch_forward_ms"] / row["forward_ms"]
    row["backward_ratio"] = row["torch_backward_ms"] / row["backward_ms"]


def memory_bytes(kind, x, y):
    """``(forward, backward)``: the fewest bytes a memory-bound kernel must move (every array
    read or written once), or None for the matrix-product layers and dropout (timed apart)."""
    item = x.dtype.itemsize
    if kind == "relu":        # forward reads x, writes y; backward reads dy and y, writes dx
        return 2 * x.size * item, 3 * x.size * item
    if kind == "lrn":         # forward reads x, writes y and the scale s; backward reads dy, x, y, s
        return 3 * x.size * item, 5 * x.size * item
    if kind == "pool":        # plus one int32 argmax per output, written forward, read backward
        return (x.size * item + y.size * item + y.size * 4,
                y.size * item + y.size * 4 + x.size * item)
    return None


@dataclass
class GpuRun:
    """What every row of one benchmark run shares."""
    repeat: int
    warmup: int
    peak: float               # GB/s, or None if the driver does not say
    torch: object             # PyTorch with its CUDA, or None
    rng: np.random.Generator  # the inputs' random numbers, drawn on the host


def time_operation(run, step):
    """One row: our forward and backward of ``step`` (a ``model.Step``) on the GPU, its GB/s
    where memory bounds it, and PyTorch's times on the same numbers."""
    cupy = backend.cupy_module()
    host_inputs = layer_inputs(step.kind, step.in_shape, step.settings, run.rng, np.float32)
    arrays = {name: cupy.asarray(array) for name, array in host_inputs.items()}
    forward, backward_of = our_layer_ops(step.kind, step.settings, arrays)
    y, cache = forward()
    dy = cupy.asarray(run.rng.standard_normal(y.shape).astype(np.float32))
    row = _row(step.name, step.in_shape, forward, lambda: backward_of(dy, cache), run.repeat,
               run.warmup, memory_bytes(step.kind, arrays["x"], y), run.peak)
    if step.kind == "dropout":
        _add_dropout_kernel(row, run, arrays["x"], cache)
    if run.torch is not None:
        torch = run.torch
        tensors = {name: torch.as_tensor(host_inputs[name], device="cuda") for name in arrays}
        leaves = [tensors[name].requires_grad_() for name in ("x", "w", "b") if name in tensors]
        torch_forward = torch_layer_op(torch, step.kind, step.settings, tensors)
        ty, tdy = torch_forward(), torch.as_tensor(backend.to_numpy(dy), device="cuda")
        _add_torch(row, torch, torch_forward,
                   lambda: torch.autograd.grad(ty, leaves, tdy, retain_graph=True), run.repeat, run.warmup)
    return row


def _add_dropout_kernel(row, run, x, cache):
    """Dropout's layer time includes drawing the mask on the host and uploading it; its GB/s
    is that of the mask-applying kernel alone: reads x and the 1-byte mask, writes y."""
    cupy = backend.cupy_module()
    from . import host, loader

    out = cupy.empty_like(x)
    grid, block = host.grid_1d(x.size)
    kernel = loader.get_kernel(host.kernel_name("dropout_apply", x.dtype))
    arguments = (x, cache.mask, out, x.dtype.type(cache.scale), np.int32(x.size))
    row["kernel_ms"] = time_ms(lambda: kernel(grid, block, arguments), run.repeat, run.warmup)
    item = x.dtype.itemsize
    row["forward_gbs"] = row["backward_gbs"] = (2 * item + 1) * x.size / (row["kernel_ms"] / 1e3) / 1e9
    row["forward_peak_fraction"] = row["backward_peak_fraction"] = \
        row["forward_gbs"] / run.peak if run.peak else None


def gpu_layer_benchmark(batch=128, repeat=20, warmup=3, include_torch=True, gemm_sizes=DEFAULT_GEMM_SIZES):
    """Time every AlexNet layer on the GPU in float32 (see the module docstring)."""
    if os.environ.get("CUPY_TF32", "0") not in ("", "0"):
        raise RuntimeError("unset CUPY_TF32 (or set it to 0): the benchmark compares full fp32")
    from . import ops

    torch = _torch() if include_torch else None
    run = GpuRun(repeat, warmup, peak_bandwidth_gbs(), torch, np.random.default_rng(0))
    rows = [time_operation(run, step) for step in layer_plan(PRESET, batch) if step.kind != "loss"]
    info = {
        "device": device_name(), "batch": batch, "dtype": "float32", "repeat": repeat,
        "peak_gbs": run.peak, "gemm": ops.get_gemm(),
        "torch": None if torch is None else f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}",
    }
    gemm_rows = gpu_gemm_benchmark(gemm_sizes, repeat=max(1, repeat // 2), warmup=warmup) if gemm_sizes else []
    return {"info": info, "layers": rows, "gemm": gemm_rows}


def gpu_gemm_benchmark(sizes=DEFAULT_GEMM_SIZES, repeat=10, warmup=2):
    """GFLOP/s (2*M*N*K per product) of our tiled kernel and of cuBLAS, float32."""
    cupy = backend.cupy_module()
    from . import ops

    rows = []
    rng = np.random.default_rng(1)
    for m, n, k in sizes:
        a = cupy.asarray(rng.standard_normal((m, k)).astype(np.float32))
        b = cupy.asarray(rng.standard_normal((k, n)).astype(np.float32))
        flops = 2.0 * m * n * k
        tiled_ms = time_ms(lambda: ops.matmul(a, b, use_tiled=True), repeat, warmup)
        cublas_ms = time_ms(lambda: ops.matmul(a, b, use_tiled=False), repeat, warmup)
        rows.append({"m": m, "n": n, "k": k, "tiled_ms": tiled_ms, "cublas_ms": cublas_ms,
                     "tiled_gflops": flops / (tiled_ms / 1e3) / 1e9,
                     "cublas_gflops": flops / (cublas_ms / 1e3) / 1e9})
    return rows


# ---- printing ----------------------------------------------------------------------------------------

def _number(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(value):
    return "-" if value is None else f"{100 * value:.0f}%"


def format_gpu_benchmark(result):
    """The benchmark result as a text table."""
    info = result["info"]
    peak = info["peak_gbs"]
    lines = [
        f"AlexNet layers on {info['device']}, batch {info['batch']}, {info['dtype']}, "
        f"TF32 off (CuPy/cuBLAS full fp32; PyTorch allow_tf32=False for matmul and cuDNN)",
        f"matrix products: {info['gemm']}; peak memory bandwidth "
        f"{_number(peak, 0) + ' GB/s' if peak else 'unknown'}; "
        f"reference: {info['torch'] or 'PyTorch not available'}",
        "ratio = PyTorch time / our time (1.00 = as fast as PyTorch+cuDNN)",
        "",
        f"{'layer':<9} {'fwd ms':>9} {'bwd ms':>9} {'fwd GB/s':>9} {'bwd GB/s':>9} "
        f"{'fwd %pk':>8} {'bwd %pk':>8} {'torch fwd':>10} {'torch bwd':>10} {'fwd ratio':>9} {'bwd ratio':>9}",
    ]
    for row in result["layers"]:
        lines.append(
            f"{row['layer']:<9} {_number(row['forward_ms']):>9} {_number(row['backward_ms']):>9} "
            f"{_number(row.get('forward_gbs'), 0):>9} {_number(row.get('backward_gbs'), 0):>9} "
            f"{_percent(row.get('forward_peak_fraction')):>8} {_percent(row.get('backward_peak_fraction')):>8} "
            f"{_number(row.get('torch_forward_ms')):>10} {_number(row.get('torch_backward_ms')):>10} "
            f"{_number(row.get('forward_ratio'), 2):>9} {_number(row.get('backward_ratio'), 2):>9}")
    if any("kernel_ms" in row for row in result["layers"]):
        lines.append("dropout GB/s: the mask-applying kernel alone; the layer time includes drawing "
                     "the mask on the host and uploading it")
    if result["gemm"]:
        lines += ["", "matrix product C = A @ B, float32", f"{'M':>6} {'N':>8} {'K':>6} "
                  f"{'tiled ms':>9} {'cuBLAS ms':>10} {'tiled GFLOP/s':>14} {'cuBLAS GFLOP/s':>15} {'tiled/cuBLAS':>13}"]
        for row in result["gemm"]:
            lines.append(f"{row['m']:>6} {row['n']:>8} {row['k']:>6} {_number(row['tiled_ms']):>9} "
                         f"{_number(row['cublas_ms']):>10} {_number(row['tiled_gflops'], 0):>14} "
                         f"{_number(row['cublas_gflops'], 0):>15} "
                         f"{_number(row['tiled_gflops'] / row['cublas_gflops'], 2):>13}")
    return "\n".join(lines)


def print_gpu_benchmark(result):
    print(format_gpu_benchmark(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Per-layer GPU timings of AlexNet (float32, TF32 off).")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    args = parser.parse_args(argv)
    print_gpu_benchmark(gpu_layer_benchmark(batch=args.batch, repeat=args.repeat,
                                            include_torch=not args.no_torch))


if __name__ == "__main__":
    main()
