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
"""
from ..backend import get_array_module, is_cuda
from ._checks import check_float_array, check_same_device, check_shape
from ._dispatch import cuda_ops


def channel_window_sum(a, before, after):
    """out[:, c] = sum_{j = c-before}^{c+after} a[:, j], channels outside 0..C-1 ignored.

    Computed with a running sum over the channel axis: pad the channels with zeros, take the
    cumulative sum, and subtract the running sum taken just before the window started.
    """
    xp = get_array_module(a)
    channels = a.shape[1]
    padded = xp.zeros((a.shape[0], channels + before + after + 1) + a.shape[2:], dtype=a.dtype)
    padded[:, before + 1:before + 1 + channels] = a       # one extra leading zero for the cumsum
    running = xp.cumsum(padded, axis=1)
    # window of channel c in padded coordinates: c+1 .. c+1+before+after
    return running[:, before + after + 1:] - running[:, :channels]


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Paper LRN over the channels of x (N, C, H, W). Returns ``(y, cache)``."""
    check_float_array("x", x, ndim=4)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if is_cuda(x):
        return cuda_ops().lrn_forward(x, size, alpha, beta, k)
    s = k + alpha * channel_window_sum(x * x, size // 2, (size - 1) // 2)
    y = x * s ** (-beta)
    return y, (x, s, size, alpha, beta)


def lrn_backward(dy, cache):
    """dy (N, C, H, W) -> dx, the formula in the module docstring."""
    check_float_array("dy", dy, ndim=4)
    if is_cuda(dy):
        return cuda_ops().lrn_backward(dy, cache)
    x, s, size, alpha, beta = cache
    check_float_array("dy", dy, dtype=x.dtype)
    check_same_device(dy=dy, x=x)
    check_shape("dy", dy, x.shape)
    s_pow = s ** (-beta)
    # t[j] = db[j] * a[j] * s[j]^(-beta-1), summed over the mirrored window of each channel c
    t = dy * x * s_pow / s
    spread = channel_window_sum(t, (size - 1) // 2, size // 2)
    return dy * s_pow - 2.0 * alpha * beta * x * spread
