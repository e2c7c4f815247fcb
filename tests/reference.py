"""Naive loop implementations of every layer: the oracle the tests compare against.

Written from the formulas alone, without importing ``minitorch_alexnet.functional``, and as
plainly as possible: one Python loop per index of the formula, no im2col, no cumulative sums,
no clever slicing. They are slow (fine for the small shapes of the tests) and obviously right,
which is the point: if the fast code and this code agree on many random shapes, the fast code
is right too.

All arrays are NCHW NumPy arrays; weights use PyTorch's layouts.
"""
import itertools
import math

import numpy as np


def output_size(size, kernel, stride, pad):
    """Number of window positions o with o*stride + kernel <= size + 2*pad."""
    return (size + 2 * pad - kernel) // stride + 1


def zero_pad(x, pad, value=0.0):
    """x (N, C, H, W) surrounded by ``pad`` rows and columns of ``value``."""
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * pad, w + 2 * pad), value, dtype=x.dtype)
    padded[:, :, pad:pad + h, pad:pad + w] = x
    return padded


def conv2d(x, w, b, stride=1, pad=0, groups=1):
    """y[n, f, oh, ow] = b[f] + sum over the group's channels c and offsets (i, j) of
    w[f, c, i, j] * x_pad[n, g*Cg + c, oh*stride + i, ow*stride + j].

    Filter f belongs to group g = f // (F/groups) and sees only input channels
    g*Cg .. (g+1)*Cg - 1 (Cg = C/groups); groups=2 is AlexNet's two columns."""
    n_images, channels, h, width = x.shape
    filters, channels_per_group, kh, kw = w.shape
    filters_per_group = filters // groups
    oh, ow = output_size(h, kh, stride, pad), output_size(width, kw, stride, pad)
    x_pad = zero_pad(x, pad)
    y = np.zeros((n_images, filters, oh, ow), dtype=x.dtype)
    for n in range(n_images):
        for f in range(filters):
            g = f // filters_per_group
            first = g * channels_per_group              # the group's first input channel
            for r in range(oh):
                for s in range(ow):
                    # the (Cg, KH, KW) window of the group's channels under output (r, s)
                    window = x_pad[n, first:first + channels_per_group,
                                   r * stride:r * stride + kh, s * stride:s * stride + kw]
                    y[n, f, r, s] = b[f] + np.sum(w[f] * window)
    return y


def linear(x, w, b):
    """y[n, o] = b[o] + sum_i x[n, i] * w[o, i], with x flattened to (N, in)."""
    x = x.reshape(x.shape[0], -1)
    y = np.zeros((x.shape[0], w.shape[0]), dtype=x.dtype)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            y[n, o] = b[o] + sum(x[n, i] * w[o, i] for i in range(w.shape[1]))
    return y


def relu(x):
    """max(0, v) for every element."""
    return np.array([max(0.0, v) for v in x.ravel().tolist()], dtype=x.dtype).reshape(x.shape)


def tanh(x):
    """math.tanh of every element."""
    return np.array([math.tanh(v) for v in x.ravel().tolist()], dtype=x.dtype).reshape(x.shape)


def lrn(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """The paper's formula, alpha NOT divided by size:

    b[c] = a[c] / (k + alpha * sum_{j = max(0, c - size//2)}^{min(C-1, c + (size-1)//2)} a[j]^2) ** beta
    """
    channels = x.shape[1]
    y = np.empty_like(x)
    for c in range(channels):
        first, last = max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2)
        energy = np.zeros_like(x[:, c])
        for j in range(first, last + 1):
            energy += x[:, j] ** 2
        y[:, c] = x[:, c] / (k + alpha * energy) ** beta
    return y


def _pool_argmax(x_pad, n, c, top, left, size):
    """Position (row, col) in x_pad of the largest entry of one window; the first in
    row-major order wins a tie, because only a strictly larger value replaces the best."""
    best, where = -np.inf, (top, left)
    for i in range(size):
        for j in range(size):
            if x_pad[n, c, top + i, left + j] > best:
                best, where = x_pad[n, c, top + i, left + j], (top + i, left + j)
    return where


def max_pool2d(x, size=3, stride=2, pad=0):
    """y[n, c, oh, ow] = max of the size x size window at (oh*stride, ow*stride) of the
    input padded with -inf (padding can never be the maximum)."""
    n_images, channels, h, w = x.shape
    oh, ow = output_size(h, size, stride, pad), output_size(w, size, stride, pad)
    x_pad = zero_pad(x, pad, value=-np.inf)
    y = np.empty((n_images, channels, oh, ow), dtype=x.dtype)
    for n, c, r, s in itertools.product(range(n_images), range(channels), range(oh), range(ow)):
        row, col = _pool_argmax(x_pad, n, c, r * stride, s * stride, size)
        y[n, c, r, s] = x_pad[n, c, row, col]
    return y


def max_pool2d_backward(dy, x, size=3, stride=2, pad=0):
    """Each window's gradient dy[n, c, oh, ow] is added to its argmax (first max on ties)."""
    n_images, channels, h, w = x.shape
    x_pad = zero_pad(x, pad, value=-np.inf)
    dx_pad = np.zeros(x_pad.shape, dtype=dy.dtype)
    for n, c, r, s in itertools.product(*(range(d) for d in dy.shape)):
        row, col = _pool_argmax(x_pad, n, c, r * stride, s * stride, size)
        dx_pad[n, c, row, col] += dy[n, c, r, s]
    return dx_pad[:, :, pad:pad + h, pad:pad + w]


def softmax_cross_entropy(logits, labels):
    """Mean over rows of logsumexp(z) - z[t], and its gradient (softmax(z) - onehot(t)) / N.

    logsumexp(z) = m + log(sum_k exp(z[k] - m)) with m = max(z): no exponent is positive.
    """
    n_rows, n_classes = logits.shape
    loss = 0.0
    dlogits = np.zeros(logits.shape, dtype=np.float64)
    for n in range(n_rows):
        row = [float(v) for v in logits[n]]
        m = max(row)
        log_sum_exp = m + math.log(sum(math.exp(v - m) for v in row))
        loss += log_sum_exp - row[labels[n]]
        for k in range(n_classes):
            dlogits[n, k] = math.exp(row[k] - log_sum_exp) - (1.0 if k == labels[n] else 0.0)
    return loss / n_rows, dlogits / n_rows


def im2col(x, kh, kw, stride, pad):
    """cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*stride + i, ow*stride + j]."""
    n_images, channels, h, w = x.shape
    oh, ow = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    x_pad = zero_pad(x, pad)
    cols = np.zeros((channels * kh * kw, n_images * oh * ow), dtype=x.dtype)
    for n, c, i, j, r, s in itertools.product(
        range(n_images), range(channels), range(kh), range(kw), range(oh), range(ow)
    ):
        cols[(c * kh + i) * kw + j, (n * oh + r) * ow + s] = x_pad[n, c, r * stride + i, s * stride + j]
    return cols


def im2row(x, kh, kw, stride, pad):
    """rows[(n*OH + oh)*OW + ow, (i*KW + j)*C + c] = x_pad[n, c, oh*stride + i, ow*stride + j]."""
    n_images, channels, h, w = x.shape
    oh, ow = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    x_pad = zero_pad(x, pad)
    rows = np.zeros((n_images * oh * ow, kh * kw * channels), dtype=x.dtype)
    for n, c, i, j, r, s in itertools.product(
        range(n_images), range(channels), range(kh), range(kw), range(oh), range(ow)
    ):
        rows[(n * oh + r) * ow + s, (i * kw + j) * channels + c] = x_pad[n, c, r * stride + i, s * stride + j]
    return rows


# Tolerances for "the fast code equals the reference": relative to the largest entry, like
# gradcheck.relative_error, so that entries near zero (sums that cancel) do not fail.
TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def assert_matches(actual, expected, dtype=None, scale_at_least=1e-30):
    """max|actual - expected| <= tol * max(max|expected|, scale_at_least), tol from the dtype
    of ``actual``. ``scale_at_least`` makes the test absolute for values near zero (a loss of
    1e-16 is as good as 0)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape}, reference {expected.shape}"
    tol = TOLERANCE[np.dtype(dtype or actual.dtype)]
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    scale = max(np.max(np.abs(e), initial=0.0), scale_at_least)
    error = np.max(np.abs(a - e), initial=0.0) / scale
    assert error <= tol, f"max relative error {error:.3g} > {tol:g}"


def assert_gradients_pass(results, tolerance=1e-6):
    """``results`` from ``gradcheck.check_layer``: every relative error below ``tolerance``."""
    for name, (error, method) in results.items():
        assert error < tolerance, f"d{name}: relative error {error:.3g} ({method}) >= {tolerance:g}"
