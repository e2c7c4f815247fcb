"""Fully connected layer: y = x @ w.T + b (w in PyTorch's (out, in) layout).

x may be (N, in) or (N, ...) with prod(...) == in (a conv output is flattened in C, H, W
order, as ``torch.flatten(x, 1)`` does). Backward, with x2 the (N, in) view of x::

    dx2 = dy @ w          (N, in), reshaped back to x's shape
    dw  = dy.T @ x2       (out, in)
    db  = sum_n dy[n]     (out,)
"""
from ..caches import LinearCache
from ..checks import check_float_array, check_same_device, check_shape
from ._dispatch import matmul


def linear_forward(x, w, b):
    """x (N, in) or (N, ...), w (out, in), b (out,) -> ``(y, cache)``, y (N, out)."""
    check_float_array("x", x)
    check_float_array("w", w, ndim=2, dtype=x.dtype)
    check_float_array("b", b, ndim=1, dtype=x.dtype)
    check_same_device(x=x, w=w, b=b)
    if x.ndim < 2:
        raise ValueError(f"x must be (N, in) or (N, ...), got shape {tuple(x.shape)}")
    n = x.shape[0]
    x2 = x.reshape(n, -1)
    n_out, n_in = w.shape
    if x2.shape[1] != n_in:
        raise ValueError(
            f"x has {x2.shape[1]} features per sample (shape {tuple(x.shape)}) "
            f"but w expects {n_in} (w shape {tuple(w.shape)})"
        )
    check_shape("b", b, (n_out,))
    y = matmul(x2, w.T) + b
    return y, LinearCache(x_shape=x.shape, x2=x2, w=w)


def linear_backward(dy, cache):
    """dy (N, out) -> ``(dx, dw, db)``, dx in x's original shape."""
    x_shape, x2, w = cache.x_shape, cache.x2, cache.w
    check_float_array("dy", dy, ndim=2, dtype=w.dtype)
    check_shape("dy", dy, (x_shape[0], w.shape[0]))
    check_same_device(dy=dy, w=w)
    dx = matmul(dy, w).reshape(x_shape)
    dw = matmul(dy.T, x2)
    db = dy.sum(axis=0)
    return dx, dw, db
