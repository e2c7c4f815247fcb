"""Inverted dropout (paper, section 4.2; used after fc6 and fc7 with p = 0.5).

``p`` is the probability of ZEROING a unit. When training::

    keep[i] ~ Bernoulli(1 - p),   y[i] = x[i] * keep[i] / (1 - p)

so E[y[i]] = x[i]: the expected activation is the same as at test time, where y = x. (The
paper instead multiplied by 1 - p at test time; the two are equivalent.)
Backward: dx = dy * keep / (1 - p) when training, dx = dy otherwise.

The mask is drawn from a NumPy ``Generator`` (or a seed for one) as
``rng.random(x.shape) >= p``, on the CPU also for CuPy inputs, so one seed gives one mask on
every device.

``rng`` may also be a ``KeyedUniforms``: then row n's numbers depend on the key of the image
in row n (for the trainer: which image of which epoch) and not on what else is in the batch.
That makes a mask independent of how a batch is cut, between two devices or between several
processes that each take a slice of it.
"""
import numpy as np

from ..backend import is_cuda
from ..caches import DropoutCache
from ..checks import check_float_array, check_upstream
from ._dispatch import cuda_ops


class KeyedUniforms:
    """Uniform numbers in [0, 1) for a batch, row by row, each row a function of its key only.

    Row n of a (N, units) draw is the slice ``[first_unit, first_unit + units)`` of

        default_rng([*seed, row_keys[n]]).random(total_units)

    ``seed`` is a tuple of non-negative ints (the model's seed and the layer); ``row_keys`` one
    non-negative int per row; ``total_units`` the layer's width on one device (default: the
    width of the draw). A column that holds units [first_unit, first_unit + units) of a layer
    therefore draws exactly the numbers the whole layer would draw for those units, and a
    process that holds rows 5..9 of a batch draws what one process holding all rows would.
    A generator per row costs about 20 microseconds, small beside a training step.
    """

    def __init__(self, seed, row_keys, first_unit=0, total_units=None):
        self.seed = tuple(int(s) for s in seed)
        self.row_keys = [int(k) for k in np.asarray(row_keys).reshape(-1)]
        if any(k < 0 for k in self.row_keys):
            raise ValueError("row_keys must be non-negative integers")
        self.first_unit, self.total_units = int(first_unit), total_units

    def random(self, shape):
        """A float64 array of ``shape`` (N, units), N = the number of row keys."""
        if len(shape) != 2 or shape[0] != len(self.row_keys):
            raise ValueError(f"keyed dropout draws (N, units) with N = {len(self.row_keys)} row "
                             f"keys, asked for shape {tuple(shape)}")
        units = shape[1]
        total = self.total_units or units
        last = self.first_unit + units
        if last > total:
            raise ValueError(f"units {self.first_unit}..{last} lie outside the layer's {total}")
        out = np.empty(shape)
        for n, key in enumerate(self.row_keys):
            out[n] = np.random.default_rng([*self.seed, key]).random(total)[self.first_unit:last]
        return out


def make_rng(rng):
    """A ``numpy.random.Generator`` from a Generator, an int seed or None (fresh entropy); a
    ``KeyedUniforms`` is returned as it is."""
    if isinstance(rng, (np.random.Generator, KeyedUniforms)):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy.random.Generator, KeyedUniforms, an int seed or None, got {type(rng).__name__}")


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
