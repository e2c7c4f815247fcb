"""Lessons 5, 6 and 10: dropout, the fully connected layer, softmax cross-entropy and the
paper's SGD update.

Dropout is graded without prescribing how the mask is drawn: the inputs have no zeros, so
y / x reveals the mask (every ratio must be 0 or 1/(1-p)), the fraction kept must be about
1 - p, the same generator must give the same mask and another one another mask, and backward
must use the forward pass's mask.
"""
import numpy as np

from .. import functional as F
from ..gradcheck import away_from_zero, check_gradients
from .compare import Mismatch, as_array, call, expect, shape_text, unpack, TOLERANCE
from .gradients import check_backward


def _forward(module, x, p, training, seed):
    out = call(module, "dropout_forward", x, p=p, training=training, rng=np.random.default_rng(seed))
    return unpack("dropout_forward", out, 2, "(y, cache)")


def _kept(y, x, p, case):
    """The mask that y reveals (x has no zeros), after checking that every ratio y/x is 0 or
    1/(1-p) and that about 1 - p of the units are kept."""
    array, phrase = as_array(y)
    if phrase or array.shape != x.shape:
        phrase = phrase or f"has shape {array.shape}, expected {x.shape}"
        raise Mismatch(f"dropout_forward: y {phrase} [{case}]")
    if not np.isfinite(array).all():
        raise Mismatch(f"dropout_forward: y has nan or inf entries; with p = 1 every unit is "
                       f"zeroed (1/(1-p) is infinite and 0 * inf is nan: return zeros) [{case}]")
    ratio = array.astype(np.float64) / x.astype(np.float64)
    kept = np.abs(ratio) > 1e-6
    tol = TOLERANCE[x.dtype] * 10
    scale = 1.0 / (1.0 - p) if p < 1 else 0.0
    values = ratio[kept]
    if values.size and not np.allclose(values, scale, rtol=tol, atol=0):
        for value, text in [(1.0, "the kept units are not scaled by 1/(1-p): inverted dropout "
                             "multiplies them by 1/(1-p) so that E[y] = x"),
                            (1.0 - p, "the kept units are multiplied by 1-p; inverted dropout "
                             "DIVIDES by 1-p"),
                            (1.0 / p, "the kept units are scaled by 1/p; p is the probability of "
                             "zeroing, the scale is 1/(1-p)")]:
            if np.allclose(values, value, rtol=tol, atol=0):
                raise Mismatch(f"dropout_forward: y wrong: {text} [{case}]")
        index = tuple(int(i) for i in np.argwhere(kept & ~np.isclose(ratio, scale, rtol=tol, atol=0))[0])
        raise Mismatch(f"dropout_forward: y wrong: y{list(index)} = {ratio[index]:.6g} * x; every "
                       f"y must be 0 or x/(1-p) = {scale:.6g} * x [{case}]")
    fraction, sigma = kept.mean(), np.sqrt(p * (1 - p) / kept.size)
    if abs(fraction - (1 - p)) > 6 * sigma + 1e-12:
        if abs(fraction - p) <= 6 * sigma:
            raise Mismatch(f"dropout_forward: units are kept with probability p = {p}; p is the "
                           f"probability of ZEROING (keep where rng.random(x.shape) >= p) [{case}]")
        raise Mismatch(f"dropout_forward: {fraction:.3f} of the units are kept, expected about "
                       f"1 - p = {1 - p:.3f} [{case}]")
    if array.dtype != x.dtype:
        raise Mismatch(f"dropout_forward: y has dtype {array.dtype}, expected {x.dtype} [{case}]")
    return kept


def check_dropout(module):
    rng = np.random.default_rng(6)
    for shape, p, dtype in [((40, 50), 0.2, np.float64), ((4, 5, 6, 7), 0.5, np.float64),
                            ((30, 40), 0.7, np.float32), ((20, 30), 0.9, np.float64),
                            ((3, 4), 0.0, np.float64), ((3, 4), 1.0, np.float64)]:
        x = away_from_zero(shape, rng).astype(dtype)        # no zeros: y / x tells the mask
        case = shape_text(x=x, p=p) + f", {np.dtype(dtype)}, training"
        y, cache = _forward(module, x, p, True, 10)
        kept = _kept(y, x, p, case)
        if 0 < p < 1:
            if not np.array_equal(_forward(module, x, p, True, 10)[0], y):
                raise Mismatch(f"dropout_forward: two generators of the same seed gave different "
                               f"masks: draw the mask from the rng argument [{case}]")
            if np.array_equal(_forward(module, x, p, True, 11)[0], y):
                raise Mismatch(f"dropout_forward: another generator gave the same mask: draw the "
                               f"mask from the rng argument [{case}]")
        dy = rng.standard_normal(shape).astype(dtype)
        dx = call(module, "dropout_backward", dy, cache)
        scale = 1.0 / (1.0 - p) if p < 1 else 0.0
        _same_mask(dx, dy, kept, case)
        expect("dropout_backward", [("dx", dx, dy * kept * scale, dict(dtype=dtype, variants=[
            ("equals dy * keep: the factor 1/(1-p) is missing", dy * kept if p > 0 else None),
            ("equals dy: the mask is missing (zeroed units get no gradient)", dy if p > 0 else None),
        ], nonfinite="has nan or inf entries: with p = 1, 1/(1-p) is infinite (return zeros)"))],
            case)
    _check_not_training(module, rng)
    x = rng.standard_normal((3, 6))
    check_backward(module, "dropout_forward", "dropout_backward", {"x": x},
                   dict(p=0.5, training=True), shape_text(x=x, p=0.5),
                   fresh=lambda: {"rng": np.random.default_rng(7)})


def _same_mask(dx, dy, kept, case):
    """dx must be zero exactly where the forward pass zeroed units (dy has no zeros)."""
    dx, _ = as_array(dx)
    if dx is None or dx.shape != dy.shape or not np.isfinite(dx).all():
        return                                   # expect() says what is wrong
    if 0 < kept.mean() < 1 and np.abs(dx).any() and not np.array_equal(np.abs(dx) > 0, kept):
        raise Mismatch("dropout_backward: dx wrong: its zeros are not where the forward pass "
                       "zeroed units: reuse the forward pass's mask from the cache, do not draw "
                       f"a new one [{case}]")


def _check_not_training(module, rng):
    x = rng.standard_normal((3, 5))
    case = shape_text(x=x, p=0.5) + ", training=False"
    y, cache = _forward(module, x, 0.5, False, 10)
    expect("dropout_forward", [("y", y, x, dict(dtype=x.dtype, variants=[
        ("equals x * (1 - p): when not training inverted dropout is the identity", x * 0.5)]))], case)
    dy = rng.standard_normal(x.shape)
    expect("dropout_backward", [("dx", call(module, "dropout_backward", dy, cache), dy,
                                 dict(dtype=x.dtype))], case)


def check_linear(module):
    rng = np.random.default_rng(7)
    for x_shape, w_shape, dtype in [((3, 5), (4, 5), np.float64), ((2, 3, 2, 2), (5, 12), np.float64),
                                    ((4, 6), (6, 6), np.float64), ((3, 4), (2, 4), np.float32),
                                    ((int(rng.integers(1, 5)), 7), (int(rng.integers(1, 6)), 7), np.float64)]:
        x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        case = shape_text(x=x, w=w, b=b) + f", {np.dtype(dtype)}"
        want, cache = F.linear_forward(x, w, b)
        out = unpack("linear_forward", call(module, "linear_forward", x, w, b), 2, "(y, cache)")
        expect("linear_forward", [("y", out[0], want, dict(dtype=dtype, variants=[
            ("the bias b is missing", want - b)]))], case)
        dy = rng.standard_normal(want.shape).astype(dtype)
        dx, dw, db = F.linear_backward(dy, cache)
        grads = unpack("linear_backward", call(module, "linear_backward", dy, out[1]), 3, "(dx, dw, db)")
        n = x_shape[0]
        expect("linear_backward", [
            ("dx", grads[0], dx, dict(dtype=dtype)),
            ("dw", grads[1], dw, dict(dtype=dtype, variants=[
                ("equals the right dw transposed: dw = dy.T @ x has w's shape (out, in)",
                 dw.T if dw.shape[0] == dw.shape[1] else None),
                ("equals the right dw divided by N; the batch is summed, not averaged", dw / n)])),
            ("db", grads[2], db, dict(dtype=dtype, variants=[
                ("equals the mean of dy over the batch; db is the sum", db / n)])),
        ], case)
    inputs = {"x": rng.standard_normal((2, 3, 2)), "w": rng.standard_normal((4, 6)),
              "b": rng.standard_normal(4)}
    check_backward(module, "linear_forward", "linear_backward", inputs, {}, shape_text(**inputs))


OVERFLOW = ("is nan or inf for logits of magnitude 1e4: exp overflows. Subtract each row's "
            "maximum first: logsumexp(z) = m + log(sum exp(z - m)), m = max(z)")


def check_loss(module):
    rng = np.random.default_rng(8)
    for shape, scale, dtype in [((4, 6), 1.0, np.float64), ((1, 3), 1.0, np.float64),
                                ((8, 10), 5.0, np.float64), ((5, 4), 1e4, np.float64),
                                ((6, 7), 3.0, np.float32), ((3, 5), 1e4, np.float32)]:
        logits = (rng.standard_normal(shape) * scale).astype(dtype)
        labels = rng.integers(0, shape[1], size=shape[0])
        case = shape_text(logits=logits) + f", |logits| ~ {scale:g}, {np.dtype(dtype)}"
        want_loss, want_d = F.softmax_cross_entropy(logits.astype(np.float64), labels)
        out = unpack("softmax_cross_entropy", call(module, "softmax_cross_entropy", logits, labels),
                     2, "(loss, dlogits)")
        if np.ndim(out[0]) != 0:
            raise Mismatch(f"softmax_cross_entropy: loss must be a scalar (the mean over the "
                           f"batch), got shape {np.shape(out[0])} [{case}]")
        n = shape[0]
        big = OVERFLOW if scale > 100 else None
        expect("softmax_cross_entropy", [
            ("loss", out[0], np.asarray(want_loss, dtype), dict(nonfinite=big, variants=[
                ("equals the sum over the batch; the loss is the mean (divide by N)", want_loss * n)])),
            ("dlogits", out[1], want_d.astype(dtype), dict(dtype=dtype, nonfinite=big, variants=[
                ("equals N times the right answer: divide by N (the loss is the mean)", want_d * n),
                ("equals softmax(z) / N: subtract the one-hot of the label",
                 F.softmax(logits.astype(np.float64)) / n)])),
        ], case)
    logits, labels = rng.standard_normal((3, 5)), np.array([0, 4, 2])
    dlogits = unpack("softmax_cross_entropy", call(module, "softmax_cross_entropy", logits, labels),
                     2, "(loss, dlogits)")[1]
    loss = lambda: float(call(module, "softmax_cross_entropy", logits, labels)[0])  # noqa: E731
    error, method = check_gradients(loss, {"logits": logits}, {"logits": dlogits})["logits"]
    if not error < 1e-6:
        raise Mismatch(f"softmax_cross_entropy: dlogits disagrees with centred differences of "
                       f"your loss (relative error {error:.2g}, {method}) [logits (3, 5)]")


def sgd_reference(w, grad, velocity, lr, momentum, weight_decay):
    """The paper's rule: v <- m v - wd lr w - lr g; w <- w + v."""
    velocity = momentum * velocity - weight_decay * lr * w - lr * grad
    return w + velocity, velocity


def check_sgd(module):
    rng = np.random.default_rng(9)
    for shape, lr, momentum, decay, dtype in [((5, 4), 0.01, 0.9, 5e-4, np.float64),
                                              ((3,), 0.1, 0.9, 5e-4, np.float64),
                                              ((2, 3, 2), 0.05, 0.0, 1e-2, np.float64),
                                              ((6,), 0.1, 0.9, 0.1, np.float64),
                                              ((4, 4), 0.01, 0.9, 5e-4, np.float32)]:
        w = (rng.standard_normal(shape) * 3).astype(dtype)
        grad = rng.standard_normal(shape).astype(dtype)
        v = (rng.standard_normal(shape) * 0.1).astype(dtype)
        case = shape_text(w=w, lr=lr, momentum=momentum, weight_decay=decay) + f", {np.dtype(dtype)}"
        out = unpack("sgd_update", call(module, "sgd_update", w, grad, v, lr, momentum=momentum,
                                        weight_decay=decay, may_write=True), 2, "(w, velocity)")
        w64, g64, v64 = (a.astype(np.float64) for a in (w, grad, v))
        want_w, want_v = sgd_reference(w64, g64, v64, lr, momentum, decay)
        velocity_variants = [
            ("the weight decay term is not multiplied by the learning rate: it is "
             "-weight_decay * lr * w", momentum * v64 - decay * w64 - lr * g64),
            ("weight decay is missing: v <- momentum * v - weight_decay * lr * w - lr * grad",
             momentum * v64 - lr * g64),
            ("the weight decay term has the wrong sign (it shrinks w: -weight_decay * lr * w)",
             momentum * v64 + decay * lr * w64 - lr * g64),
            ("this is PyTorch's velocity (momentum * v + grad + weight_decay * w); the paper's "
             "carries the learning rate: v <- momentum * v - weight_decay * lr * w - lr * grad",
             momentum * v64 + g64 + decay * w64),
            ("momentum is missing: the old velocity times momentum is part of the new one",
             -decay * lr * w64 - lr * g64 if momentum else None),
        ]
        expect("sgd_update", [
            ("velocity", out[1], want_v, dict(dtype=dtype, variants=velocity_variants)),
            ("w", out[0], want_w, dict(dtype=dtype, variants=[
                ("w moved by the OLD velocity: update v first, then w <- w + v (the new v)", w64 + v64),
                ("w <- w - v; the paper adds the velocity: w <- w + v", w64 - want_v)])),
        ], case)
