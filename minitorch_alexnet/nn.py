"""Modules: thin stateful wrappers over ``minitorch_alexnet.functional``.

A module holds its parameters in ``params`` and, after ``backward``, their gradients in
``grads`` (same names). ``forward`` keeps the cache that its ``backward`` needs; the math lives
in ``functional``. This is the "Deep Learning from Scratch" layer style::

    layer = Conv2d(3, 96, 11, stride=4, rng=rng)
    y = layer.forward(x)          # layer.cache = what backward needs
    dx = layer.backward(dy)       # fills layer.grads["weight"], layer.grads["bias"]

``AlexNet`` (``model.py``) is built from these modules: one ``Sequential`` per layer of the
paper's table and per column. Three options exist for it: ``Conv2d.from_arrays`` and
``Linear.from_arrays`` compute with weights drawn elsewhere (the model draws each layer's full
weight once and splits it between the columns); ``LRN(groups=2)`` normalises within each half
of the channels and ``Dropout(groups=2)`` draws each half's mask in turn, so that one device
holding both columns computes exactly what two devices do.
"""
import numpy as np

from . import functional as F


class Module:
    """Base class: ``params`` and ``grads`` dicts, a ``training`` flag, forward/backward."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True
        self.cache = None

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def __repr__(self):
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Conv2d(Module):
    """2-D convolution, weight (out, in // groups, k, k), bias (out,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad=0, groups=1,
                 weight_std=0.01, bias_value=0.0, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.stride, self.pad, self.groups = stride, pad, groups
        shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        self.params["weight"] = (rng.standard_normal(shape) * weight_std).astype(dtype)
        self.params["bias"] = np.full(out_channels, bias_value, dtype=dtype)

    @classmethod
    def from_arrays(cls, weight, bias, stride=1, pad=0, groups=1):
        """A convolution computing with ``weight`` (out, in // groups, k, k) and ``bias``
        (out,) themselves (not copies; NumPy or CuPy), drawing nothing."""
        layer = cls.__new__(cls)          # skip __init__: it would draw a random weight
        Module.__init__(layer)
        layer.stride, layer.pad, layer.groups = stride, pad, groups
        layer.params.update(weight=weight, bias=bias)
        return layer

    def forward(self, x):
        y, self.cache = F.conv2d_forward(x, self.params["weight"], self.params["bias"],
                                         self.stride, self.pad, self.groups)
        return y

    def backward(self, dy, input_grad=True):
        """dy -> dx, filling ``grads``. ``input_grad=False`` skips dx (returns None): a
        network's first layer needs no gradient with respect to the images."""
        dx, self.grads["weight"], self.grads["bias"] = F.conv2d_backward(dy, self.cache, input_grad)
        return dx


class Linear(Module):
    """Fully connected, weight (out, in), bias (out,); flattens (N, ...) inputs."""

    def __init__(self, in_features, out_features, weight_std=0.01, bias_value=0.0, rng=None,
                 dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.params["weight"] = (rng.standard_normal((out_features, in_features)) * weight_std).astype(dtype)
        self.params["bias"] = np.full(out_features, bias_value, dtype=dtype)

    @classmethod
    def from_arrays(cls, weight, bias):
        """A fully connected layer computing with ``weight`` (out, in) and ``bias`` (out,)
        themselves (not copies), drawing nothing."""
        layer = cls.__new__(cls)          # skip __init__: it would draw a random weight
        Module.__init__(layer)
        layer.params.update(weight=weight, bias=bias)
        return layer

    def forward(self, x):
        y, self.cache = F.linear_forward(x, self.params["weight"], self.params["bias"])
        return y

    def backward(self, dy):
        dx, self.grads["weight"], self.grads["bias"] = F.linear_backward(dy, self.cache)
        return dx


class ReLU(Module):
    def forward(self, x):
        y, self.cache = F.relu_forward(x)
        return y

    def backward(self, dy):
        return F.relu_backward(dy, self.cache)


class Tanh(Module):
    def forward(self, x):
        y, self.cache = F.tanh_forward(x)
        return y

    def backward(self, dy):
        return F.tanh_backward(dy, self.cache)


class LRN(Module):
    """Local response normalization with the paper's constants by default (alpha not / size).

    ``groups=g`` normalises within each of g equal groups of channels: channel c's window never
    reaches into the next group. AlexNet's two columns on one device use ``groups=2``: x
    (N, C, H, W) is viewed as (N*g, C/g, H, W), so each image's two halves of the channels
    are normalised as two separate images, as they were on the paper's two GPUs."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, groups=1):
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.groups = size, alpha, beta, k, groups

    def forward(self, x):
        n, c, h, w = x.shape
        g = self.groups
        y, self.cache = F.lrn_forward(x.reshape(n * g, c // g, h, w),
                                      self.size, self.alpha, self.beta, self.k)
        return y.reshape(n, c, h, w)

    def backward(self, dy):
        n, c, h, w = dy.shape
        g = self.groups
        return F.lrn_backward(dy.reshape(n * g, c // g, h, w), self.cache).reshape(n, c, h, w)


class MaxPool2d(Module):
    """Max-pooling; AlexNet's overlapping 3/2 by default."""

    def __init__(self, size=3, stride=2, pad=0):
        super().__init__()
        self.size, self.stride, self.pad = size, stride, pad

    def forward(self, x):
        y, self.cache = F.max_pool2d_forward(x, self.size, self.stride, self.pad)
        return y

    def backward(self, dy):
        return F.max_pool2d_backward(dy, self.cache)


class Dropout(Module):
    """Inverted dropout; ``p`` is the probability of zeroing. ``rng`` (a numpy Generator, used
    as it is, or a seed) draws the masks, one new mask per forward call.

    ``groups=g`` draws the mask of (N, units) group by group: all of the first units/g
    columns' numbers (every image), then the next group's. AlexNet's two columns on one device
    use ``groups=2``, so one seed gives the masks that two devices, each drawing for its own
    half in turn, would get. The (N, units) array is viewed as (g, N, units/g) for the draw.

    Keyed masks: with ``row_keys`` set (one non-negative int per row of the next batch, e.g.
    which image of which epoch the row holds) and ``key_seed`` given, row n's mask is drawn from
    ``F.KeyedUniforms(key_seed, row_keys)``: a function of the row's key alone, whatever else
    is in the batch. A module holding units [first_unit, first_unit + units) of a layer
    ``total_units`` wide (a column on its own device) draws that slice of the row's numbers."""

    def __init__(self, p=0.5, rng=None, groups=1, key_seed=None, first_unit=0, total_units=None):
        super().__init__()
        self.p, self.groups = p, groups
        self.rng = np.random.default_rng(rng)
        self.key_seed, self.first_unit, self.total_units = key_seed, first_unit, total_units
        self.row_keys = None
        self.keyed = False                 # whether the last forward drew keyed masks

    def _keyed_rng(self):
        """The ``KeyedUniforms`` of this forward call, or None when masks are not keyed."""
        if self.row_keys is None or not self.training or self.p == 0.0:
            return None
        if self.key_seed is None:
            raise ValueError("row_keys were given to a Dropout built without key_seed")
        return F.KeyedUniforms(self.key_seed, self.row_keys, self.first_unit, self.total_units)

    def _by_group(self, x):
        """(N, units) -> (g, N, units/g): group j's units are x[:, j*units/g:(j+1)*units/g]."""
        n, units = x.shape
        return x.reshape(n, self.groups, units // self.groups).transpose(1, 0, 2)

    def _back_from_groups(self, x_by_group):
        """The inverse of ``_by_group``: (g, N, units/g) -> (N, units)."""
        g, n, per_group = x_by_group.shape
        return x_by_group.transpose(1, 0, 2).reshape(n, g * per_group)

    def forward(self, x):
        keyed = self._keyed_rng()
        if keyed is not None:              # units in the layer's own order: no group view
            self.keyed = True
            y, self.cache = F.dropout_forward(x, self.p, self.training, keyed)
            return y
        self.keyed = False
        if self.groups == 1:
            y, self.cache = F.dropout_forward(x, self.p, self.training, self.rng)
            return y
        y, self.cache = F.dropout_forward(self._by_group(x), self.p, self.training, self.rng)
        return self._back_from_groups(y)

    def backward(self, dy):
        if self.groups == 1 or self.keyed:
            return F.dropout_backward(dy, self.cache)
        return self._back_from_groups(F.dropout_backward(self._by_group(dy), self.cache))


class Sequential(Module):
    """Runs its layers in order; backward runs them in reverse. Parameters are exposed as
    ``"<index>.<name>"`` (``"0.weight"``), like PyTorch's ``nn.Sequential``."""

    def __init__(self, *layers):
        # No Module.__init__: params and grads are views of the layers' own dicts (below).
        self.layers = list(layers)
        self.training = True
        self.cache = None

    @property
    def params(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    def train(self, mode=True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy, input_grad=True):
        """dy -> d(input), through the layers in reverse. ``input_grad=False`` asks the first
        layer (a ``Conv2d``) to skip d(input) and returns None."""
        for layer in reversed(self.layers[1:]):
            dy = layer.backward(dy)
        first = self.layers[0]
        return first.backward(dy) if input_grad else first.backward(dy, input_grad=False)

    def __repr__(self):
        return "Sequential(\n" + "\n".join(f"  ({i}) {l!r}" for i, l in enumerate(self.layers)) + "\n)"
