"""Naive loop implementations of every layer: the oracle the tests compare against.

One module for both halves of the package: the CPU layer functions (``tests/test_*.py`` of
each layer) and our CUDA kernels, compiled for the CPU (``test_kernels_emulated.py``) or run on
a GPU (``test_gpu.py``).

Written from the formulas alone, without importing ``minitorch_alexnet``, and as plainly as
possible: one Python loop per index of the formula, no im2col, no cumulative sums, no clever
slicing. They are slow (fine for the small shapes of the tests) and obviously right, which is
the point: if the fast code and this code agree on many random shapes, the fast code is right
too.

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


def conv2d_input_gradient(dy, w, x_shape, stride=1, pad=0, groups=1):
    """dx of ``conv2d``: every product w[f, c, i, j] * x_pad[n, g*Cg + c, r*stride + i,
    s*stride + j] of output (r, s) sends w[f, c, i, j] * dy[n, f, r, s] back to that input
    pixel; pixels of the padding are dropped at the end."""
    n_images, channels, h, width = x_shape
    filters, channels_per_group, kh, kw = w.shape
    filters_per_group = filters // groups
    dx_pad = np.zeros((n_images, channels, h + 2 * pad, width + 2 * pad), dtype=dy.dtype)
    for n in range(n_images):
        for f in range(filters):
            first = (f // filters_per_group) * channels_per_group
            for r in range(dy.shape[2]):
                for s in range(dy.shape[3]):
                    dx_pad[n, first:first + channels_per_group,
                           r * stride:r * stride + kh, s * stride:s * stride + kw] += w[f] * dy[n, f, r, s]
    return dx_pad[:, :, pad:pad + h, pad:pad + width]


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


def lrn_window(c, size, channels):
    """Channels j in the window of channel c: c - size//2 .. c + (size-1)//2, clipped."""
    return range(max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2) + 1)


def lrn(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """The paper's formula, alpha NOT divided by size:

    b[c] = a[c] / (k + alpha * sum_{j = max(0, c - size//2)}^{min(C-1, c + (size-1)//2)} a[j]^2) ** beta
    """
    channels = x.shape[1]
    y = np.empty_like(x)
    for c in range(channels):
        energy = np.zeros_like(x[:, c])
        for j in lrn_window(c, size, channels):
            energy += x[:, j] ** 2
        y[:, c] = x[:, c] / (k + alpha * energy) ** beta
    return y


def lrn_denominator(x, size, alpha, k):
    """s[n, c, h, w] = k + alpha * sum_{j in window(c)} x[n, j, h, w]^2, in float64."""
    x64 = x.astype(np.float64)
    n_images, channels, h, w = x.shape
    s = np.empty_like(x64)
    for n, c, r, q in itertools.product(range(n_images), range(channels), range(h), range(w)):
        s[n, c, r, q] = k + alpha * sum(x64[n, j, r, q] ** 2 for j in lrn_window(c, size, channels))
    return s


def lrn_backward(dy, x, size, alpha, beta, k):
    """dx[c] = sum_j dy[j] * d y[j] / d x[c], the Jacobian written out term by term, with
    d y[j] / d x[c] = [c == j] s[j]^-beta - 2 alpha beta x[j] x[c] s[j]^(-beta-1)."""
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    s = lrn_denominator(x64, size, alpha, k)
    n_images, channels, h, w = x.shape
    dx = np.zeros_like(x64)
    for n, r, q in itertools.product(range(n_images), range(h), range(w)):
        for j in range(channels):                              # output channel
            for c in lrn_window(j, size, channels):            # every input channel in its window
                d = -2.0 * alpha * beta * x64[n, j, r, q] * x64[n, c, r, q] * s[n, j, r, q] ** (-beta - 1)
                if c == j:
                    d += s[n, j, r, q] ** -beta
                dx[n, c, r, q] += dy64[n, j, r, q] * d
    return dx.astype(x.dtype)


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


def max_pool2d_argmax(x, size, stride, pad):
    """(y, argmax) with argmax the pixel h*W + w of each window's maximum in its (n, c)
    plane of the unpadded input: the form the GPU kernel records."""
    n_images, channels, h, w = x.shape
    oh, ow = output_size(h, size, stride, pad), output_size(w, size, stride, pad)
    x_pad = zero_pad(x, pad, value=-np.inf)
    y = np.empty((n_images, channels, oh, ow), dtype=x.dtype)
    argmax = np.empty((n_images, channels, oh, ow), dtype=np.int64)
    for n, c, r, s in itertools.product(range(n_images), range(channels), range(oh), range(ow)):
        row, col = _pool_argmax(x_pad, n, c, r * stride, s * stride, size)
        y[n, c, r, s] = x_pad[n, c, row, col]
        argmax[n, c, r, s] = (row - pad) * w + (col - pad)        # padded -> unpadded pixel
    return y, argmax


def scatter_to_argmax(dy, argmax, x_shape):
    """dx of max-pooling from the GPU's argmax: each window's dy added to its pixel."""
    n_images, channels, h, w = x_shape
    dx = np.zeros((n_images, channels, h * w), dtype=np.float64)
    for n, c, r, s in itertools.product(*(range(d) for d in dy.shape)):
        dx[n, c, argmax[n, c, r, s]] += dy[n, c, r, s]
    return dx.reshape(x_shape).astype(dy.dtype)


def softmax_cross_entropy(logits, labels, smoothing=0.0):
    """Mean over rows of -sum_k q[k] log p[k], and its gradient (softmax(z) - q) / N, with the
    target q[k] = (1 - smoothing) [k == t] + smoothing / K (onehot(t) without smoothing).

    log p[k] = z[k] - logsumexp(z), logsumexp(z) = m + log(sum_k exp(z[k] - m)), m = max(z).
    """
    n_rows, n_classes = logits.shape
    loss = 0.0
    dlogits = np.zeros(logits.shape, dtype=np.float64)
    for n in range(n_rows):
        row = [float(v) for v in logits[n]]
        m = max(row)
        log_sum_exp = m + math.log(sum(math.exp(v - m) for v in row))
        for k in range(n_classes):
            target = (1.0 - smoothing) * (k == labels[n]) + smoothing / n_classes
            loss -= target * (row[k] - log_sum_exp)
            dlogits[n, k] = math.exp(row[k] - log_sum_exp) - target
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


def col2im(cols, x_shape, kh, kw, stride, pad):
    """The adjoint of im2col in scatter form: add every cols entry to the pixel it was read from."""
    n_images, channels, h, w = x_shape
    oh, ow = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    dx = np.zeros((n_images, channels, h + 2 * pad, w + 2 * pad), dtype=np.float64)
    for n, c, i, j, r, s in itertools.product(
        range(n_images), range(channels), range(kh), range(kw), range(oh), range(ow)
    ):
        dx[n, c, r * stride + i, s * stride + j] += cols[(c * kh + i) * kw + j, (n * oh + r) * ow + s]
    return dx[:, :, pad:pad + h, pad:pad + w].astype(cols.dtype)


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


def bias_grad(dy):
    """db[f] = sum of dy (N, F, ...) over every axis but 1, in float64."""
    axes = tuple(a for a in range(dy.ndim) if a != 1)
    return dy.astype(np.float64).sum(axis=axes)


def distinct_values(shape, dtype, rng):
    """A shuffled evenly spaced grid: no ties, so a max-pool argmax is unambiguous."""
    size = int(np.prod(shape))
    values = np.linspace(-1.0, 1.0, size) if size > 1 else np.zeros(1)
    return rng.permutation(values).reshape(shape).astype(dtype)


# Tolerances for "the fast code equals the reference": relative to the largest entry, like
# gradcheck.relative_error, so that entries near zero (sums that cancel) do not fail.
TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def assert_close(actual, expected, dtype=None, scale_at_least=1e-30):
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
