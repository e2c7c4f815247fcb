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

Here: the model built from that table (``architecture.py`` holds it as data, with the
variants the paper compares it with and ``layer_plan``, the one walk through it) with ``nn``
modules, and its initial weights.

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
import numpy as np

from . import nn
from .architecture import (COLUMNS, DROPOUT_P, FC, LRN_ALPHA, LRN_BETA, LRN_K,  # noqa: F401
                           LRN_SIZE, POOL_SIZE, POOL_STRIDE, PRESETS, Conv, Preset, Step, Variant,
                           fc_scale, layer_plan, paper_layers, scaled, small_layers)
from .backend import to_numpy
from .columns import ColumnExchange, gather_on, on_device, parse_devices
from .nonfinite import raise_if_nonfinite


WEIGHT_STD = 0.01                                   # weights ~ N(0, 0.01^2), section 5
DROPOUT_KEY_DOMAIN = 2      # keyed masks: [seed, 2, layer, key]; dropout_rng is [seed, 1]


# ---- the weights -------------------------------------------------------------------------------

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
                 width=1.0, in_channels=None, input_size=None, init="paper", variant=None,
                 fc_width=None):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        if init not in ("paper", "he"):
            raise ValueError(f"init must be 'paper' or 'he', got {init!r}")
        table = PRESETS[preset]
        self.preset, self.num_classes, self.width = preset, num_classes, width
        self.fc_width = fc_scale(width, fc_width)                  # fc6 and fc7's scale
        self.init, self.seed = init, seed
        self.in_channels = in_channels or table.in_channels
        self.input_size = input_size or table.input_size
        self.dtype = np.dtype(dtype)
        self.variant = variant or Variant()
        self.layers = self.variant.apply(table.layers(num_classes, width, self.fc_width))
        self.plan = layer_plan(self.layers, 1, self.in_channels, self.input_size)
        self.feature_shape = next(step.out_shape[1:] for step in reversed(self.plan)
                                  if isinstance(step.layer, Conv))      # (C, H, W) entering fc6
        self.devices = parse_devices(devices)
        self.columns = len(self.devices)
        if self.columns > self.variant.columns:
            raise ValueError(f"a one-column network ({self.variant.describe()}) runs on one "
                             f"device, got {len(self.devices)}")
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
        if step.kind == "tanh":
            return nn.Tanh()
        return nn.ReLU()

    def _modules(self):
        """Every module of every column, in forward order."""
        return [module for blocks in self.blocks.values() for block in blocks for module in block.layers]

    # ---- forward and backward ------------------------------------------------------------------
    def forward(self, x, train=True, dropout_keys=None, until=None):
        """x (N, in_channels, input_size, input_size) -> logits (N, num_classes) on the first
        device. ``train`` turns dropout on. ``dropout_keys`` (one int >= 0 per image): image
        n's masks depend on (seed, layer, dropout_keys[n]) alone (``nn.Dropout``). ``until``
        (a row's name, e.g. "fc7"): stop after that row (its ReLU, LRN, pool or dropout too)
        and return its output, both columns joined, on the first device: the features that
        the paper's Figure 4 compares (``train=False``: no dropout)."""
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
            if layer.name == until:
                return h[0] if len(h) == 1 else gather_on(self.devices[0], h)
        if until is not None:
            raise ValueError(f"until must name a layer ({', '.join(l.name for l in self.layers)}), "
                             f"got {until!r}")
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
