"""Where AlexNet's time goes: per-layer timings and whole training steps.

    python -m minitorch_alexnet.bench layers [--preset paper|small] [--batch 32] [--repeat 3] [--rounds 3]
                                             [--no-torch] [--device cpu|cuda]
    python -m minitorch_alexnet.bench model  [--batch 32] [--steps 3] [--preset paper] [--device cpu|cuda]
    python -m minitorch_alexnet.bench input  [--preset small] [--batch 64]

Each sub-command has its module here; every shape comes from ``model.layer_plan``, the walk of
the layer table that the model itself is built from.

    machine.py       the machine's description and the reference measurements (the float32
                     matrix product, the copy bandwidth, the cross-core cache probe), timing
    layers.py        ``layers``: every operation as functions, ours and PyTorch's, FLOPs and bytes
    layer_timing.py  ``layers``: timing them in rounds (what the table means: its docstring)
    layer_table.py   ``layers``: the printed report and its targets
    model.py         ``model``: whole training steps, one column, two columns and PyTorch
    input.py         ``input``: the input pipeline beside the bare training step
    cli.py           the argument parser; ``__main__.py`` runs it

Timings on a shared machine are noisy: every figure is the median of several runs, and the
ratios compare numbers measured in the same run. ``minitorch_alexnet.cuda.bench`` times the
layers on a GPU (``layers --device cuda``).
"""
from .layer_timing import layer_benchmark, run_layers
from .layers import layer_functions, layer_inputs, layer_plan, minimum_bytes
from .machine import (COPY_REPEAT, copy_bandwidth_samples, cross_core_write_ratio, gemm_samples,
                      import_torch, machine_header, median_seconds)
from .model import our_train_step, print_model_ratio, run_model, time_in_rounds, torch_alexnet



def main(argv=None):
    """``python -m minitorch_alexnet.bench layers|model|input [options]`` (see ``cli.py``).
    Imported when called, so that ``python -m minitorch_alexnet.bench.input`` does not find
    its own module already loaded."""
    from .cli import main as cli_main
    return cli_main(argv)


__all__ = [
    "main", "layer_benchmark", "run_layers", "layer_functions", "layer_inputs", "layer_plan",
    "minimum_bytes", "COPY_REPEAT", "copy_bandwidth_samples", "cross_core_write_ratio",
    "gemm_samples", "import_torch", "machine_header", "median_seconds", "our_train_step",
    "print_model_ratio", "run_model", "time_in_rounds", "torch_alexnet",
]
