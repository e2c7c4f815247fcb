"""The layer math of AlexNet as pure functions: ``*_forward(...) -> (y, cache)`` and
``*_backward(dy, cache) -> gradients``.

Arrays are NCHW; weights use PyTorch's layouts. Every function keeps the input dtype (float32
or float64), never writes into its arguments, raises a ``ValueError`` naming the argument for a
wrong shape or dtype, and runs our CUDA kernels when given CuPy arrays.

A cache is what the backward pass needs and nothing more: a named tuple per layer
(``minitorch_alexnet/caches.py``: ConvCache, LinearCache, LRNCache, PoolCache, DropoutCache;
ReLU's and tanh's cache is y itself), the same class with the same fields on the CPU and the
GPU. A few fields hold another form on each device, as each class's docstring says: max-pool's
``argmax`` is the flat index of the maximum in the padded input on the CPU (one scatter-add in
backward) and the pixel h*W + w of its plane on the GPU (a gather kernel needs that); LRN's
CPU cache fills ``s_pow`` = s^(-beta) and its GPU cache ``y``; dropout's ``mask`` is
keep/(1-p) in x's dtype on the CPU and a 1-byte keep on the GPU. Hand a cache only to the
backward of the same device.

| function                                   | returns              | file         |
|--------------------------------------------|----------------------|--------------|
| conv2d_forward(x, w, b, stride, pad, groups)| (y, cache)          | conv.py      |
| conv2d_backward(dy, cache, input_grad)     | (dx, dw, db)         | conv.py      |
| add_bias(y, b) / bias_gradient(dy)         | y (in place) / db    | conv.py      |
| linear_forward(x, w, b)                    | (y, cache)           | linear.py    |
| linear_backward(dy, cache)                 | (dx, dw, db)         | linear.py    |
| relu_forward / relu_backward               | (y, cache) / dx      | activation.py|
| tanh_forward / tanh_backward               | (y, cache) / dx      | activation.py|
| lrn_forward(x, size, alpha, beta, k)       | (y, cache)           | lrn.py       |
| lrn_backward(dy, cache)                    | dx                   | lrn.py       |
| max_pool2d_forward(x, size, stride, pad)   | (y, cache)           | pooling.py   |
| max_pool2d_backward(dy, cache)             | dx                   | pooling.py   |
| dropout_forward(x, p, training, rng)       | (y, cache)           | dropout.py   |
| dropout_backward(dy, cache)                | dx                   | dropout.py   |
| softmax_cross_entropy(logits, labels)      | (loss, dlogits)      | loss.py      |
"""
from .activation import relu_backward, relu_forward, tanh_backward, tanh_forward
from .conv import add_bias, bias_gradient, conv2d_backward, conv2d_forward
from .dropout import KeyedUniforms, dropout_backward, dropout_forward
from .im2col import col2im, im2col
from .linear import linear_backward, linear_forward
from .loss import softmax, softmax_cross_entropy
from .lrn import lrn_backward, lrn_forward
from .pooling import max_pool2d_backward, max_pool2d_forward
from ..checks import output_size

__all__ = [
    "conv2d_forward", "conv2d_backward", "add_bias", "bias_gradient", "linear_forward", "linear_backward",
    "relu_forward", "relu_backward", "tanh_forward", "tanh_backward",
    "lrn_forward", "lrn_backward", "max_pool2d_forward", "max_pool2d_backward",
    "dropout_forward", "dropout_backward", "KeyedUniforms", "softmax_cross_entropy", "softmax",
    "im2col", "col2im", "output_size",
]
