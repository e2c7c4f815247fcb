"""Lesson 4: overlapping max-pooling, forward and backward.

The known wrong answers come from ``pool_variant``, a plain loop over the windows with a knob
for each classic mistake: zero padding instead of -inf, the gradient of a tie sent to the last
maximum (or to all of them, or split between them, or the first in column-major order), and
overlapping windows that overwrite each other's gradient instead of adding up.
"""
import itertools

import numpy as np

from .. import functional as F
from ..checks import output_size
from ..gradcheck import distinct_values
from .compare import call, expect, shape_text, unpack
from .gradients import check_backward

AXES = ("n", "c", "h", "w")

TIE_RULES = {
    "last": "on a tie the gradient went to the LAST maximum in row-major window order; it must "
            "go to the first (smallest i, then smallest j: replace the best only when strictly "
            "larger)",
    "all": "on a tie every maximum got the gradient; only the first in row-major window order "
           "may",
    "split": "on a tie the gradient was split between the maxima; the first in row-major "
             "window order gets all of it",
    "columns": "on a tie the gradient went to the first maximum in column-major order (j "
               "before i); the rule is row-major (smallest i first, then smallest j)",
}


def pool_variant(x, dy, size, stride, pad, fill=-np.inf, tie="first", add=True):
    """(y, dx) of max-pooling by plain loops, in float64. ``fill``: the padding value; ``tie``:
    "first" (the rule), "last", "all", "split" or "columns"; ``add=False`` overwrites dx
    where windows overlap instead of adding."""
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, size, stride, pad), output_size(w, size, stride, pad)
    padded = np.full((n, c, h + 2 * pad, w + 2 * pad), fill)
    padded[:, :, pad:pad + h, pad:pad + w] = x
    y = np.empty((n, c, out_h, out_w))
    dx = np.zeros_like(padded)
    for image, channel, oh, ow in itertools.product(range(n), range(c), range(out_h), range(out_w)):
        window = padded[image, channel, oh * stride:oh * stride + size, ow * stride:ow * stride + size]
        y[image, channel, oh, ow] = best = window.max()
        places = [(i, j) for i in range(size) for j in range(size) if window[i, j] == best]
        if tie == "columns":
            places.sort(key=lambda place: (place[1], place[0]))
        chosen = {"first": places[:1], "columns": places[:1], "last": places[-1:]}.get(tie, places)
        share = dy[image, channel, oh, ow] / (len(chosen) if tie == "split" else 1)
        for i, j in chosen:
            target = (image, channel, oh * stride + i, ow * stride + j)
            dx[target] = dx[target] + share if add else share
    return y, dx[:, :, pad:pad + h, pad:pad + w]


def pool_cases(rng):
    """(x, size, stride, pad, what): overlapping windows, all-negative inputs with padding
    (zero padding would win), many ties, non-square, float32, a random one."""
    ties = rng.integers(0, 3, size=(2, 2, 7, 7)).astype(np.float64)
    return [
        (distinct_values((2, 3, 7, 7), rng), 3, 2, 0, "distinct values"),
        (_negative(distinct_values((2, 2, 5, 5), rng)), 2, 2, 1, "all negative"),
        (_negative(distinct_values((1, 2, 6, 6), rng)), 3, 1, 1, "all negative"),
        (distinct_values((1, 2, 7, 9), rng), 3, 2, 0, "distinct values"),
        (ties, 3, 2, 0, "many ties"), (ties, 2, 1, 0, "many ties"), (ties, 3, 1, 1, "many ties"),
        (distinct_values((2, 3, 9, 9), rng).astype(np.float32), 3, 2, 0, "distinct values"),
        (distinct_values((1, 2, int(rng.integers(3, 9)), int(rng.integers(3, 9))), rng),
         int(rng.integers(2, 4)), int(rng.integers(1, 3)), 1, "distinct values"),
    ]


def _negative(x):
    """x moved below -1, still without ties."""
    return x - x.max() - 1.0


def check_pool(module):
    rng = np.random.default_rng(5)
    for x, size, stride, pad, what in pool_cases(rng):
        options = dict(size=size, stride=stride, pad=pad)
        case = shape_text(x=x, **options) + f", {x.dtype}, {what}"
        want, cache = F.max_pool2d_forward(x, **options)
        dy = rng.standard_normal(want.shape).astype(x.dtype)
        out = unpack("max_pool2d_forward", call(module, "max_pool2d_forward", x, **options), 2,
                     "(y, cache)")
        transposed = want.swapaxes(2, 3) if want.shape[2] == want.shape[3] else None
        expect("max_pool2d_forward", [("y", out[0], want, dict(dtype=x.dtype, axes=AXES, variants=[
            ("equals max-pooling with zero padding; pad with -inf so that padding is never the "
             "maximum", pool_variant(x, dy, size, stride, pad, fill=0.0)[0] if pad else None),
            ("equals the right y transposed: y[n, c, oh, ow] is the window at rows "
             "oh*stride .. oh*stride + size - 1, columns ow*stride .. ow*stride + size - 1", transposed),
        ]))], case)
        dx = call(module, "max_pool2d_backward", dy, out[1])
        variants = [(text, pool_variant(x, dy, size, stride, pad, tie=rule)[1])
                    for rule, text in TIE_RULES.items()]
        variants.append(("an input that is the maximum of several overlapping windows must get "
                         "the SUM of their gradients (+=); here one window's gradient overwrote "
                         "another's", pool_variant(x, dy, size, stride, pad, add=False)[1]))
        expect("max_pool2d_backward", [("dx", dx, F.max_pool2d_backward(dy, cache),
                                        dict(dtype=x.dtype, axes=AXES, variants=variants))], case)
    for shape, size, stride, pad in [((1, 2, 5, 5), 3, 2, 0), ((1, 2, 4, 4), 2, 2, 1)]:
        x = distinct_values(shape, rng)
        options = dict(size=size, stride=stride, pad=pad)
        check_backward(module, "max_pool2d_forward", "max_pool2d_backward", {"x": x}, options,
                       shape_text(x=x, **options))
