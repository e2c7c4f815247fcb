"""Finding the first nan or inf of a training step: which layer made it, forward or backward.

A training step that ends with a non-finite loss or gradient says only THAT something
overflowed. To say WHERE, the trainer replays the step with ``model.check_finite`` on: the
model then calls ``raise_if_nonfinite`` on the input, on every layer's output in the forward
pass, on the loss, and on every layer's gradients in the backward pass, and the first check
that fails names the layer. Replaying costs a second step, so it runs only after a failure.

    where = locate_nonfinite(model, x, labels)
    # "the forward pass of conv3 is the first to produce a non-finite value (nan or inf)"
"""
import math

from . import functional as F
from .backend import device_scope, get_array_module


def all_finite(arrays):
    """True if no entry of ``arrays`` (NumPy or CuPy, on any device) is nan or inf.

    Cheap first: the sum of squares, one BLAS pass per array, is nan or inf whenever an entry
    is. It also overflows for finite entries above about 1e19 in float32, so an infinite sum
    is confirmed entry by entry before the answer is False."""
    square_sum = 0.0
    for array in arrays:
        with device_scope(array):
            flat = array.ravel()
            square_sum += float(get_array_module(array).vdot(flat, flat))
    if math.isfinite(square_sum):
        return True
    for array in arrays:
        with device_scope(array):
            if not bool(get_array_module(array).isfinite(array).all()):
                return False
    return True


def raise_if_nonfinite(arrays, where, verb="produced"):
    """Raise FloatingPointError("<where> <verb> a non-finite value (nan or inf)") if any of
    ``arrays`` (NumPy or CuPy, on any device) holds a nan or an inf."""
    for array in arrays:
        with device_scope(array):
            finite = bool(get_array_module(array).isfinite(array).all())
        if not finite:
            raise FloatingPointError(f"{where} {verb} a non-finite value (nan or inf)")


def locate_nonfinite(model, x, labels, dropout_keys=None):
    """Re-run a training step of ``model`` on ``x`` and ``labels`` with checks after every
    layer, forward then backward, and say where the first nan or inf appears (a sentence).

    The replay must draw the failed step's dropout masks: pass its ``dropout_keys``, or
    without keys reset ``model.dropout_rng`` to its state before the step first.
    ``model.check_finite`` is off again afterwards."""
    model.check_finite = True
    try:
        logits = model.forward(x, train=True, dropout_keys=dropout_keys)
        loss, dlogits = F.softmax_cross_entropy(logits, labels)
        raise_if_nonfinite([loss, dlogits], "the loss (softmax cross-entropy)")
        model.backward(dlogits)
    except FloatingPointError as error:
        return str(error).replace(" produced a non-finite", " is the first to produce a non-finite", 1)
    finally:
        model.check_finite = False
    return "no non-finite value appeared when the step was re-run"
