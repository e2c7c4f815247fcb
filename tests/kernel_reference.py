"""Naive NumPy references for the CUDA kernels: plain loops written from the formulas.

Shared by tests/test_kernels_emulated.py (kernels on the CPU) and tests/test_gpu.py (kernels on
a GPU). Slow and obvious on purpose: only small shapes go through them.
"""
import itertools

import numpy as np


def output_size(size, window, stride, pad):
    return (size + 2 * pad - window) // stride + 1


def padded(x, pad, value):
    n, c, h, w = x.shape
    out = np.full((n, c, h + 2 * pad, w + 2 * pad), value, dtype=x.dtype)
    out[:, :, pad:pad + h, pad:pad + w] = x
    return out


def im2col(x, kh, kw, stride, pad):
    """cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*stride + i, ow*stride + j]."""
    N, C, H, W = x.shape
    OH, OW = output_size(H, kh, stride, pad), output_size(W, kw, stride, pad)
    xp = padded(x, pad, 0.0)
    cols = np.zeros((C * kh * kw, N * OH * OW), dtype=x.dtype)
    for n, c, i, j, oh, ow in itertools.product(range(N), range(C), range(kh), range(kw),
                                                range(OH), range(OW)):
        cols[(c * kh + i) * kw + j, (n * OH + oh) * OW + ow] = xp[n, c, oh * stride + i, ow * stride + j]
    return cols


def col2im(cols, x_shape, kh, kw, stride, pad):
    """Scatter form of the adjoint: add every cols entry to the pixel it was read from."""
    N, C, H, W = x_shape
    OH, OW = output_size(H, kh, stride, pad), output_size(W, kw, stride, pad)
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=np.float64)
    for n, c, i, j, oh, ow in itertools.product(range(N), range(C), range(kh), range(kw),
                                                range(OH), range(OW)):
        dx[n, c, oh * stride + i, ow * stride + j] += cols[(c * kh + i) * kw + j, (n * OH + oh) * OW + ow]
    return dx[:, :, pad:pad + H, pad:pad + W].astype(cols.dtype)


def max_pool(x, size, stride, pad):
    """(y, argmax): argmax = h*W + w of the first strict maximum in row-major window order."""
    N, C, H, W = x.shape
    OH, OW = output_size(H, size, stride, pad), output_size(W, size, stride, pad)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = np.empty((N, C, OH, OW), dtype=np.int64)
    for n, c, oh, ow in itertools.product(range(N), range(C), range(OH), range(OW)):
        best, where = -np.inf, -1
        for i, j in itertools.product(range(size), range(size)):
            h, w = oh * stride - pad + i, ow * stride - pad + j
            if 0 <= h < H and 0 <= w < W and (x[n, c, h, w] > best or where < 0):
                best, where = x[n, c, h, w], h * W + w
        y[n, c, oh, ow], argmax[n, c, oh, ow] = best, where
    return y, argmax


def max_pool_backward(dy, argmax, x_shape):
    """Scatter: each window's dy goes to its argmax."""
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W), dtype=np.float64)
    for n, c, oh, ow in itertools.product(*(range(s) for s in dy.shape)):
        dx[n, c, argmax[n, c, oh, ow]] += dy[n, c, oh, ow]
    return dx.reshape(x_shape).astype(dy.dtype)


def lrn_window(c, size, C):
    """Channels j in the window of channel c: c - size//2 .. c + (size-1)//2, clipped."""
    return range(max(0, c - size // 2), min(C - 1, c + (size - 1) // 2) + 1)


def lrn(x, size, alpha, beta, k):
    """(y, s): s[c] = k + alpha * sum_{j in window(c)} x[j]^2, y = x * s^-beta (alpha not / size)."""
    x64 = x.astype(np.float64)
    N, C, H, W = x.shape
    s = np.empty_like(x64)
    for n, c, h, w in itertools.product(range(N), range(C), range(H), range(W)):
        s[n, c, h, w] = k + alpha * sum(x64[n, j, h, w] ** 2 for j in lrn_window(c, size, C))
    return (x64 * s ** -beta).astype(x.dtype), s


def lrn_backward(dy, x, size, alpha, beta, k):
    """dx[c] = sum_j dy[j] * d y[j] / d x[c], the Jacobian written out term by term."""
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    _, s = lrn(x64, size, alpha, beta, k)
    N, C, H, W = x.shape
    dx = np.zeros_like(x64)
    for n, h, w in itertools.product(range(N), range(H), range(W)):
        for j in range(C):                       # output channel
            for c in lrn_window(j, size, C):     # every input channel in its window
                d = -2.0 * alpha * beta * x64[n, j, h, w] * x64[n, c, h, w] * s[n, j, h, w] ** (-beta - 1)
                if c == j:
                    d += s[n, j, h, w] ** -beta
                dx[n, c, h, w] += dy64[n, j, h, w] * d
    return dx.astype(x.dtype)


def softmax_cross_entropy(logits, labels):
    """(mean loss, dlogits) in float64, row by row."""
    z = logits.astype(np.float64)
    N, C = z.shape
    loss, grad = 0.0, np.zeros_like(z)
    for n in range(N):
        m = z[n].max()
        lse = m + np.log(np.sum(np.exp(z[n] - m)))
        loss += lse - z[n, labels[n]]
        grad[n] = np.exp(z[n] - lse)
        grad[n, labels[n]] -= 1.0
    return loss / N, grad / N


def bias_grad(dy):
    """Sum over every axis but 1."""
    axes = tuple(a for a in range(dy.ndim) if a != 1)
    return dy.astype(np.float64).sum(axis=axes)


def distinct_values(shape, dtype, rng):
    """A shuffled evenly spaced grid: no ties, so a max-pool argmax is unambiguous."""
    size = int(np.prod(shape))
    values = np.linspace(-1.0, 1.0, size) if size > 1 else np.zeros(1)
    return rng.permutation(values).reshape(shape).astype(dtype)


def assert_close(actual, expected, dtype):
    """Relative to the largest entry: 1e-5 for float32, 1e-12 for float64."""
    tolerance = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.max(np.abs(expected), initial=0.0), 1e-30)
    error = np.max(np.abs(actual - expected), initial=0.0) / scale
    assert error <= tolerance, f"max relative error {error:.3g} > {tolerance:g}"
