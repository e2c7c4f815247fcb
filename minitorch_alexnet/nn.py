"""Modules: thin stateful wrappers over ``minitorch_alexnet.functional``.

A module holds its parameters in ``params`` and, after ``backward``, their gradients in
``grads`` (same names). ``forward`` keeps the cache that its ``backward`` needs; the math lives
in ``functional``. This is the "Deep Learning from Scratch" layer style::

    layer = Conv2d(3, 96, 11, stride=4, rng=rng)
    y = layer.forward(x)          # layer.cache = what backward needs
    dx = layer.backward(dy)       # fills layer.grads["weight"], layer.grads["bias"]
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

    def forward(self, x):
        y, self.cache = F.conv2d_forward(x, self.params["weight"], self.params["bias"],
                                         self.stride, self.pad, self.groups)
        return y

    def backward(self, dy):
        dx, self.grads["weight"], self.grads["bias"] = F.conv2d_backward(dy, self.cache)
        return dx


class Linear(Module):
    """Fully connected, weight (out, in), bias (out,); flattens (N, ...) inputs."""

    def __init__(self, in_features, out_features, weight_std=0.01, bias_value=0.0, rng=None,
                 dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.params["weight"] = (rng.standard_normal((out_features, in_features)) * weight_std).astype(dtype)
        self.params["bias"] = np.full(out_features, bias_value, dtype=dtype)

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
    """Local response normalization with the paper's constants by default (alpha not / size)."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        y, self.cache = F.lrn_forward(x, self.size, self.alpha, self.beta, self.k)
        return y

    def backward(self, dy):
        return F.lrn_backward(dy, self.cache)


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
    """Inverted dropout; ``p`` is the probability of zeroing. ``rng`` (a numpy Generator or a
    seed) draws the masks, one new mask per forward call."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = p
        self.rng = np.random.default_rng(rng)

    def forward(self, x):
        y, self.cache = F.dropout_forward(x, self.p, self.training, self.rng)
        return y

    def backward(self, dy):
        return F.dropout_backward(dy, self.cache)


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

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __repr__(self):
        return "Sequential(\n" + "\n".join(f"  ({i}) {l!r}" for i, l in enumerate(self.layers)) + "\n)"
