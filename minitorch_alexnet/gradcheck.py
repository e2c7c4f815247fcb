"""Gradient checking: does a hand-written backward pass agree with the forward pass?

For a scalar function L(x), the centred difference

    dL/dx[i] ~ (L(x + eps*e_i) - L(x - eps*e_i)) / (2*eps)

has error O(eps^2), against O(eps) for a one-sided difference. To check a layer y = f(x) we
pick a random upstream gradient g of y's shape and use the scalar L(x) = sum(y * g): its exact
gradient is what ``backward(g, cache)`` must return.

For a big tensor, checking every element costs two forward passes per element. The
random-direction check costs two: for a random unit vector v,

    <dL/dx, v> ~ (L(x + eps*v) - L(x - eps*v)) / (2*eps)

and a wrong gradient almost surely fails it.

Always in float64: with eps = 1e-6 float32's 7 digits leave no digits for the difference.
The relative error max|a - n| / max(|a|, |n|) is ~1e-9 for a correct gradient and
~1e-2 or worse for a wrong one; we pass below 1e-6.

``python -m minitorch_alexnet.gradcheck`` checks every input and parameter of every layer and
prints a table; the exit status is 1 if any row fails.
"""
import argparse
import sys

import numpy as np

from . import functional as F

DEFAULT_EPS = 1e-6
DEFAULT_TOLERANCE = 1e-6


def relative_error(analytic, numeric):
    """max_i |a_i - n_i| / max(max_i |a_i|, max_i |n_i|, 1e-12): 0 for a perfect match.

    Scaling by the largest entry (not entry by entry) keeps a gradient entry that is nearly 0,
    where the centred difference's round-off dominates, from failing a correct layer.
    """
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if analytic.size == 0:
        return 0.0
    scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)), 1e-12)
    return float(np.max(np.abs(analytic - numeric)) / scale)


def numerical_gradient(loss_fn, x, eps=DEFAULT_EPS):
    """Centred-difference gradient of the scalar ``loss_fn()`` with respect to the array x,
    element by element. x is changed in place and restored, so ``loss_fn`` must read it."""
    if not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous: it is perturbed in place through a flat view")
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        loss_plus = loss_fn()
        flat_x[i] = original - eps
        loss_minus = loss_fn()
        flat_x[i] = original
        flat_grad[i] = (loss_plus - loss_minus) / (2 * eps)
    return grad


def directional_derivative(loss_fn, x, direction, eps=DEFAULT_EPS):
    """Centred difference of ``loss_fn()`` along ``direction``; x is restored afterwards."""
    original = x.copy()
    x += eps * direction
    loss_plus = loss_fn()
    x[...] = original - eps * direction
    loss_minus = loss_fn()
    x[...] = original
    return (loss_plus - loss_minus) / (2 * eps)


def check_gradients(loss_fn, inputs, analytic, *, eps=DEFAULT_EPS, max_elements=2000, rng=None):
    """Compare analytic gradients with centred differences of ``loss_fn``.

    inputs:   dict name -> float64 array that ``loss_fn`` reads (perturbed in place)
    analytic: dict name -> the backward pass's gradient for that input
    A tensor with more than ``max_elements`` entries gets the random-direction check (three
    directions); smaller ones are checked element by element.
    Returns dict name -> (relative error, method).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    results = {}
    for name, x in inputs.items():
        if x.dtype != np.float64:
            raise ValueError(f"gradient checks need float64; {name} is {x.dtype}")
        grad = np.asarray(analytic[name], dtype=np.float64)
        if grad.shape != x.shape:
            raise ValueError(f"gradient of {name} has shape {grad.shape}, expected {x.shape}")
        if x.size <= max_elements:
            results[name] = (relative_error(grad, numerical_gradient(loss_fn, x, eps)), "all elements")
        else:
            errors = []
            for _ in range(3):
                direction = rng.standard_normal(x.shape)
                direction /= np.linalg.norm(direction)
                numeric = directional_derivative(loss_fn, x, direction, eps)
                errors.append(relative_error(np.sum(grad * direction), numeric))
            results[name] = (max(errors), "3 random directions")
    return results


def check_layer(forward, backward, inputs, *, eps=DEFAULT_EPS, max_elements=2000, seed=0, **options):
    """Gradient-check a ``forward(*inputs, **options) -> (y, cache)`` /
    ``backward(dy, cache) -> grad or tuple of grads`` pair, one grad per input in order.

    Uses L = sum(y * g) for a fixed random g. Returns dict name -> (relative error, method).
    """
    rng = np.random.default_rng(seed)
    names = list(inputs)
    y, cache = forward(*inputs.values(), **options)
    upstream = rng.standard_normal(y.shape)
    grads = backward(upstream.copy(), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    analytic = dict(zip(names, grads))

    def loss():
        return float(np.sum(forward(*inputs.values(), **options)[0] * upstream))

    return check_gradients(loss, inputs, analytic, eps=eps, max_elements=max_elements, rng=rng)


def check_softmax_cross_entropy(logits, labels, eps=DEFAULT_EPS):
    """The loss is already a scalar: compare dlogits with centred differences of the loss."""
    _, dlogits = F.softmax_cross_entropy(logits, labels)
    return check_gradients(
        lambda: float(F.softmax_cross_entropy(logits, labels)[0]), {"logits": logits},
        {"logits": dlogits}, eps=eps,
    )


def distinct_values(shape, rng, spacing=1e-2):
    """A random permutation of evenly spaced values: no two entries are within ``spacing``, so
    a step of eps << spacing cannot change which element of a max-pool window is largest."""
    count = int(np.prod(shape))
    values = (np.arange(count) - count / 2) * spacing
    return rng.permutation(values).reshape(shape)


def away_from_zero(shape, rng, margin=0.1):
    """Normal values pushed at least ``margin`` away from 0, ReLU's kink."""
    x = rng.standard_normal(shape)
    return x + np.sign(x) * margin


def layer_checks(seed=0):
    """Every layer of AlexNet, at small shapes and at AlexNet's own configurations.

    Yields (layer name, forward, backward, inputs dict, options) with float64 inputs.
    """
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal

    def conv(n, c, h, f, k, stride, pad, groups):
        return (F.conv2d_forward, F.conv2d_backward,
                {"x": normal((n, c, h, h)), "w": normal((f, c // groups, k, k)) * 0.1,
                 "b": normal(f)},
                {"stride": stride, "pad": pad, "groups": groups})

    yield ("conv2d 3x3 s1 p1", *conv(2, 3, 6, 4, 3, 1, 1, 1))
    yield ("conv2d conv1-like 11/4/0", *conv(1, 3, 19, 4, 11, 4, 0, 1))
    yield ("conv2d conv2-like 5/1/2 g2", *conv(1, 4, 7, 4, 5, 1, 2, 2))
    yield ("conv2d conv3-like 3/1/1", *conv(2, 4, 5, 6, 3, 1, 1, 1))
    yield ("conv2d conv4/5-like 3/1/1 g2", *conv(2, 4, 5, 6, 3, 1, 1, 2))
    yield ("linear", F.linear_forward, F.linear_backward,
           {"x": normal((3, 2, 2, 2)), "w": normal((5, 8)), "b": normal(5)}, {})
    yield ("relu", F.relu_forward, F.relu_backward, {"x": away_from_zero((2, 3, 4, 4), rng)}, {})
    yield ("tanh", F.tanh_forward, F.tanh_backward, {"x": normal((2, 3, 4, 4))}, {})
    yield ("lrn paper constants", F.lrn_forward, F.lrn_backward,
           {"x": normal((2, 7, 3, 3))}, {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0})
    yield ("lrn large alpha", F.lrn_forward, F.lrn_backward,
           {"x": normal((2, 7, 3, 3))}, {"size": 5, "alpha": 0.5, "beta": 0.75, "k": 2.0})
    yield ("max_pool2d 3/2 (overlapping)", F.max_pool2d_forward, F.max_pool2d_backward,
           {"x": distinct_values((2, 3, 7, 7), rng)}, {"size": 3, "stride": 2})
    yield ("max_pool2d 2/2 pad 1", F.max_pool2d_forward, F.max_pool2d_backward,
           {"x": distinct_values((2, 2, 5, 5), rng)}, {"size": 2, "stride": 2, "pad": 1})
    yield ("dropout p=0.5 (fixed mask)", F.dropout_forward, F.dropout_backward,
           {"x": normal((4, 10))}, {"p": 0.5, "training": True, "rng": 7})


def run_all(seed=0):
    """All checks as rows (layer, tensor, relative error, method, passed)."""
    rows = []
    for name, forward, backward, inputs, options in layer_checks(seed):
        results = check_layer(forward, backward, inputs, seed=seed, **options)
        for tensor, (error, method) in results.items():
            rows.append((name, tensor, error, method, error < DEFAULT_TOLERANCE))
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((4, 6))
    labels = rng.integers(0, 6, size=4)
    for tensor, (error, method) in check_softmax_cross_entropy(logits, labels).items():
        rows.append(("softmax_cross_entropy", tensor, error, method, error < DEFAULT_TOLERANCE))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m minitorch_alexnet.gradcheck",
        description="Check every layer's backward pass against centred differences (float64).",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    args = parser.parse_args(argv)
    rows = run_all(args.seed)
    width = max(len(r[0]) for r in rows)
    print(f"{'layer':<{width}}  {'tensor':<7} {'max rel. error':>14}  {'checked':<20} result")
    for layer, tensor, error, method, passed in rows:
        print(f"{layer:<{width}}  {tensor:<7} {error:>14.2e}  {method:<20} {'pass' if passed else 'FAIL'}")
    failed = sum(not r[4] for r in rows)
    print(f"\n{len(rows) - failed} of {len(rows)} gradients pass (tolerance {DEFAULT_TOLERANCE:g}).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
