"""Max-pooling, overlapping when stride < size (AlexNet: size 3, stride 2; section 3.4).

Forward: y[n, c, oh, ow] = max_{i, j < size} x_pad[n, c, oh*stride + i, ow*stride + j], where
padding is -inf so that it is never chosen. OH = (H + 2*pad - size)//stride + 1.

Backward: the maximum is the only input of a window that affects its output, so the window's
gradient goes to it alone; an input that is the maximum of several overlapping windows
receives the sum of their gradients.

Ties: when several inputs of a window share the maximum, the FIRST in row-major window order
(smallest i, then smallest j) takes the whole gradient. The CUDA kernel uses the same rule.

The CPU code loops over the size*size window offsets (i, j), never over pixels: for one offset
the candidates x_pad[:, :, i + stride*oh, j + stride*ow] form one strided slice.
"""
import numpy as np

from ..backend import is_cuda
from ._checks import check_float_array, check_upstream, output_size
from ._dispatch import cuda_ops


def _window_slice(offset, stride, count):
    """Rows (or columns) read at window offset ``offset`` by outputs 0..count-1."""
    return slice(offset, offset + stride * count, stride)


def max_pool2d_forward(x, size=3, stride=2, pad=0):
    """x (N, C, H, W) -> ``(y, cache)``, y (N, C, OH, OW); the cache records the argmax."""
    check_float_array("x", x, ndim=4)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if pad > size // 2:
        raise ValueError(f"pad must be at most size//2 = {size // 2} (a window of padding only "
                         f"has no maximum), got pad={pad}")
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, size, stride, pad), output_size(w, size, stride, pad)  # OH, OW
    if is_cuda(x):
        return cuda_ops().max_pool2d_forward(x, size, stride, pad)
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf) if pad else x
    best = np.full((n, c, out_h, out_w), -np.inf, dtype=x.dtype)
    best_offset = np.zeros((n, c, out_h, out_w), dtype=np.int32)   # i*size + j of the maximum
    better = np.empty((n, c, out_h, out_w), dtype=bool)
    for i in range(size):
        for j in range(size):
            rows, columns = _window_slice(i, stride, out_h), _window_slice(j, stride, out_w)
            candidate = x_padded[:, :, rows, columns]
            np.greater(candidate, best, out=better)   # strict: an equal later value does not win
            np.copyto(best, candidate, where=better)
            np.copyto(best_offset, i * size + j, where=better)
    return best, (x.shape, best_offset, size, stride, pad, x.dtype)


def max_pool2d_backward(dy, cache):
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each window's gradient goes to its argmax."""
    check_float_array("dy", dy, ndim=4)
    if is_cuda(dy):
        return cuda_ops().max_pool2d_backward(dy, cache)
    x_shape, best_offset, size, stride, pad, dtype = cache
    check_upstream(dy, best_offset.shape, dtype, like=best_offset)
    n, c, h, w = x_shape
    out_h, out_w = best_offset.shape[2:]
    dx_padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dy.dtype)
    routed = np.empty_like(dy)
    for i in range(size):
        for j in range(size):
            # dy where offset (i, j) was the window's maximum, 0 elsewhere
            routed.fill(0)
            np.copyto(routed, dy, where=best_offset == i * size + j)
            dx_padded[:, :, _window_slice(i, stride, out_h), _window_slice(j, stride, out_w)] += routed
    if pad:
        return np.ascontiguousarray(dx_padded[:, :, pad:pad + h, pad:pad + w])
    return dx_padded
