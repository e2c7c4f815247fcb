"""Lesson 1's exercises: im2col / col2im, and the convolution forward and backward.

The right answers come from ``minitorch_alexnet.functional`` (itself tested against naive
loops in tests/reference.py); the known wrong answers are that code run on changed inputs:
the kernel flipped (a true convolution instead of the cross-correlation), dw with its kernel
axes transposed or rotated, rows of cols in (i, j, c) order, and so on.
"""
import numpy as np

from .. import functional as F
from ..checks import output_size
from .compare import Mismatch, call, differs, expect, shape_text, unpack, TOLERANCE
from .gradients import check_backward

AXES = ("n", "c", "h", "w")


def unfold_cases(rng):
    """(x shape, kh, kw, stride, pad): fixed ones (non-square kernels and images, padding,
    stride > 1), then three random small ones."""
    cases = [((2, 3, 5, 6), 3, 2, 1, 1), ((1, 2, 7, 7), 3, 3, 2, 0), ((2, 2, 6, 5), 2, 3, 2, 1),
             ((1, 1, 4, 4), 1, 1, 1, 0)]
    while len(cases) < 7:
        h, w = rng.integers(3, 9, size=2)
        kh, kw = rng.integers(1, 4, size=2)
        stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
        if h + 2 * pad >= kh and w + 2 * pad >= kw:
            cases.append(((int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(h), int(w)),
                          int(kh), int(kw), stride, pad))
    return cases


def check_im2col(module):
    rng = np.random.default_rng(0)
    for number, (shape, kh, kw, stride, pad) in enumerate(unfold_cases(rng)):
        dtype = np.float32 if number == 1 else np.float64
        x = rng.standard_normal(shape).astype(dtype)
        case = shape_text(x=x) + f", kh {kh}, kw {kw}, stride {stride}, pad {pad}, {np.dtype(dtype)}"
        want = F.im2col(x, kh, kw, stride, pad)
        c = shape[1]
        by_ijc = want.reshape(c, kh, kw, -1).transpose(1, 2, 0, 3).reshape(want.shape)
        got = call(module, "im2col", x, kh, kw, stride, pad)
        expect("im2col", [("cols", got, want, dict(dtype=dtype, variants=[
            ("equals the right cols with the rows ordered (i, j, c); row r = (c*KH + i)*KW + j",
             by_ijc)]))], case)
        cols = rng.standard_normal(want.shape).astype(dtype)
        want_dx = F.col2im(cols, shape, kh, kw, stride, pad)
        got_dx = call(module, "col2im", cols, shape, kh, kw, stride, pad)
        _overlap_hint(got_dx, want_dx, shape, kh, kw, stride, pad, dtype, case)
        expect("col2im", [("dx", got_dx, want_dx, dict(dtype=dtype, axes=AXES))], case)


def _overlap_hint(got, want, shape, kh, kw, stride, pad, dtype, case):
    """A col2im that writes (=) instead of adding (+=) is wrong only where windows overlap."""
    got = np.asarray(got, dtype=np.float64) if got is not None else None
    if got is None or got.shape != want.shape:
        return
    tol = TOLERANCE[np.dtype(dtype)]
    bad = differs(got, want.astype(np.float64), tol)
    out_h, out_w = output_size(shape[2], kh, stride, pad), output_size(shape[3], kw, stride, pad)
    coverage = F.col2im(np.ones((shape[1] * kh * kw, shape[0] * out_h * out_w)), shape, kh, kw,
                        stride, pad)
    if bad.any() and not bad[coverage < 2].any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Mismatch(f"col2im: dx wrong only at pixels covered by several windows, e.g. dx"
                       f"{list(index)} (in {int(coverage[index])} windows): overlapping windows "
                       f"must add up (+=), not overwrite [{case}]")


def conv_cases(rng):
    """(x shape, w shape, stride, pad, groups): AlexNet-like configurations, small."""
    cases = [((2, 3, 6, 6), (4, 3, 3, 3), 1, 1, 1), ((1, 3, 11, 11), (4, 3, 5, 5), 3, 0, 1),
             ((2, 4, 7, 7), (6, 2, 5, 5), 1, 2, 2), ((1, 4, 6, 5), (4, 2, 3, 3), 2, 1, 2),
             ((2, 2, 5, 7), (3, 2, 2, 3), 1, 0, 1)]
    for _ in range(2):
        groups = int(rng.integers(1, 3))
        c, f = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        k = int(rng.integers(1, 4))
        cases.append(((int(rng.integers(1, 3)), c, int(rng.integers(k, 8)), int(rng.integers(k, 8))),
                      (f, c // groups, k, k), int(rng.integers(1, 3)), int(rng.integers(0, 2)), groups))
    return cases


def _flipped(w):
    return np.ascontiguousarray(w[:, :, ::-1, ::-1])


def check_conv(module):
    rng = np.random.default_rng(1)
    for number, (x_shape, w_shape, stride, pad, groups) in enumerate(conv_cases(rng)):
        dtype = np.float32 if number == 2 else np.float64
        x = rng.standard_normal(x_shape).astype(dtype)
        w = (rng.standard_normal(w_shape) * 0.5).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        case = shape_text(x=x, w=w, b=b, stride=stride, pad=pad, groups=groups) + f", {np.dtype(dtype)}"
        options = dict(stride=stride, pad=pad, groups=groups)
        want, cache = F.conv2d_forward(x, w, b, **options)
        out = unpack("conv2d_forward", call(module, "conv2d_forward", x, w, b, **options), 2, "(y, cache)")
        expect("conv2d_forward", [("y", out[0], want, dict(dtype=dtype, axes=AXES, variants=[
            ("equals a true convolution (the kernel flipped); deep-learning 'convolution' is the "
             "cross-correlation, w[f, c, i, j] * x[.., oh*stride + i, ow*stride + j]",
             F.conv2d_forward(x, _flipped(w), b, **options)[0]),
            ("the bias b is missing", want - b.reshape(-1, 1, 1)),
            ("equals the answer with every group reading the FIRST group's channels: group g's "
             "filters see channels g*C/groups .. (g+1)*C/groups - 1",
             F.conv2d_forward(np.concatenate([x[:, :w_shape[1]]] * groups, axis=1), w, b, **options)[0]
             if groups > 1 else None),
        ]))], case)
        dy = rng.standard_normal(want.shape).astype(dtype)
        grads = unpack("conv2d_backward", call(module, "conv2d_backward", dy, out[1]), 3, "(dx, dw, db)")
        _expect_conv_grads(grads, dy, cache, x, w, b, dtype, case)
    _conv_centred_differences(module, rng)


def _expect_conv_grads(grads, dy, cache, x, w, b, dtype, case):
    dx, dw, db = F.conv2d_backward(dy, cache)
    unflipped = F.conv2d_backward(dy, cache._replace(w=_flipped(w), cols=None))[0]
    count = dy.shape[0] * dy.shape[2] * dy.shape[3]
    dw_variants = [
        ("equals the right dw with its kernel axes transposed: dw[f, c, j, i] instead of "
         "dw[f, c, i, j]", dw.swapaxes(2, 3) if dw.shape[2] == dw.shape[3] else None),
        ("equals the right dw rotated by 180 degrees (flipped kernel axes): dw[f, c, i, j] "
         "multiplies x[.., oh*stride + i, ow*stride + j], no flip", dw[:, :, ::-1, ::-1]),
        ("equals the right dw with filters and channels swapped (dw[c, f] instead of dw[f, c])",
         dw.swapaxes(0, 1) if dw.shape[0] == dw.shape[1] else None),
    ]
    expect("conv2d_backward", [
        ("dx", grads[0], dx, dict(dtype=dtype, axes=AXES, variants=[
            ("equals the right answer with the kernel not flipped: dx is the FULL convolution "
             "of dy with the kernel rotated by 180 degrees (or: col2im of W.T @ dY)", unflipped)])),
        ("dw", grads[1], dw, dict(dtype=dtype, variants=dw_variants)),
        ("db", grads[2], db, dict(dtype=dtype, variants=[
            (f"equals the mean of dy over images and pixels; db is their sum", db / count)])),
    ], case)


def _conv_centred_differences(module, rng):
    for x_shape, w_shape, stride, pad, groups in [((1, 4, 5, 5), (4, 2, 3, 3), 1, 1, 2),
                                                   ((2, 3, 7, 7), (2, 3, 3, 3), 2, 0, 1)]:
        inputs = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal(w_shape),
                  "b": rng.standard_normal(w_shape[0])}
        options = dict(stride=stride, pad=pad, groups=groups)
        case = shape_text(**inputs, stride=stride, pad=pad, groups=groups) + ", float64"
        check_backward(module, "conv2d_forward", "conv2d_backward", inputs, options, case)
