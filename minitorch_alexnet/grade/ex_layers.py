"""Lessons 2 and 3: ReLU, tanh and local response normalization.

LRN's known wrong answers are computed by ``lrn_variant`` below, the formulas of
functional/lrn.py written as plain loops over the channels with a knob for each classic
mistake: alpha divided by size (PyTorch's and Caffe's convention, not the paper's), the
window of an even size not mirrored in backward, the cross-channel term left out, halved or
of the wrong sign.
"""
import numpy as np

from .. import functional as F
from ..gradcheck import away_from_zero
from .compare import call, expect, shape_text, unpack
from .gradients import check_backward

AXES = ("n", "c", "h", "w")


def _activation_cases(rng):
    """Inputs of several shapes with exact zeros in them (ReLU's kink), one float32."""
    cases = []
    for shape, dtype in [((2, 3, 4, 5), np.float64), ((7,), np.float64), ((3, 10), np.float32),
                         ((2, 2, 3, 3), np.float64)]:
        x = rng.standard_normal(shape)
        x.reshape(-1)[::5] = 0.0
        cases.append(x.astype(dtype))
    return cases


def check_relu(module):
    rng = np.random.default_rng(2)
    for x in _activation_cases(rng):
        case = shape_text(x=x) + f", {x.dtype} (x == 0 in places)"
        y, cache = unpack("relu_forward", call(module, "relu_forward", x), 2, "(y, cache)")
        expect("relu_forward", [("y", y, np.maximum(x, 0), dict(dtype=x.dtype, variants=[
            ("equals x (the max with 0 is missing)", x)]))], case)
        dy = rng.standard_normal(x.shape).astype(x.dtype)
        dx = call(module, "relu_backward", dy, cache)
        expect("relu_backward", [("dx", dx, dy * (x > 0), dict(dtype=x.dtype, variants=[
            ("equals dy: the mask is missing (dx must be 0 where x <= 0)", dy),
            ("is dy where x >= 0: at the kink x == 0 the gradient is 0 (use x > 0)", dy * (x >= 0)),
            ("equals dy * y; it is dy times the mask (x > 0), not times y", dy * np.maximum(x, 0)),
        ]))], case)
    x = away_from_zero((2, 3, 3), rng)
    check_backward(module, "relu_forward", "relu_backward", {"x": x}, {}, shape_text(x=x))


def check_tanh(module):
    rng = np.random.default_rng(3)
    for x in _activation_cases(rng):
        case = shape_text(x=x) + f", {x.dtype}"
        y, cache = unpack("tanh_forward", call(module, "tanh_forward", x), 2, "(y, cache)")
        want = np.tanh(x)
        expect("tanh_forward", [("y", y, want, dict(dtype=x.dtype))], case)
        dy = rng.standard_normal(x.shape).astype(x.dtype)
        dx = call(module, "tanh_backward", dy, cache)
        expect("tanh_backward", [("dx", dx, dy * (1 - want * want), dict(dtype=x.dtype, variants=[
            ("equals dy * (1 - x^2); the derivative is 1 - tanh(x)^2 = 1 - y^2", dy * (1 - x * x)),
            ("equals dy * (1 - y); the derivative is 1 - y^2", dy * (1 - want)),
            ("equals dy * y^2; the derivative is 1 - y^2", dy * want * want),
            ("equals dy: the derivative 1 - y^2 is missing", dy),
        ]))], case)
    x = rng.standard_normal((2, 3, 3))
    check_backward(module, "tanh_forward", "tanh_backward", {"x": x}, {}, shape_text(x=x))


# ---- LRN -----------------------------------------------------------------------------------

def window_sum(a, before, after):
    """out[:, c] = sum of a[:, j] for j = c - before .. c + after, clipped to 0 .. C-1."""
    channels = a.shape[1]
    out = np.zeros_like(a)
    for c in range(channels):
        first, last = max(0, c - before), min(channels - 1, c + after)
        out[:, c] = a[:, first:last + 1].sum(axis=1)
    return out


def lrn_variant(x, dy, size, alpha, beta, k, mirrored=True, cross=1.0, power=None):
    """(y, dx) of the paper's LRN in float64, with knobs for the classic mistakes:
    ``mirrored=False`` sums backward's term over channel c's own window instead of the
    mirrored one; ``cross`` scales the cross-channel term; ``power`` replaces -beta in y."""
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    before, after = size // 2, (size - 1) // 2
    s = k + alpha * window_sum(x * x, before, after)
    y = x * s ** (-beta if power is None else power)
    t = dy * x * s ** (-beta - 1)
    spread = window_sum(t, after, before) if mirrored else window_sum(t, before, after)
    dx = dy * s ** -beta - cross * 2 * alpha * beta * x * spread
    return y, dx


def lrn_cases(rng):
    """(x, size, alpha, beta, k): the paper's constants, a large alpha (so that the mistakes
    show), clipped windows (C < size), even sizes, size 1, other beta and k; one float32."""
    normal = rng.standard_normal
    return [(normal((2, 7, 3, 3)), 5, 1e-4, 0.75, 2.0), (normal((2, 7, 3, 3)) * 2, 5, 0.5, 0.75, 2.0),
            (normal((1, 3, 2, 2)) * 2, 5, 0.3, 0.75, 1.0), (normal((2, 6, 2, 3)) * 2, 4, 0.4, 0.75, 2.0),
            (normal((1, 5, 2, 2)), 1, 0.5, 0.5, 1.5), (normal((1, 6, 3, 2)) * 2, 3, 0.2, 1.0, 1.0),
            (normal((2, 7, 3, 3)).astype(np.float32) * 2, 5, 0.5, 0.75, 2.0),
            (normal((1, int(rng.integers(2, 9)), 2, 2)) * 2, int(rng.integers(1, 7)), 0.25, 0.75, 2.0)]


def _lrn_forward_variants(x, dy, size, alpha, beta, k):
    mirrored = None
    if size % 2 == 0:        # the window c - (size-1)//2 .. c + size//2: reverse the channels
        mirrored = lrn_variant(x[:, ::-1], dy, size, alpha, beta, k)[0][:, ::-1]
    return [
        ("equals the formula with alpha divided by size (PyTorch's and Caffe's convention); "
         "the paper uses alpha as written: s = k + alpha * sum of a^2",
         lrn_variant(x, dy, size, alpha / size, beta, k)[0]),
        ("equals a * s^beta; it is a * s^(-beta) (divide by the power)",
         lrn_variant(x, dy, size, alpha, beta, k, power=beta)[0]),
        ("equals the formula with k left out of s", lrn_variant(x, dy, size, alpha, beta, 0.0)[0]),
        ("equals the formula with the window mirrored: channel c's window is "
         "c - size//2 .. c + (size-1)//2", mirrored),
    ]


def _lrn_backward_variants(x, dy, size, alpha, beta, k):
    def dx(**knobs):
        return lrn_variant(x, dy, size, knobs.pop("alpha", alpha), beta, k, **knobs)[1]
    return [
        ("equals the gradient with alpha divided by size; the paper's alpha is used as written",
         dx(alpha=alpha / size)),
        ("equals dy * s^(-beta): the cross-channel term is missing (every a[c] is also in the "
         "denominators s[j] of its neighbours)", dx(cross=0.0)),
        ("the cross-channel term is half what it should be (d(a^2)/da = 2a)", dx(cross=0.5)),
        ("the cross-channel term has the wrong sign", dx(cross=-1.0)),
        ("the cross-channel term is summed over channel c's own window; it must be summed over "
         "the channels j whose window contains c (the mirrored window, c - (size-1)//2 .. "
         "c + size//2)", dx(mirrored=False) if size % 2 == 0 else None),
    ]


def check_lrn(module):
    rng = np.random.default_rng(4)
    for x, size, alpha, beta, k in lrn_cases(rng):
        options = dict(size=size, alpha=alpha, beta=beta, k=k)
        case = shape_text(x=x, **options) + f", {x.dtype}"
        want, cache = F.lrn_forward(x, **options)
        dy = rng.standard_normal(x.shape).astype(x.dtype)
        out = unpack("lrn_forward", call(module, "lrn_forward", x, **options), 2, "(y, cache)")
        expect("lrn_forward", [("y", out[0], want, dict(
            dtype=x.dtype, axes=AXES, variants=_lrn_forward_variants(x, dy, size, alpha, beta, k)))],
            case)
        dx = call(module, "lrn_backward", dy, out[1])
        expect("lrn_backward", [("dx", dx, F.lrn_backward(dy, cache), dict(
            dtype=x.dtype, axes=AXES, variants=_lrn_backward_variants(x, dy, size, alpha, beta, k)))],
            case)
    for x_shape, size in [((1, 6, 2, 2), 4), ((2, 5, 2, 1), 5)]:
        x = rng.standard_normal(x_shape) * 2
        options = dict(size=size, alpha=0.5, beta=0.75, k=2.0)
        check_backward(module, "lrn_forward", "lrn_backward", {"x": x}, options,
                       shape_text(x=x, **options))
