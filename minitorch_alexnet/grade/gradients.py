"""The student's backward pass against centred differences of the student's OWN forward pass,
in float64 (``minitorch_alexnet.gradcheck``): L = sum(y * g) for a fixed random g, whose
gradient is what ``backward(g, cache)`` must return. Tensors of more than 60 entries are
checked along three random directions, smaller ones entry by entry, so a slow naive-loop
answer is still graded in seconds.
"""
import numpy as np

from ..gradcheck import DEFAULT_TOLERANCE, check_gradients
from .compare import Mismatch, call, unpack


def check_backward(module, forward, backward, inputs, options, case, seed=1, fresh=None):
    """Gradient-check ``module.forward(*inputs, **options)`` / ``module.backward(g, cache)``.

    inputs: dict name -> float64 array, in the order of the backward's gradients (one
    gradient, or a tuple of them). ``fresh``: a function returning extra keyword arguments
    made anew for every call (dropout's generator, so that every call draws the same mask).
    Raises Mismatch naming the first gradient that disagrees."""
    rng = np.random.default_rng(seed)
    extra = fresh or dict

    def run_forward():
        out = call(module, forward, *inputs.values(), **options, **extra())
        return unpack(forward, out, 2, "(y, cache)")

    y, cache = run_forward()
    upstream = rng.standard_normal(np.shape(y))
    grads = call(module, backward, upstream.copy(), cache)
    if len(inputs) > 1:
        grads = unpack(backward, grads, len(inputs), "(" + ", ".join(f"d{n}" for n in inputs) + ")")
    else:
        grads = (grads,)
    analytic = {}
    for name, grad in zip(inputs, grads):
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != inputs[name].shape:
            raise Mismatch(f"{backward}: d{name} has shape {grad.shape}, expected "
                           f"{inputs[name].shape} [{case}]")
        analytic[name] = grad

    def loss():
        return float(np.sum(np.asarray(run_forward()[0], dtype=np.float64) * upstream))

    results = check_gradients(loss, inputs, analytic, max_elements=60, rng=rng)
    for name, (error, method) in results.items():
        if not error < DEFAULT_TOLERANCE:
            raise Mismatch(f"{backward}: d{name} disagrees with centred differences of your "
                           f"{forward} (relative error {error:.2g}, {method}) [{case}]")
