"""The command line of the benchmarks: ``python -m minitorch_alexnet.bench layers|model|input|scaling``."""
import argparse

from ..backend import keep_freed_memory
from ..model import PRESETS
from . import input as input_bench
from . import scaling
from .layer_timing import run_layers
from .model import run_model

DESCRIPTION = "Where AlexNet's time goes: per-layer timings and whole training steps."


def main(argv=None):
    """``python -m minitorch_alexnet.bench layers|model|input [options]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m minitorch_alexnet.bench", description=DESCRIPTION)
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
    input_bench.add_arguments(commands.add_parser("input", help=input_bench.HELP))
    scaling.add_arguments(commands.add_parser(
        "scaling", help="data parallelism: bytes allreduced per step, ring allreduce times, "
                        "the number of machines where each preset stops scaling"))
    args = parser.parse_args(argv)
    keep_freed_memory()          # as train does; PyTorch's own allocator caches freed blocks too
    if (getattr(args, "repeat", 1) < 1 or getattr(args, "rounds", 1) < 1 or getattr(args, "steps", 1) < 1
            or (args.batch is not None and args.batch < 1)):
        parser.error("--batch, --repeat, --rounds and --steps must be positive")
    if args.command == "input":
        return input_bench.run_input(args)
    if args.command == "scaling":
        return scaling.run_scaling(args)
    return run_layers(args) if args.command == "layers" else run_model(args)

