"""``python -m minitorch_alexnet.summary``: AlexNet's layer table with shapes, parameters and
multiply-accumulates (MACs), per column.

A convolution's output pixel costs (input maps it sees) x KH x KW MACs per filter; a fully
connected layer costs inputs x outputs. The paper model with 1000 classes: 60,965,224
parameters and about 724 million MACs per 227x227 image.
"""
import argparse
import sys

import numpy as np

from .model import AlexNet


def layer_rows(model):
    """Rows (layer, output shape (C, H, W) or (units,), params per column, MACs per column),
    read from ``model.plan`` (the table's operations with their shapes).

    Per column: a layer split between the columns puts half its kernels in each; fc8 is not
    split and counts in column 1 only. ReLU and dropout share their layer's row.
    """
    rows = [("input", model.plan[0].in_shape[1:], (0, 0), (0, 0))]
    for step in model.plan:
        out = step.out_shape[1:]
        if step.kind in ("conv", "fc"):
            weights = int(np.prod(step.weight_shape()))
            params = weights + out[0]                    # + one bias per kernel or unit
            macs = weights * int(np.prod(out[1:]))       # one MAC per weight per output pixel
            if step.kind == "conv":
                label = f"{step.name} + ReLU"
            else:
                label = step.name + (" + ReLU + dropout" if step.layer.dropout else "")
            halves = ((params, 0), (macs, 0)) if getattr(step.layer, "last", False) else \
                ((params // 2, params // 2), (macs // 2, macs // 2))
            rows.append((label, out, *halves))
        elif step.kind == "lrn":
            rows.append(("  LRN", out, (0, 0), (0, 0)))
        elif step.kind == "pool":
            label = f"  max-pool {step.settings['size']}/{step.settings['stride']}"
            rows.append((label, out, (0, 0), (0, 0)))
    return rows


def format_table(model):
    rows = layer_rows(model)
    lines = [f"AlexNet preset={model.preset} classes={model.num_classes} width={model.width} "
             f"input={model.in_channels}x{model.input_size}x{model.input_size}",
             f"{'layer':<26}{'output':>16}{'params col1':>14}{'params col2':>14}"
             f"{'MACs col1':>15}{'MACs col2':>15}"]
    for name, shape, (p1, p2), (m1, m2) in rows:
        shown = "x".join(str(s) for s in shape)
        lines.append(f"{name:<26}{shown:>16}{p1:>14,}{p2:>14,}{m1:>15,}{m2:>15,}")
    params = sum(sum(r[2]) for r in rows)
    macs = sum(sum(r[3]) for r in rows)
    lines.append(f"{'total':<26}{'':>16}{params:>28,}{macs:>30,}")
    lines.append(f"{params:,} parameters, {macs / 1e6:,.1f} M multiply-accumulates per image "
                 f"(forward; a training step is about 3x)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minitorch_alexnet.summary",
                                     description="Print AlexNet's layers, parameters and MACs.")
    parser.add_argument("--preset", choices=["paper", "small"], default="paper")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--width", type=float, default=1.0, help="scale every layer's maps and units")
    parser.add_argument("--fc-width", type=float, default=None,
                        help="scale fc6 and fc7's units apart (default: --width)")
    parser.add_argument("--in-channels", type=int, default=None)
    parser.add_argument("--input-size", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        model = AlexNet(args.num_classes, args.preset, width=args.width, fc_width=args.fc_width,
                        in_channels=args.in_channels, input_size=args.input_size)
    except ValueError as error:              # e.g. an input too small for the preset's layers
        parser.error(str(error))
    print(format_table(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
