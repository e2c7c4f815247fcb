"""What each layer's forward pass keeps for its backward pass: one named tuple per layer.

``functional`` (the CPU) and ``cuda.host`` (our kernels, on the GPU or in the emulation)
build the SAME class with the SAME field names, so ``cache.argmax`` or ``cache.x`` means one
thing whichever device ran the layer. Where a field holds something different on the GPU,
because a kernel needs another form than NumPy does, its comment says so. A cache is only ever
handed to the backward pass of the device that made it.

Shapes: x (N, C, H, W) is the layer's input, y (N, C, OH, OW) its output. ReLU's and tanh's
caches are not here: each is the output array y itself (y > 0 exactly where x > 0, and tanh's
derivative is 1 - y^2).

This module imports nothing of the package, so both sides can import it.
"""
from typing import NamedTuple, Optional

import numpy as np


class ConvCache(NamedTuple):
    """conv2d (functional/conv.py); the same on both devices.

    x:      (N, C, H, W) the input, not copied (change it in place only after backward)
    w:      (F, C/groups, KH, KW) the weights
    stride, pad, groups: the layer's settings
    cols:   the unfolded input of every (chunk of images, group), in that order, each
            (C/groups*KH*KW, images*OH*OW); None when they were too big to keep, and backward
            unfolds x again (the CPU only: the GPU always keeps them)
    """
    x: object
    w: object
    stride: int
    pad: int
    groups: int
    cols: Optional[list]


class LinearCache(NamedTuple):
    """linear (functional/linear.py); the same on both devices.

    x_shape: x's shape, (N, in) or (N, ...), to give dx the same shape
    x2:      (N, in) x seen as a matrix (a view of x when x is contiguous)
    w:       (out, in) the weights
    """
    x_shape: tuple
    x2: object
    w: object


class LRNCache(NamedTuple):
    """Local response normalization (functional/lrn.py, kernels/lrn.cu); arrays shaped like x.

    x:      the input a
    s:      k + alpha * (sum of a^2 over the channel window), the denominator before the power
    s_pow:  s^(-beta): CPU only (backward reuses it instead of a second power); None on the GPU
    y:      the output b = a * s^(-beta): GPU only (the backward kernel reads b/s for the
            cross-channel term); None on the CPU
    size, alpha, beta: the layer's constants
    """
    x: object
    s: object
    s_pow: Optional[object]
    y: Optional[object]
    size: int
    alpha: float
    beta: float


class PoolCache(NamedTuple):
    """Max-pooling (functional/pooling.py, kernels/pool.cu).

    x_shape: (N, C, H, W), the shape of the input (dx has it)
    argmax:  (N, C, OH, OW), where each window's maximum was, in a form that depends on the
             device:
             CPU: the flat index into the PADDED input x_pad seen as one 1-d array,
                  ((n*C + c)*H_pad + h_pad)*W_pad + w_pad (dtype intp), so backward is a
                  single scatter-add ``dx_pad.flat[argmax] += dy``;
             GPU: the pixel h*W + w inside its own (n, c) plane of the UNPADDED input (int32),
                  which the gather kernel compares with its own pixel
    size, stride, pad: the layer's settings
    dtype:   x's dtype (dy must have it)
    """
    x_shape: tuple
    argmax: object
    size: int
    stride: int
    pad: int
    dtype: np.dtype


class DropoutCache(NamedTuple):
    """Inverted dropout (functional/dropout.py, kernels/elementwise.cu).

    mask:  shaped like x, or None when the forward pass was the identity (not training, or
           p = 0); backward then passes dy through unchanged. Its form depends on the device:
           CPU: keep / (1 - p) in x's dtype, so backward is one product dy * mask;
           GPU: keep as uint8 (one byte per element), the kernel multiplies by ``scale``
    scale: 1 / (1 - p), the factor of a kept unit (0 when p = 1: everything is dropped);
           1.0 when the forward pass was the identity
    """
    mask: Optional[object]
    scale: float
