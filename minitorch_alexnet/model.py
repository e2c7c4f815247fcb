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

On ONE device the two columns are one network whose "own column" layers are grouped
convolutions (groups=2): filters of the first half see only the first half of the channels.
With ``devices=(d0, d1)`` column k's parameters, activations and gradients live on device dk,
and activations cross devices only into conv3, fc6, fc7 and fc8 (fc8 lives on d0).

Two details make the one-device model exactly the two-column model:
- LRN normalises within a column's maps (channel c's window never reaches into the other
  column), as on the paper's two GPUs; on one device the channels are viewed as
  (N*2, C/2, H, W) for it.
- Dropout draws its random numbers column by column (all of column 0's units, then column 1's),
  so one seed gives the same masks on one device and on two.

Presets: ``"paper"`` (227x227x3 input, the table above) and ``"small"`` for 32x32 or 28x28
images with 1 or 3 channels (CIFAR-10, Fashion-MNIST), which keeps every ingredient: five
convolutions (conv2/4/5 grouped), LRN, overlapping pooling, dropout and three FC layers, with
5x5 stride-1 kernels in conv1 and fewer maps. ``width`` scales every layer's maps and units.
"""
from dataclasses import dataclass

import numpy as np

from . import functional as F
from .backend import device_context, get_array_module, parse_device, to_device, to_numpy
from .nonfinite import raise_if_nonfinite


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


PRESETS = {
    # preset: (layer table, input size, input channels)
    "paper": (paper_layers, 227, 3),
    "small": (small_layers, 32, 3),
}
POOL_SIZE, POOL_STRIDE = 3, 2                       # overlapping pooling, section 3.4
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0   # section 3.3
DROPOUT_P = 0.5
WEIGHT_STD = 0.01                                   # weights ~ N(0, 0.01^2), section 5


def concat_on(device, parts, axis=1):
    """Concatenate arrays from any devices on ``device``: the columns' exchange."""
    with device_context(device):
        moved = [to_device(p, device) for p in parts]
        return get_array_module(moved[0]).concatenate(moved, axis=axis)


class AlexNet:
    """AlexNet with the paper's layers, initialisation and optional two-device columns.

    >>> model = AlexNet(num_classes=10, preset="small")
    >>> logits = model.forward(images, train=True)        # images (N, 3, 32, 32)
    >>> loss, dlogits = functional.softmax_cross_entropy(logits, labels)
    >>> model.backward(dlogits)                            # fills model.grad_dict()
    """

    def __init__(self, num_classes=1000, preset="paper", seed=0, devices=None, dtype=np.float32,
                 width=1.0, in_channels=None, input_size=None, init="paper"):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        make_layers, default_size, default_channels = PRESETS[preset]
        self.preset, self.num_classes, self.width = preset, num_classes, width
        self.in_channels = in_channels or default_channels
        self.input_size = input_size or default_size
        self.dtype = np.dtype(dtype)
        self.layers = make_layers(num_classes, width)
        self.devices = self._parse_devices(devices)
        self.columns = len(self.devices)
        self.feature_shape = self._check_sizes()
        self.seed = seed
        self.dropout_rng = np.random.default_rng([seed, 1])
        self.params = {}     # name -> list of arrays, one per column (fc8 and 1-device: one)
        self.grads = {}
        if init not in ("paper", "he"):
            raise ValueError(f"init must be 'paper' or 'he', got {init!r}")
        self.init = init
        self._init_params(np.random.default_rng(seed))
        self.caches = None
        self.check_finite = False   # True: raise FloatingPointError naming the first bad layer

    # ---- construction ------------------------------------------------------------------
    @staticmethod
    def _parse_devices(devices):
        if devices is None:
            return ["cpu"]
        if isinstance(devices, str):
            devices = [devices]
        devices = list(devices)
        if len(devices) not in (1, 2):
            raise ValueError(f"devices must name one device or two (one per column), got {devices}")
        for d in devices:
            parse_device(d)
        return devices

    def _check_sizes(self):
        """Follow the input size through the table; returns the (C, H, W) entering fc6."""
        size, channels = self.input_size, self.in_channels
        for layer in self.layers:
            if isinstance(layer, Conv):
                size = F.output_size(size, layer.kernel, layer.stride, layer.pad)
                if layer.pool:
                    size = F.output_size(size, POOL_SIZE, POOL_STRIDE, 0)
                channels = layer.maps
        return channels, size, size

    def _init_params(self, rng):
        """Paper initialisation: weights ~ N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6,
        fc7 and 0 elsewhere. Drawn full-size on the host, then split into columns.

        ``init="he"`` instead draws weights ~ N(0, 2 / fan_in) (He et al., 2015) with all
        biases 0: the paper's scale leaves a network trained for minutes, not days, with
        gradients so small (1e-8 and less at conv1) that float32 products fall into the slow
        denormal range of the CPU. The small preset's trainer uses it by default."""
        previous, flat = self.in_channels, None
        for layer in self.layers:
            if isinstance(layer, Conv):
                seen = self.in_channels if layer.sees == "image" else previous
                inputs_per_filter = seen // 2 if layer.sees == "own" else seen
                shape = (layer.maps, inputs_per_filter, layer.kernel, layer.kernel)
                previous = layer.maps
                outputs = layer.maps
            else:
                inputs = flat if flat is not None else int(np.prod(self.feature_shape))
                shape = (layer.units, inputs)
                flat = outputs = layer.units
            fan_in = int(np.prod(shape[1:]))
            std = WEIGHT_STD if self.init == "paper" else np.sqrt(2.0 / fan_in)
            weight = (rng.standard_normal(shape) * std).astype(self.dtype)
            bias = np.full(outputs, layer.bias if self.init == "paper" else 0.0, dtype=self.dtype)
            self._set(layer, "weight", weight)
            self._set(layer, "bias", bias)

    def _is_split(self, layer):
        return self.columns == 2 and not (isinstance(layer, FC) and layer.last)

    def _set(self, layer, kind, full):
        """Store a full host tensor as per-column pieces (rows k*half..(k+1)*half on dk)."""
        key = f"{layer.name}.{kind}"
        if self._is_split(layer):
            half = full.shape[0] // 2
            pieces = [full[:half], full[half:]]
            self.params[key] = [to_device(np.ascontiguousarray(p), d) for p, d in zip(pieces, self.devices)]
        else:
            self.params[key] = [to_device(np.ascontiguousarray(full), self.devices[0])]
        # (callers pass fresh copies: load_state_dict copies, so the caller's arrays stay theirs)

    # ---- weights that travel -----------------------------------------------------------
    def state_dict(self):
        """PyTorch-style names and layouts (``conv1.weight`` (96, 3, 11, 11), ...), NumPy
        copies, identical for one column or two."""
        return {k: np.concatenate([to_numpy(p) for p in parts]) for k, parts in self.params.items()}

    def grad_dict(self):
        """The gradients of the last ``backward``, same keys and shapes as ``state_dict``."""
        if not self.grads:
            raise RuntimeError("grad_dict() needs a backward() first")
        return {k: np.concatenate([to_numpy(g) for g in parts]) for k, parts in self.grads.items()}

    def load_state_dict(self, state):
        """Load tensors named and shaped as ``state_dict()``; a missing, extra or wrongly
        shaped tensor raises a ValueError naming it."""
        expected = {k: sum(p.shape[0] for p in parts) for k, parts in self.params.items()}
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise ValueError(f"state dict does not match AlexNet: missing {missing}, unexpected {extra}")
        mine = self.state_dict()
        for key, value in state.items():
            if tuple(np.shape(value)) != mine[key].shape:
                raise ValueError(f"{key} has shape {tuple(np.shape(value))}, the model expects {mine[key].shape}")
        for layer in self.layers:
            for kind in ("weight", "bias"):
                key = f"{layer.name}.{kind}"
                self._set(layer, kind, np.array(to_numpy(state[key]), dtype=self.dtype, copy=True))

    def parameters(self):
        """(name, column, parameter, gradient) for every piece, on its own device: what an
        optimizer updates."""
        for key, parts in self.params.items():
            for column, param in enumerate(parts):
                grad = self.grads[key][column] if key in self.grads else None
                yield key, column, param, grad

    def num_parameters(self):
        return sum(int(np.prod(p.shape)) for parts in self.params.values() for p in parts)

    # ---- forward -------------------------------------------------------------------------
    def forward(self, x, train=True):
        """x (N, in_channels, input_size, input_size) -> logits (N, num_classes) on the first
        device. ``train`` turns dropout on."""
        expected = (self.in_channels, self.input_size, self.input_size)
        if getattr(x, "ndim", 0) != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        if x.dtype != self.dtype:
            raise ValueError(f"x must have dtype {self.dtype} (the model's), got {x.dtype}")
        self.caches = {}
        self._check([x], "the input batch", verb="contains")
        parts = [x]                      # one array per column (or the whole on one device)
        for layer in self.layers:
            if isinstance(layer, Conv):
                parts = self._conv_forward(layer, parts, x)
            else:
                parts = self._fc_forward(layer, parts, train)
            self._check(parts, f"the forward pass of {layer.name}")
        return parts[0]

    def _check(self, arrays, where, verb="produced"):
        """With ``check_finite`` on, raise FloatingPointError if an array holds nan or inf."""
        if self.check_finite:
            raise_if_nonfinite(arrays, where, verb)

    def _inputs_for(self, layer, parts, image, column):
        """What column k reads: the image, its own maps, or both columns' maps."""
        device = self.devices[column]
        if layer.sees == "image":
            return to_device(image, device) if self.columns == 2 else image
        if self.columns == 1 or layer.sees == "own":
            return parts[column]
        return concat_on(device, parts)          # exchange between the columns

    def _conv_forward(self, layer, parts, image):
        groups = 2 if (layer.sees == "own" and self.columns == 1) else 1
        outputs, caches = [], []
        for k, device in enumerate(self.devices):
            with device_context(device):
                x = self._inputs_for(layer, parts, image, k)
                w, b = self.params[f"{layer.name}.weight"][k], self.params[f"{layer.name}.bias"][k]
                y, conv_cache = F.conv2d_forward(x, w, b, layer.stride, layer.pad, groups)
                y, relu_cache = F.relu_forward(y)
                lrn_cache = pool_cache = None
                if layer.lrn:
                    y, lrn_cache = self._lrn_forward(y)
                if layer.pool:
                    y, pool_cache = F.max_pool2d_forward(y, POOL_SIZE, POOL_STRIDE, 0)
                outputs.append(y)
                caches.append((conv_cache, relu_cache, lrn_cache, pool_cache))
        self.caches[layer.name] = caches
        return outputs

    def _lrn_forward(self, y):
        """LRN within each column's maps: on one device view (N, C, H, W) as (N*2, C/2, H, W)."""
        n, c, h, w = y.shape
        split = 2 if self.columns == 1 else 1
        out, cache = F.lrn_forward(y.reshape(n * split, c // split, h, w),
                                   LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)
        return out.reshape(n, c, h, w), cache

    def _fc_forward(self, layer, parts, train):
        outputs, caches = [], []
        columns = 1 if layer.last else self.columns
        for k in range(columns):
            device = self.devices[k]
            with device_context(device):
                x = parts[0] if self.columns == 1 else concat_on(
                    device, [p.reshape(p.shape[0], -1) for p in parts])
                w, b = self.params[f"{layer.name}.weight"][k], self.params[f"{layer.name}.bias"][k]
                y, linear_cache = F.linear_forward(x, w, b)
                relu_cache = dropout_cache = None
                if not layer.last:
                    y, relu_cache = F.relu_forward(y)
                if layer.dropout:
                    y, dropout_cache = self._dropout_forward(y, train)
                outputs.append(y)
                caches.append((linear_cache, relu_cache, dropout_cache))
        self.caches[layer.name] = caches
        return outputs

    def _dropout_forward(self, y, train):
        """Dropout drawing column 0's numbers first, then column 1's: on one device the
        (N, units) array is viewed as (2, N, units/2) so the draw order is the same."""
        if self.columns == 2:
            return F.dropout_forward(y, DROPOUT_P, train, self.dropout_rng)
        n, units = y.shape
        by_column = y.reshape(n, 2, units // 2).transpose(1, 0, 2)
        out, cache = F.dropout_forward(by_column, DROPOUT_P, train, self.dropout_rng)
        return out.transpose(1, 0, 2).reshape(n, units), cache

    # ---- backward ------------------------------------------------------------------------
    def backward(self, dlogits, input_grad=True):
        """dlogits (N, num_classes) -> d(input); fills the gradients (see ``grad_dict``).
        ``input_grad=False`` returns None and skips conv1's d(input), which training does not
        use (the gradient with respect to the image)."""
        if self.caches is None:
            raise RuntimeError("backward() needs a forward() first")
        self.grads = {}
        dparts = [dlogits]
        for layer in reversed(self.layers):
            if isinstance(layer, Conv):
                dparts = self._conv_backward(layer, dparts, input_grad or layer.sees != "image")
            else:
                dparts = self._fc_backward(layer, dparts)
            self._check([d for d in dparts if d is not None] + self.grads[f"{layer.name}.weight"] + self.grads[f"{layer.name}.bias"],
                        f"the backward pass of {layer.name}")
        return dparts[0]

    def _gather(self, pieces_by_column, sizes, axis):
        """Column k produced the gradient of a concatenation of every column's activations;
        split it, send piece j to device j, and sum there. ``sizes`` are the pieces' lengths
        (one piece, the image's gradient, is summed on the first device)."""
        result = []
        bounds = np.cumsum([0] + list(sizes))
        for j, device in enumerate(self.devices[:len(sizes)]):
            with device_context(device):
                total = None
                for grad in pieces_by_column:
                    index = [slice(None)] * grad.ndim
                    index[axis] = slice(bounds[j], bounds[j + 1])
                    piece = to_device(grad[tuple(index)], device)
                    total = piece if total is None else total + piece
                result.append(total)
        return result

    def _conv_backward(self, layer, dparts, input_grad=True):
        dinputs, dws, dbs = [], [], []
        for k, device in enumerate(self.devices):
            conv_cache, relu_cache, lrn_cache, pool_cache = self.caches[layer.name][k]
            with device_context(device):
                dy = dparts[k]
                if layer.pool:
                    dy = F.max_pool2d_backward(dy, pool_cache)
                if layer.lrn:
                    dy = self._lrn_backward(dy, lrn_cache)
                dy = F.relu_backward(dy, relu_cache)
                dx, dw, db = F.conv2d_backward(dy, conv_cache, input_grad)
            dinputs.append(dx)
            dws.append(dw)
            dbs.append(db)
        self.grads[f"{layer.name}.weight"], self.grads[f"{layer.name}.bias"] = dws, dbs
        if self.columns == 1 or layer.sees == "own":
            return dinputs
        if not input_grad:
            return [None]
        if layer.sees == "image":
            return [self._gather(dinputs, [dinputs[0].shape[1]], axis=1)[0]]
        half = dinputs[0].shape[1] // 2         # "both": each column read both halves
        return self._gather(dinputs, [half, half], axis=1)

    def _lrn_backward(self, dy, cache):
        n, c, h, w = dy.shape
        split = 2 if self.columns == 1 else 1
        return F.lrn_backward(dy.reshape(n * split, c // split, h, w), cache).reshape(n, c, h, w)

    def _fc_backward(self, layer, dparts):
        dinputs, dws, dbs = [], [], []
        columns = 1 if layer.last else self.columns
        for k in range(columns):
            linear_cache, relu_cache, dropout_cache = self.caches[layer.name][k]
            with device_context(self.devices[k]):
                dy = dparts[k]
                if layer.dropout:
                    dy = self._dropout_backward(dy, dropout_cache)
                if not layer.last:
                    dy = F.relu_backward(dy, relu_cache)
                dx, dw, db = F.linear_backward(dy, linear_cache)
            dinputs.append(dx)
            dws.append(dw)
            dbs.append(db)
        self.grads[f"{layer.name}.weight"], self.grads[f"{layer.name}.bias"] = dws, dbs
        if self.columns == 1:
            return dinputs
        # Every column's input was the concatenation of both columns' (flattened) outputs.
        if layer.name == "fc6":
            c, h, w = self.feature_shape
            half = (c // 2) * h * w
            shaped = self._gather(dinputs, [half, half], axis=1)
            return [d.reshape(d.shape[0], c // 2, h, w) for d in shaped]
        half = dinputs[0].shape[1] // 2
        return self._gather(dinputs, [half, half], axis=1)

    def _dropout_backward(self, dy, cache):
        if self.columns == 2:
            return F.dropout_backward(dy, cache)
        n, units = dy.shape
        by_column = dy.reshape(n, 2, units // 2).transpose(1, 0, 2)
        return F.dropout_backward(by_column, cache).transpose(1, 0, 2).reshape(n, units)
