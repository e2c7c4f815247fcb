"""Inverted dropout (paper, section 4.2; used after fc6 and fc7 with p = 0.5).

``p`` is the probability of ZEROING a unit. When training::

    keep[i] ~ Bernoulli(1 - p),   y[i] = x[i] * keep[i] / (1 - p)

so E[y[i]] = x[i]: the expected activation is the same as at test time, where y = x. (The
paper instead multiplied by 1 - p at test time; the two are equivalent.)
Backward: dx = dy * keep / (1 - p) when training, dx = dy otherwise.

The mask is drawn from a NumPy ``Generator`` (or a seed for one) as
``rng.random(x.shape) >= p``, on the CPU also for CuPy inputs, so one seed gives one mask on
every device.
"""
import numpy as np

from ..backend import is_cuda
from ..caches import DropoutCache
from ..checks import check_float_array, check_upstream
from ._dispatch import cuda_ops


def make_rng(rng):
    """A ``numpy.random.Generator`` from a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def dropout_forward(x, p=0.5, training=True, rng=None):
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity when not
    training). Returns ``(y, cache)``, a ``DropoutCache`` whose mask is keep/(1-p) in x's
    dtype (None for the identity)."""
    check_float_array("x", x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p (the probability of zeroing) must be in [0, 1], got {p}")
    if is_cuda(x):
        return cuda_ops().dropout_forward(x, p, training, rng)
    if not training or p == 0.0:
        return x.copy(), DropoutCache(mask=None, scale=1.0)
    keep = make_rng(rng).random(x.shape) >= p
    # p == 1 zeroes everything; 1/(1-p) would be infinite, and 0 * inf is nan.
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    scaled_mask = keep.astype(x.dtype) * x.dtype.type(scale)
    return x * scaled_mask, DropoutCache(mask=scaled_mask, scale=scale)


def dropout_backward(dy, cache):
    """dx = dy * keep / (1 - p), or dy when the forward pass was not training."""
    check_float_array("dy", dy)
    if is_cuda(dy):
        return cuda_ops().dropout_backward(dy, cache)
    scaled_mask = cache.mask                     # keep / (1 - p), in x's dtype
    if scaled_mask is None:
        return dy.copy()
    check_upstream(dy, scaled_mask.shape, scaled_mask.dtype, like=scaled_mask)
    return dy * scaled_mask
