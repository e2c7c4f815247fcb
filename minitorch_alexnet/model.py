"""AlexNet as the paper builds it (Krizhevsky, Sutskever and Hinton, 2012, section 3.5).

The network is two columns, each holding half of every layer's kernels. They exchange
activations only into conv3, fc6, fc7 and fc8; conv2, conv4 and conv5 see their own column.

    layer   kernels         size/stride/pad  sees          then
    conv1   96 (48 + 48)    11 / 4 / 0       the image     ReLU, LRN, max-pool 3/2
    conv2   256 (128 + 128) 5 / 1 / 2        own column    ReLU, LRN, max-pool 3/2
    conv3   384 (192 + 192) 3 / 1 / 1        both columns  ReLU
    conv4   384 (192 + 192) 3 / 1 / 1        own column    ReLU
    conv5   256 (128 + 128) 3 / 1 / 1        own column    ReLU, max-pool 3/2
    fc6     4096 (2048 + 2048)               both columns  ReLU, dropout 0.5
    fc7     4096 (2048 + 2048)               both columns  ReLU, dropout 0.5
    fc8     num_classes                      both columns  (softmax in the loss)

Here: that table as data (``paper_layers``, ``small_layers``), the one walk through it
(``layer_plan``: every operation with its shapes and settings, read by the model, ``summary``
and both benchmarks), and the model built from it with ``nn`` modules.

On ONE device the two columns are one network whose "own column" layers are grouped
convolutions (groups=2), LRN normalises within each column's maps and dropout draws column 0's
numbers first (``nn.LRN``, ``nn.Dropout`` with groups=2): exactly what two devices compute.
With ``devices=(d0, d1)`` column k's parameters, activations and gradients live on device dk;
``columns.py`` shows where activations cross (into conv3, fc6, fc7 and fc8; fc8 lives on d0).

Presets: ``"paper"`` (227x227x3 input, the table above) and ``"small"`` for 32x32 or 28x28
images with 1 or 3 channels (CIFAR-10, Fashion-MNIST), which keeps every ingredient: five
convolutions (conv2/4/5 grouped), LRN, overlapping pooling, dropout and three FC layers, with
5x5 stride-1 kernels in conv1 and fewer maps. ``width`` scales every layer's maps and units.
"""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import functional as F
from . import nn
from .backend import to_numpy
from .columns import ColumnExchange, on_device, parse_devices
from .nonfinite import raise_if_nonfinite


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


@dataclass(frozen=True)
class FC:
    name: str
    units: int          # both columns together (fc8: the classes)
    bias: float         # initial bias (1 in fc6 and fc7)
    dropout: bool = False
    last: bool = False  # fc8: no ReLU, not split into columns, lives on the first device
    sees: str = "both"  # every fully connected layer reads both columns


def scaled(n, width):
    """n maps or units times ``width``, rounded to an even count so that two columns split it."""
    return 2 * max(1, round(n * width / 2))


def paper_layers(num_classes, width=1.0):
    """The paper's table (section 3.5, figure 2)."""
    w = lambda n: scaled(n, width)
    return [
        Conv("conv1", w(96), 11, 4, 0, sees="image", bias=0.0, lrn=True, pool=True),
        Conv("conv2", w(256), 5, 1, 2, sees="own", bias=1.0, lrn=True, pool=True),
        Conv("conv3", w(384), 3, 1, 1, sees="both", bias=0.0),
        Conv("conv4", w(384), 3, 1, 1, sees="own", bias=1.0),
        Conv("conv5", w(256), 3, 1, 1, sees="own", bias=1.0, pool=True),
        FC("fc6", w(4096), bias=1.0, dropout=True),
        FC("fc7", w(4096), bias=1.0, dropout=True),
        FC("fc8", num_classes, bias=0.0, last=True),
    ]


def small_layers(num_classes, width=1.0):
    """The same architecture for 32x32 / 28x28 images: conv1 is 5x5 stride 1 (an 11x11
    stride-4 kernel would leave too few pixels), maps and units are scaled down."""
    w = lambda n: scaled(n, width)
    return [
        Conv("conv1", w(64), 5, 1, 2, sees="image", bias=0.0, lrn=True, pool=True),
        Conv("conv2", w(128), 5, 1, 2, sees="own", bias=1.0, lrn=True, pool=True),
        Conv("conv3", w(192), 3, 1, 1, sees="both", bias=0.0),
        Conv("conv4", w(192), 3, 1, 1, sees="own", bias=1.0),
        Conv("conv5", w(128), 3, 1, 1, sees="own", bias=1.0, pool=True),
        FC("fc6", w(512), bias=1.0, dropout=True),
        FC("fc7", w(512), bias=1.0, dropout=True),
        FC("fc8", num_classes, bias=0.0, last=True),
    ]


class Preset(NamedTuple):
    layers: object      # (num_classes, width) -> the table
    input_size: int
    in_channels: int
    num_classes: int    # the benchmarks' class count


PRESETS = {
    "paper": Preset(paper_layers, 227, 3, 1000),
    "small": Preset(small_layers, 32, 3, 10),
}
POOL_SIZE, POOL_STRIDE = 3, 2                       # overlapping pooling, section 3.4
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0   # section 3.3
DROPOUT_P = 0.5
WEIGHT_STD = 0.01                                   # weights ~ N(0, 0.01^2), section 5
COLUMNS = 2                                         # the paper's two GPUs
DROPOUT_KEY_DOMAIN = 2      # keyed masks: [seed, 2, layer, key]; dropout_rng is [seed, 1]


# ---- the one walk through the table --------------------------------------------------------------

class Step(NamedTuple):
    """One operation of the network on one device, as ``layer_plan`` lists them."""
    name: str           # "conv1", "relu1", "lrn1", "pool1", ..., "fc8", "softmax-xent"
    kind: str           # "conv", "relu", "lrn", "pool", "fc", "dropout" or "loss"
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
    relu, loss: none

    A convolution's output side is (H + 2 pad - K) / stride + 1 (``F.output_size``, which
    raises a ValueError for a too small input). fc6 reads features = C * H * W.
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
            side = F.output_size(shape[2], layer.kernel, layer.stride, layer.pad)
            add(layer.name, "conv", (batch, layer.maps, side, side), layer, filters=layer.maps,
                kernel=layer.kernel, stride=layer.stride, pad=layer.pad,
                groups=COLUMNS if layer.sees == "own" else 1)
            add(f"relu{number}", "relu", shape, layer)
            if layer.lrn:
                add(f"lrn{number}", "lrn", shape, layer, size=LRN_SIZE, alpha=LRN_ALPHA,
                    beta=LRN_BETA, k=LRN_K, groups=COLUMNS)
            if layer.pool:
                side = F.output_size(side, POOL_SIZE, POOL_STRIDE, 0)
                add(f"pool{number}", "pool", (batch, layer.maps, side, side), layer,
                    size=POOL_SIZE, stride=POOL_STRIDE, pad=0)
        else:
            shape = (batch, int(np.prod(shape[1:])))          # flattened in C, H, W order
            add(layer.name, "fc", (batch, layer.units), layer, units=layer.units)
            if not layer.last:
                add(f"relu{number}", "relu", shape, layer)
            if layer.dropout:
                add(f"dropout{number}", "dropout", shape, layer, p=DROPOUT_P, groups=COLUMNS)
    add("softmax-xent", "loss", (), None)
    return plan


def initial_parameters(step, init, dtype, rng):
    """The full weight and bias of a conv or fc step, drawn on the host.

    ``init="paper"``: weights ~ N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6, fc7 and 0
    elsewhere (the table's ``bias``). ``init="he"`` (the small preset's trainer's default):
    weights ~ N(0, 2 / fan_in), fan_in = C/groups * K * K or features (He et al., 2015), biases
    0. The paper's scale leaves a network trained for minutes, not days, with gradients so
    small (1e-8 and less at conv1) that float32 products become slow CPU denormals."""
    shape = step.weight_shape()
    fan_in = int(np.prod(shape[1:]))
    std = WEIGHT_STD if init == "paper" else np.sqrt(2.0 / fan_in)
    weight = (rng.standard_normal(shape) * std).astype(dtype)
    bias = np.full(shape[0], step.layer.bias if init == "paper" else 0.0, dtype=dtype)
    return weight, bias


# ---- the model ---------------------------------------------------------------------------------

class AlexNet:
    """AlexNet with the paper's layers, initialisation and optional two-device columns.

    >>> model = AlexNet(num_classes=10, preset="small")
    >>> logits = model.forward(images, train=True)        # images (N, 3, 32, 32)
    >>> loss, dlogits = functional.softmax_cross_entropy(logits, labels)
    >>> model.backward(dlogits)                            # fills model.grad_dict()

    ``model.blocks[name]`` holds, for each row of the table, one ``nn.Sequential`` per column
    that runs it (conv, ReLU, LRN, pool or fc, ReLU, dropout), on that column's device.
    """

    def __init__(self, num_classes=1000, preset="paper", seed=0, devices=None, dtype=np.float32,
                 width=1.0, in_channels=None, input_size=None, init="paper"):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        if init not in ("paper", "he"):
            raise ValueError(f"init must be 'paper' or 'he', got {init!r}")
        table = PRESETS[preset]
        self.preset, self.num_classes, self.width = preset, num_classes, width
        self.init, self.seed = init, seed
        self.in_channels = in_channels or table.in_channels
        self.input_size = input_size or table.input_size
        self.dtype = np.dtype(dtype)
        self.layers = table.layers(num_classes, width)
        self.plan = layer_plan(self.layers, 1, self.in_channels, self.input_size)
        self.feature_shape = next(step.out_shape[1:] for step in reversed(self.plan)
                                  if isinstance(step.layer, Conv))      # (C, H, W) entering fc6
        self.devices = parse_devices(devices)
        self.columns = len(self.devices)
        self.exchange = ColumnExchange(self.devices)
        # Unkeyed dropout masks, fc6's then fc7's (the layers share it: replay via its state).
        self.dropout_rng = np.random.default_rng([seed, 1])
        self.blocks = self._build_blocks(np.random.default_rng(seed))
        self._ran_forward = False
        self.check_finite = False   # True: raise FloatingPointError naming the first bad layer

    def _build_blocks(self, rng):
        """Each table row's operations as nn modules, one Sequential per column. The weights
        are drawn full-size in table order, then split between the columns."""
        blocks = {}
        for layer in self.layers:
            steps = [step for step in self.plan if step.layer is layer]
            weight, bias = initial_parameters(steps[0], self.init, self.dtype, rng)
            pieces = zip(self.exchange.split_rows(layer, weight), self.exchange.split_rows(layer, bias))
            blocks[layer.name] = [nn.Sequential(*(self._module(step, w, b, column) for step in steps))
                                  for column, (w, b) in enumerate(pieces)]
        return blocks

    def _module(self, step, weight, bias, column):
        """The module that runs ``step`` in ``column``; the conv or fc gets weight and bias.
        On two devices a column is one group; on one device it holds both (groups=2)."""
        s = step.settings
        groups = s.get("groups", 1) if self.columns == 1 else 1
        if step.kind == "conv":
            return nn.Conv2d.from_arrays(weight, bias, s["stride"], s["pad"], groups)
        if step.kind == "fc":
            return nn.Linear.from_arrays(weight, bias)
        if step.kind == "lrn":
            return nn.LRN(s["size"], s["alpha"], s["beta"], s["k"], groups)
        if step.kind == "pool":
            return nn.MaxPool2d(s["size"], s["stride"], s["pad"])
        if step.kind == "dropout":         # column k holds units [k u, (k + 1) u) of the layer
            units, layer = step.out_shape[1], int(step.layer.name.removeprefix("fc"))
            key_seed = (self.seed, DROPOUT_KEY_DOMAIN, layer)
            return nn.Dropout(s["p"], self.dropout_rng, groups, key_seed,
                              column * units // self.columns, units)
        return nn.ReLU()

    def _modules(self):
        """Every module of every column, in forward order."""
        return [module for blocks in self.blocks.values() for block in blocks for module in block.layers]

    # ---- forward and backward ------------------------------------------------------------------
    def forward(self, x, train=True, dropout_keys=None):
        """x (N, in_channels, input_size, input_size) -> logits (N, num_classes) on the first
        device. ``train`` turns dropout on. ``dropout_keys`` (one int >= 0 per image): image
        n's masks depend on (seed, layer, dropout_keys[n]) alone (``nn.Dropout``)."""
        self._check_input(x)
        for module in self._modules():
            module.cache = None                  # free the last step's caches first
            if isinstance(module, nn.Dropout):
                module.row_keys = dropout_keys
        self._ran_forward = True
        self._check([x], "the input batch", verb="contains")
        h = [x]                                  # one array per column (one device: the whole)
        for layer in self.layers:
            h = self.exchange.inputs(layer, h, x)    # the image, own column, or both columns
            h = [on_device(device, block.train(train).forward, part) for device, block, part
                 in zip(self.exchange.devices_for(layer), self.blocks[layer.name], h)]
            self._check(h, f"the forward pass of {layer.name}")
        return h[0]

    def backward(self, dlogits, input_grad=True):
        """dlogits (N, num_classes) -> d(input); fills the gradients (see ``grad_dict``).
        ``input_grad=False`` returns None and skips conv1's d(input), which training does not
        use (the gradient with respect to the image)."""
        if not self._ran_forward:
            raise RuntimeError("backward() needs a forward() first")
        for module in self._modules():
            module.grads = {}
        dh = [dlogits]
        for layer in reversed(self.layers):
            need_dx = input_grad or layer.sees != "image"   # d(image) only when asked for
            dh = [on_device(device, block.backward, dy, need_dx) for device, block, dy
                  in zip(self.exchange.devices_for(layer), self.blocks[layer.name], dh)]
            dh = self.exchange.input_gradients(layer, dh)   # sum where forward gathered
            grads = [g for block in self.blocks[layer.name] for g in block.layers[0].grads.values()]
            self._check([d for d in dh if d is not None] + grads, f"the backward pass of {layer.name}")
        return dh[0]

    def _check_input(self, x):
        expected = (self.in_channels, self.input_size, self.input_size)
        if getattr(x, "ndim", 0) != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        if x.dtype != self.dtype:
            raise ValueError(f"x must have dtype {self.dtype} (the model's), got {x.dtype}")

    def _check(self, arrays, where, verb="produced"):
        """With ``check_finite`` on, raise FloatingPointError if an array holds nan or inf."""
        if self.check_finite:
            raise_if_nonfinite(arrays, where, verb)

    # ---- what the modules hold -------------------------------------------------------------------
    @property
    def params(self):
        """"conv1.weight", "conv1.bias", ... -> one array per column (fc8 and one device: one):
        the arrays the layers compute with, which the optimizer updates in place."""
        return {f"{name}.{kind}": [block.layers[0].params[kind] for block in blocks]
                for name, blocks in self.blocks.items() for kind in ("weight", "bias")}

    @property
    def grads(self):
        """The gradients of the last ``backward``, keyed and split like ``params`` ({} before)."""
        return {f"{name}.{kind}": [block.layers[0].grads[kind] for block in blocks]
                for name, blocks in self.blocks.items() for kind in ("weight", "bias")
                if kind in blocks[0].layers[0].grads}

    @property
    def caches(self):
        """The last forward's caches: layer -> per column, per module (None before one)."""
        if not self._ran_forward:
            return None
        return {name: [[module.cache for module in block.layers] for block in blocks]
                for name, blocks in self.blocks.items()}

    # ---- weights that travel ---------------------------------------------------------------------
    def state_dict(self):
        """PyTorch-style names and layouts (``conv1.weight`` (96, 3, 11, 11), ...), NumPy
        copies, identical for one column or two."""
        return {k: np.concatenate([to_numpy(p) for p in parts]) for k, parts in self.params.items()}

    def grad_dict(self):
        """The gradients of the last ``backward``, same keys and shapes as ``state_dict``."""
        grads = self.grads
        if not grads:
            raise RuntimeError("grad_dict() needs a backward() first")
        return {k: np.concatenate([to_numpy(g) for g in parts]) for k, parts in grads.items()}

    def load_state_dict(self, state):
        """Load tensors named and shaped as ``state_dict()`` (copies, split into the columns);
        a missing, extra or wrongly shaped tensor raises a ValueError naming it."""
        mine = self.state_dict()
        missing, extra = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
        if missing or extra:
            raise ValueError(f"state dict does not match AlexNet: missing {missing}, unexpected {extra}")
        for key, value in state.items():
            if tuple(np.shape(value)) != mine[key].shape:
                raise ValueError(f"{key} has shape {tuple(np.shape(value))}, the model expects {mine[key].shape}")
        for layer in self.layers:
            for kind in ("weight", "bias"):
                full = np.array(to_numpy(state[f"{layer.name}.{kind}"]), dtype=self.dtype, copy=True)
                for block, piece in zip(self.blocks[layer.name], self.exchange.split_rows(layer, full)):
                    block.layers[0].params[kind] = piece

    def parameters(self):
        """(name, column, parameter, gradient) for every piece, on its own device: what an
        optimizer updates."""
        grads = self.grads
        for key, parts in self.params.items():
            for column, param in enumerate(parts):
                yield key, column, param, grads[key][column] if key in grads else None

    def num_parameters(self):
        return sum(int(np.prod(p.shape)) for parts in self.params.values() for p in parts)
