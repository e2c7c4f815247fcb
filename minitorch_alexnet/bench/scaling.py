"""``python -m minitorch_alexnet.bench scaling``: how far data parallelism carries a preset.

Every step, each process sends and receives the model's gradients: S = 4 bytes per parameter
in float32 (the paper model: 60,965,224 parameters, 244 MB). A ring allreduce over N
processes moves 2 (N - 1) / N * S bytes through each link, so on links of bandwidth W

    T_allreduce(N) = 2 (N - 1) / N * S / W         (latency neglected: a few large buckets)

Our trainer keeps the global batch B fixed (``--batch-size``) and gives each of N processes
B / N images, so a step of one process costs T_step / N of computing (T_step: one process,
the whole batch, measured here) followed by the allreduce (not overlapped):

    T(N) = T_step / N + T_allreduce(N),       speed-up(N) = T_step / T(N)

Computing and communicating take equally long, half of each step lost to the network, at

    T_step / N = 2 (N - 1) / N * S / W   =>   N_half = 1 + T_step W / (2 S)

beyond which more machines buy little: that is where a preset "stops scaling" on a network.
The command prints S from the model's real parameter count, the measured T_step (or
``--step-ms`` for another machine, say a GPU's), and for 10 Gb/s and 100 Gb/s Ethernet and
NVLink: T_allreduce at 2 and 8 processes, N_half and the speed-up there.
"""
import time

import numpy as np

from ..model import AlexNet, PRESETS

# Link bandwidths W in bytes/s. NVLink: the ~300 GB/s "bus bandwidth" NCCL's allreduce
# reaches between 8 A100 or H100 GPUs of one server (nccl-tests), not the links' peak.
NETWORKS = (("10 Gb/s Ethernet", 10e9 / 8), ("100 Gb/s Ethernet", 100e9 / 8), ("NVLink", 300e9))


def add_arguments(parser):
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="one preset (default: both, small at batch 64 and paper at 32)")
    parser.add_argument("--batch", type=int, default=None, help="the global batch")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps (median)")
    parser.add_argument("--step-ms", type=float, default=None,
                        help="use this step time instead of measuring one here (e.g. a GPU's)")
    return parser


def allreduce_seconds(nbytes, processes, bandwidth):
    """A ring allreduce of ``nbytes`` over ``processes`` on links of ``bandwidth`` bytes/s."""
    return 2.0 * (processes - 1) / processes * nbytes / bandwidth


def half_efficiency_processes(step_seconds, nbytes, bandwidth):
    """N_half = 1 + T_step W / (2 S): from here on the allreduce takes as long as computing."""
    return 1.0 + step_seconds * bandwidth / (2.0 * nbytes)


def speedup(step_seconds, nbytes, processes, bandwidth):
    return step_seconds / (step_seconds / processes + allreduce_seconds(nbytes, processes, bandwidth))


def measured_step_seconds(preset, batch, steps):
    """The median time of a training step of ``preset`` at ``batch`` on this machine's CPU."""
    from .model import our_train_step
    step, _ = our_train_step(preset, batch, None, num_classes=PRESETS[preset].num_classes)
    step()                                            # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def report(preset, batch, step_seconds, measured):
    """The lines of one preset's table."""
    model = AlexNet(PRESETS[preset].num_classes, preset)
    parameters = model.num_parameters()
    nbytes = 4 * parameters
    source = "measured here" if measured else "given"
    lines = [f"{preset} preset: {parameters:,} parameters, allreduced {nbytes / 1e6:.1f} MB per "
             f"step (float32); a step of batch {batch} on one process: {1e3 * step_seconds:.1f} ms ({source})",
             f"  {'network':<18} {'allreduce N=2':>14} {'N=8':>10} {'N_half':>8} {'speed-up at N_half':>19}"]
    for name, bandwidth in NETWORKS:
        n_half = half_efficiency_processes(step_seconds, nbytes, bandwidth)
        at = max(1, min(int(n_half), batch))       # at most one image per process
        shown = f"{n_half:.1f}" if n_half <= batch else f">{batch}"
        lines.append(f"  {name:<18} {1e3 * allreduce_seconds(nbytes, 2, bandwidth):>11.2f} ms "
                     f"{1e3 * allreduce_seconds(nbytes, 8, bandwidth):>7.2f} ms {shown:>8} "
                     f"{speedup(step_seconds, nbytes, at, bandwidth):>15.2f}x at {at}")
    return lines


def run_scaling(args):
    """Print the model for each preset asked; returns 0."""
    presets = [args.preset] if args.preset else ["small", "paper"]
    for preset in presets:
        batch = args.batch or (64 if preset == "small" else 32)
        measured = args.step_ms is None
        step = measured_step_seconds(preset, batch, args.steps) if measured else args.step_ms / 1e3
        print("\n".join(report(preset, batch, step, measured)))
    print("N_half: processes at which the allreduce takes as long as the computing (the global "
          "batch fixed, split N ways); past it more machines buy little. '>B': never, before "
          "every process holds one image of the batch B.")
    return 0
