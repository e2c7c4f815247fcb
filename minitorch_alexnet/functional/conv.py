"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col.

Forward, for group g with Fg = F/groups filters and Cg = C/groups input channels::

    y[n, f, oh, ow] = b[f] + sum_{c in group(f), i, j} w[f, c', i, j] * x_pad[n, c, oh*s + i, ow*s + j]

where c' = c - g*Cg is the channel's index inside its group. With ``cols = im2col(x)`` of shape
(C*KH*KW, N*OH*OW) and the group's weights flattened to a (Fg, Cg*KH*KW) matrix ``W_g``::

    Y_g = W_g @ cols_g                     (Fg, N*OH*OW), then + b, then reshaped to NCHW

Backward: a matrix product ``Y = W @ X`` has ``dW = dY @ X.T`` and ``dX = W.T @ dY``, so::

    dW_g    = dY_g @ cols_g.T              (Fg, Cg*KH*KW)  -> reshaped to (Fg, Cg, KH, KW)
    dcols_g = W_g.T @ dY_g                 (Cg*KH*KW, N*OH*OW)
    dx      = col2im(dcols)                each window's gradient summed back onto the input
    db[f]   = sum_{n, oh, ow} dy[n, f, oh, ow]

groups=2 is AlexNet's two columns on one device: filters 0..F/2-1 see only channels
0..C/2-1, the others only the second half.
"""
from ..backend import get_array_module
from ._checks import check_float_array, check_same_device, check_shape, output_size
from ._dispatch import matmul
from .im2col import col2im, im2col


def conv2d_forward(x, w, b, stride=1, pad=0, groups=1):
    """Convolve x (N, C, H, W) with w (F, C//groups, KH, KW) and add b (F,).

    Returns ``(y, cache)`` with y of shape (N, F, OH, OW), OH = (H + 2*pad - KH)//stride + 1.
    """
    check_float_array("x", x, ndim=4)
    check_float_array("w", w, ndim=4, dtype=x.dtype)
    check_float_array("b", b, ndim=1, dtype=x.dtype)
    check_same_device(x=x, w=w, b=b)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    n, c, h, width = x.shape
    f, c_per_group, kh, kw = w.shape
    if c % groups or f % groups:
        raise ValueError(
            f"groups={groups} must divide the input channels ({c}) and the filters ({f})"
        )
    check_shape("w", w, (f, c // groups, kh, kw))
    check_shape("b", b, (f,))
    oh, ow = output_size(h, kh, stride, pad), output_size(width, kw, stride, pad)
    xp = get_array_module(x)

    cols = im2col(x, kh, kw, stride, pad)                # (C*KH*KW, N*OH*OW)
    k = c_per_group * kh * kw                            # rows of cols that one group reads
    f_per_group = f // groups
    w_rows = w.reshape(groups, f_per_group, k)           # W_g, one (Fg, K) matrix per group
    cols_by_group = cols.reshape(groups, k, n * oh * ow)  # group g's channels = rows g*K..(g+1)*K-1
    y_rows = xp.empty((f, n * oh * ow), dtype=x.dtype)
    for g in range(groups):
        y_rows[g * f_per_group:(g + 1) * f_per_group] = matmul(w_rows[g], cols_by_group[g])
    y_rows += b[:, None]
    # (F, N*OH*OW) -> (F, N, OH, OW) -> (N, F, OH, OW)
    y = xp.ascontiguousarray(y_rows.reshape(f, n, oh, ow).transpose(1, 0, 2, 3))
    cache = (x.shape, cols, w, stride, pad, groups)
    return y, cache


def conv2d_backward(dy, cache):
    """Gradients of conv2d: dy (N, F, OH, OW) -> ``(dx, dw, db)`` shaped like x, w, b."""
    x_shape, cols, w, stride, pad, groups = cache
    n = x_shape[0]
    f, c_per_group, kh, kw = w.shape
    check_float_array("dy", dy, ndim=4, dtype=w.dtype)
    oh, ow = output_size(x_shape[2], kh, stride, pad), output_size(x_shape[3], kw, stride, pad)
    check_shape("dy", dy, (n, f, oh, ow))
    check_same_device(dy=dy, w=w)
    xp = get_array_module(dy)

    k = c_per_group * kh * kw
    f_per_group = f // groups
    # (N, F, OH, OW) -> (F, N, OH, OW) -> (F, N*OH*OW): the layout of Y in the forward pass.
    dy_rows = xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(f, n * oh * ow)
    w_rows = w.reshape(groups, f_per_group, k)
    cols_by_group = cols.reshape(groups, k, n * oh * ow)
    dw_rows = xp.empty((groups, f_per_group, k), dtype=w.dtype)
    dcols = xp.empty((groups, k, n * oh * ow), dtype=w.dtype)
    for g in range(groups):
        dy_g = dy_rows[g * f_per_group:(g + 1) * f_per_group]
        dw_rows[g] = matmul(dy_g, cols_by_group[g].T)    # dW_g = dY_g @ cols_g.T
        dcols[g] = matmul(w_rows[g].T, dy_g)             # dcols_g = W_g.T @ dY_g
    dx = col2im(dcols.reshape(groups * k, n * oh * ow), x_shape, kh, kw, stride, pad)
    db = dy_rows.sum(axis=1)
    return dx, dw_rows.reshape(w.shape), db
