"""Local response normalization across channels (paper, section 3.3).

For each image n and pixel (y, x), channel c is divided by a power of the energy of its
neighbouring channels::

    s[c] = k + alpha * sum_{j = c - size//2}^{c + (size-1)//2} a[j]^2     (j clipped to 0..C-1)
    b[c] = a[c] * s[c]^(-beta)

with the paper's constants size = 5, alpha = 1e-4, beta = 0.75, k = 2. For odd ``size`` the
window is symmetric, c-2 .. c+2 for size 5, exactly the paper's formula.

Convention: alpha here is used as written in the paper. PyTorch's ``nn.LocalResponseNorm``
and Caffe's LRN layer divide alpha by ``size`` (they compute k + alpha/size * sum), so
``lrn_forward(x, size, alpha=A)`` equals ``torch.nn.LocalResponseNorm(size, alpha=A*size,
beta, k)``; to reproduce the paper in PyTorch pass alpha = 5e-4.

Backward. b[c] depends on a[c] directly and, through s[j], on every a[c] inside the window of
channel j. With ds[j]/da[c] = 2*alpha*a[c] when c is in window(j)::

    da[c] = db[c] * s[c]^(-beta)
            - 2*alpha*beta * a[c] * sum_{j : c in window(j)} db[j] * a[j] * s[j]^(-beta-1)

c lies in window(j) = [j - size//2, j + (size-1)//2] exactly when
j lies in [c - (size-1)//2, c + size//2]: the mirrored window (the same one for odd size).

How the CPU computes it (equal to the formulas above, only faster)
------------------------------------------------------------------
- The images are processed a block at a time (``_parallel``): the dozen passes each formula
  makes over its arrays then stay in the processor's cache, and the blocks run on all cores.
- For the paper's beta = 3/4, s^(-3/4) = 1 / (sqrt(s) * sqrt(sqrt(s))): two square roots, a
  product and a reciprocal, which the processor does many times faster than a general power
  (exp(-beta * log s)). Other betas use the power.
- The forward pass keeps s^(-beta) in the cache, so backward does not compute it again.
- The steps write in place (``out=``, ``*=``) into y, s, s_pow and dx, made once for the
  whole batch; the only temporaries (a^2, s^(1/4), and t and its window sum in backward) are
  the size of one block.
"""
import numpy as np

from ..backend import get_array_module, is_cuda
from ..caches import LRNCache
from ..checks import check_float_array, check_same_device, check_shape
from ._dispatch import cuda_ops
from ._parallel import blocks_of_planes, run_blocks


def channel_window_sum(a, before, after, out=None):
    """out[:, c] = sum_{j = c-before}^{c+after} a[:, j], channels outside 0..C-1 ignored.

    Start from a copy of a (j = c) and add each neighbour channel by shifting along the channel
    axis: the neighbour d channels below c is ``a[:, c-d]``, so ``out[:, d:] += a[:, :-d]``
    adds it to every channel c >= d that has one; likewise above. size - 1 additions in all,
    each of whole arrays (faster and more accurate in float32 than a running sum).
    """
    xp = get_array_module(a)
    if out is None:
        out = xp.array(a, copy=True)
    else:
        out[...] = a
    for d in range(1, before + 1):
        out[:, d:] += a[:, :-d]          # channel c - d, for c = d .. C-1
    for d in range(1, after + 1):
        out[:, :-d] += a[:, d:]          # channel c + d, for c = 0 .. C-1-d
    return out


def inverse_power(s, beta, out):
    """out = s^(-beta); for beta = 3/4 as 1 / (sqrt(s) * sqrt(sqrt(s))), which is the same
    number (up to the last bit's rounding) and several times faster than the general power."""
    if beta == 0.75:
        np.sqrt(s, out=out)                    # s^(1/2)
        fourth_root = np.sqrt(out)             # s^(1/4)
        out *= fourth_root                     # s^(3/4)
        np.reciprocal(out, out=out)            # s^(-3/4)
    else:
        np.power(s, -beta, out=out)
    return out


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Paper LRN over the channels of x (N, C, H, W). Returns ``(y, cache)``."""
    check_float_array("x", x, ndim=4)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if is_cuda(x):
        return cuda_ops().lrn_forward(x, size, alpha, beta, k)
    y, s, s_pow = np.empty_like(x), np.empty_like(x), np.empty_like(x)

    def block(first, last):
        images = slice(first, last)
        # s = k + alpha * (sum of a^2 over the channel window)
        squares = np.multiply(x[images], x[images])
        channel_window_sum(squares, size // 2, (size - 1) // 2, out=s[images])
        s[images] *= alpha
        s[images] += k
        inverse_power(s[images], beta, out=s_pow[images])
        np.multiply(x[images], s_pow[images], out=y[images])        # b = a * s^(-beta)

    run_blocks(block, blocks_of_planes(x.shape[0], x[0].nbytes))
    return y, LRNCache(x=x, s=s, s_pow=s_pow, y=None, size=size, alpha=alpha, beta=beta)


def lrn_backward(dy, cache):
    """dy (N, C, H, W) -> dx, the formula in the module docstring."""
    check_float_array("dy", dy, ndim=4)
    if is_cuda(dy):
        return cuda_ops().lrn_backward(dy, cache)
    x, s, s_pow = cache.x, cache.s, cache.s_pow
    size, alpha, beta = cache.size, cache.alpha, cache.beta
    check_float_array("dy", dy, dtype=x.dtype)
    check_same_device(dy=dy, x=x)
    check_shape("dy", dy, x.shape)
    dx = np.empty_like(x)

    def block(first, last):
        images = slice(first, last)
        a, s_b, s_pow_b = x[images], s[images], s_pow[images]
        # t[j] = db[j] * a[j] * s[j]^(-beta-1), summed over the mirrored window of each channel c
        t = np.multiply(dy[images], a)
        t *= s_pow_b
        t /= s_b
        spread = channel_window_sum(t, (size - 1) // 2, size // 2)
        spread *= a
        spread *= 2.0 * alpha * beta
        np.multiply(dy[images], s_pow_b, out=dx[images])
        dx[images] -= spread        # da[c] = db[c] s[c]^-beta - 2 alpha beta a[c] spread[c]

    run_blocks(block, blocks_of_planes(x.shape[0], x[0].nbytes))
    return dx
