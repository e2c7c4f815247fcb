"""AlexNet's layer table as data, the variants the paper compares it with, and the one walk
through the table (``layer_plan``) that the model, ``summary`` and the benchmarks read.

The table (section 3.5 of the paper; ``model.py`` draws it) lists one row per layer: a
``Conv`` (maps, kernel, stride, pad, which columns it sees, then ReLU, maybe LRN, maybe
max-pooling) or an ``FC`` (units, then ReLU and maybe dropout). ``paper_layers`` is the
paper's 227x227 network, ``small_layers`` the same layers for 32x32 / 28x28 images.

A ``Variant`` rewrites the table the way each of the paper's comparisons does: tanh instead
of ReLU (Figure 1), no LRN (section 3.3), 2/2 instead of 3/2 pooling (section 3.4), no dropout
(section 4.2), one column instead of two (section 6's one-GPU baseline). ``Variant()`` is the
paper's network and leaves the table as it is.
"""
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from . import functional as F

POOL_SIZE, POOL_STRIDE = 3, 2                       # overlapping pooling, section 3.4
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0   # section 3.3
DROPOUT_P = 0.5
COLUMNS = 2                                         # the paper's two GPUs


# ---- the table ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Conv:
    name: str
    maps: int           # kernels in both columns together
    kernel: int
    stride: int
    pad: int
    sees: str           # "image", "own" (grouped: own column only) or "both" (columns exchange)
    bias: float         # initial bias (1 where the paper says so: conv2, conv4, conv5)
    lrn: bool = False
    pool: bool = False
    activation: str = "relu"        # "relu" (the paper's) or "tanh" (Figure 1's comparison)
    pool_size: int = POOL_SIZE      # 3/2: overlapping windows; 2/2: side by side
    pool_stride: int = POOL_STRIDE
    columns: int = COLUMNS          # 1: the one-column network of section 6


@dataclass(frozen=True)
class FC:
    name: str
    units: int          # both columns together (fc8: the classes)
    bias: float         # initial bias (1 in fc6 and fc7)
    dropout: bool = False
    dropout_p: float = DROPOUT_P    # the probability of dropping a unit, when dropout is on
    last: bool = False  # fc8: no ReLU, not split into columns, lives on the first device
    sees: str = "both"  # every fully connected layer reads both columns
    activation: str = "relu"
    columns: int = COLUMNS


def scaled(n, width):
    """n maps or units times ``width``, rounded to an even count so that two columns split it."""
    return 2 * max(1, round(n * width / 2))


def fc_scale(width, fc_width):
    """The scale of fc6 and fc7: ``fc_width``, or the convolutions' ``width`` when None."""
    return width if fc_width is None else fc_width


def paper_layers(num_classes, width=1.0, fc_width=None):
    """The paper's table (section 3.5, figure 2). ``fc_width`` scales fc6 and fc7 apart from
    the convolutions (None: ``width``)."""
    w = lambda n: scaled(n, width)
    fc = lambda n: scaled(n, fc_scale(width, fc_width))
    return [
        Conv("conv1", w(96), 11, 4, 0, sees="image", bias=0.0, lrn=True, pool=True),
        Conv("conv2", w(256), 5, 1, 2, sees="own", bias=1.0, lrn=True, pool=True),
        Conv("conv3", w(384), 3, 1, 1, sees="both", bias=0.0),
        Conv("conv4", w(384), 3, 1, 1, sees="own", bias=1.0),
        Conv("conv5", w(256), 3, 1, 1, sees="own", bias=1.0, pool=True),
        FC("fc6", fc(4096), bias=1.0, dropout=True),
        FC("fc7", fc(4096), bias=1.0, dropout=True),
        FC("fc8", num_classes, bias=0.0, last=True),
    ]


def small_layers(num_classes, width=1.0, fc_width=None):
    """The same architecture for 32x32 / 28x28 images: conv1 is 5x5 stride 1 (an 11x11
    stride-4 kernel would leave too few pixels), maps and units are scaled down."""
    w = lambda n: scaled(n, width)
    fc = lambda n: scaled(n, fc_scale(width, fc_width))
    return [
        Conv("conv1", w(64), 5, 1, 2, sees="image", bias=0.0, lrn=True, pool=True),
        Conv("conv2", w(128), 5, 1, 2, sees="own", bias=1.0, lrn=True, pool=True),
        Conv("conv3", w(192), 3, 1, 1, sees="both", bias=0.0),
        Conv("conv4", w(192), 3, 1, 1, sees="own", bias=1.0),
        Conv("conv5", w(128), 3, 1, 1, sees="own", bias=1.0, pool=True),
        FC("fc6", fc(512), bias=1.0, dropout=True),
        FC("fc7", fc(512), bias=1.0, dropout=True),
        FC("fc8", num_classes, bias=0.0, last=True),
    ]


class Preset(NamedTuple):
    layers: object      # (num_classes, width, fc_width) -> the table
    input_size: int
    in_channels: int
    num_classes: int    # the benchmarks' class count


PRESETS = {
    "paper": Preset(paper_layers, 227, 3, 1000),
    "small": Preset(small_layers, 32, 3, 10),
}


# ---- the paper's comparisons -------------------------------------------------------------------

ACTIVATIONS = ("relu", "tanh")
POOLINGS = {"3/2": (3, 2), "2/2": (2, 2)}           # "size/stride"


@dataclass(frozen=True)
class Variant:
    """One of the networks the paper compares AlexNet with; ``Variant()`` is AlexNet itself.

    activation  "relu", or "tanh": tanh(x) after every conv and fc6/fc7 (Figure 1)
    lrn         False: no local response normalization after conv1 and conv2 (section 3.3)
    pool        "3/2" (overlapping), or "2/2": windows side by side; on a side of 2m + 1
                pixels both give m outputs, so the layers after see the same shapes
    dropout     False: fc6 and fc7 without dropout (section 4.2)
    dropout_p   the probability that dropout zeroes a unit of fc6 or fc7 (the paper's 0.5)
    columns     2, or 1: one column holding half of the kernels of conv1-conv4, all of conv5's
                and the fully connected layers', none of them grouped: the "one-GPU net" the
                paper compares the two-column net with (section 6 and its footnote: the last
                convolution and the fc layers keep their size, so the parameter counts are close)
    """
    activation: str = "relu"
    lrn: bool = True
    pool: str = "3/2"
    dropout: bool = True
    dropout_p: float = DROPOUT_P
    columns: int = COLUMNS

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.pool not in POOLINGS:
            raise ValueError(f"pool must be one of {sorted(POOLINGS)}, got {self.pool!r}")
        if not 0.0 <= self.dropout_p < 1.0:
            raise ValueError(f"dropout_p is the probability of dropping a unit, in [0, 1), "
                             f"got {self.dropout_p!r}")
        if self.columns not in (1, COLUMNS):
            raise ValueError(f"columns must be 1 or {COLUMNS}, got {self.columns!r}")

    def apply(self, layers):
        """The table ``layers`` with this variant's changes (a new list; rows are frozen)."""
        size, stride = POOLINGS[self.pool]
        rewritten = []
        for layer in layers:
            if isinstance(layer, Conv):
                # one column: conv1-conv4 keep half their kernels; conv5 keeps all (footnote)
                maps = layer.maps // 2 if self.columns == 1 and layer.name != "conv5" else layer.maps
                layer = replace(layer, maps=maps, lrn=layer.lrn and self.lrn, pool_size=size,
                                pool_stride=stride, activation=self.activation, columns=self.columns)
            else:
                layer = replace(layer, dropout=layer.dropout and self.dropout,
                                dropout_p=self.dropout_p, activation=self.activation,
                                columns=self.columns)
            rewritten.append(layer)
        return rewritten

    def describe(self):
        """What differs from AlexNet, in words ("AlexNet" for ``Variant()``)."""
        changes = [self.activation != "relu" and f"{self.activation} units",
                   not self.lrn and "no LRN", self.pool != "3/2" and f"{self.pool} pooling",
                   not self.dropout and "no dropout",
                   self.dropout and self.dropout_p != DROPOUT_P and f"dropout {self.dropout_p:g}",
                   self.columns == 1 and "one column"]
        return ", ".join(c for c in changes if c) or "AlexNet"


# ---- the one walk through the table --------------------------------------------------------------

class Step(NamedTuple):
    """One operation of the network on one device, as ``layer_plan`` lists them."""
    name: str           # "conv1", "relu1", "lrn1", "pool1", ..., "fc8", "softmax-xent"
    kind: str           # "conv", "relu", "tanh", "lrn", "pool", "fc", "dropout" or "loss"
    in_shape: tuple     # (N, C, H, W) up to the last pool; (N, features) from fc6 on
    out_shape: tuple    # () for the loss (a number)
    settings: dict      # the operation's arguments, see ``layer_plan``
    layer: object       # the table row (Conv or FC) it belongs to; None for the loss

    def weight_shape(self):
        """conv: (filters, C / groups, K, K); fc: (units, features); None for the others."""
        if self.kind == "conv":
            k = self.settings["kernel"]
            return (self.settings["filters"], self.in_shape[1] // self.settings["groups"], k, k)
        if self.kind == "fc":
            return (self.settings["units"], self.in_shape[1])
        return None


def layer_plan(layers, batch=1, in_channels=None, input_size=None):
    """Every operation of the one-device network, in forward order, as ``Step`` records.

    ``layers``: a table (``paper_layers(...)``) or a preset's name (its table for its class
    count; ``in_channels`` and ``input_size`` default to the preset's). Settings by kind:

    conv     filters, kernel, stride, pad, groups (2 for "own column" layers on one device)
    lrn      size, alpha, beta, k, groups (2: within each column's maps)
    pool     size, stride, pad
    fc       units
    dropout  p, groups (2: column 0's units draw first)
    relu, tanh, loss: none

    A convolution's output side is (H + 2 pad - K) / stride + 1 (``F.output_size``; a too
    small input raises a ValueError naming the input size and the layer). fc6 reads features
    = C * H * W. A row of a one-column table (``Variant(columns=1)``) has groups 1 everywhere.
    """
    if isinstance(layers, str):
        preset = PRESETS[layers]
        layers = preset.layers(preset.num_classes)
        in_channels, input_size = in_channels or preset.in_channels, input_size or preset.input_size
    plan, shape = [], (batch, in_channels, input_size, input_size)

    def add(name, kind, out_shape, layer, **settings):
        nonlocal shape
        plan.append(Step(name, kind, shape, out_shape, settings, layer))
        shape = out_shape

    for layer in layers:
        number = layer.name.removeprefix("conv").removeprefix("fc")
        if isinstance(layer, Conv):
            side = _side_after(layer.name, shape[2], layer.kernel, layer.stride, layer.pad,
                               input_size)
            add(layer.name, "conv", (batch, layer.maps, side, side), layer, filters=layer.maps,
                kernel=layer.kernel, stride=layer.stride, pad=layer.pad,
                groups=layer.columns if layer.sees == "own" else 1)
            add(f"{layer.activation}{number}", layer.activation, shape, layer)
            if layer.lrn:
                add(f"lrn{number}", "lrn", shape, layer, size=LRN_SIZE, alpha=LRN_ALPHA,
                    beta=LRN_BETA, k=LRN_K, groups=layer.columns)
            if layer.pool:
                side = _side_after(f"{layer.name}'s pool", side, layer.pool_size, layer.pool_stride,
                                   0, input_size)
                add(f"pool{number}", "pool", (batch, layer.maps, side, side), layer,
                    size=layer.pool_size, stride=layer.pool_stride, pad=0)
        else:
            shape = (batch, int(np.prod(shape[1:])))          # flattened in C, H, W order
            add(layer.name, "fc", (batch, layer.units), layer, units=layer.units)
            if not layer.last:
                add(f"{layer.activation}{number}", layer.activation, shape, layer)
            if layer.dropout:
                add(f"dropout{number}", "dropout", shape, layer, p=layer.dropout_p,
                    groups=layer.columns)
    add("softmax-xent", "loss", (), None)
    return plan


def _side_after(where, side, window, stride, pad, input_size):
    """``F.output_size`` of the conv or pool ``where``; a window larger than what is left of
    the image raises a ValueError naming the input size and the layer."""
    try:
        return F.output_size(side, window, stride, pad)
    except ValueError as error:
        raise ValueError(f"a {input_size}x{input_size} input is too small for these layers: "
                         f"{where} gets {side}x{side} maps ({error})") from error
