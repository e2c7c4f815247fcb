"""Lesson 7: the gradient checker itself (``minitorch_alexnet/gradcheck.py``).

A checker that cannot fail proves nothing, so besides "every layer passes" this lesson feeds
it deliberately WRONG backward passes and asserts that each one is caught:

- a ReLU backward that forgets the mask (passes the gradient of inactive units);
- an LRN backward whose window is not mirrored (for an even size, channel c's gradient must
  collect from channels j whose window contains c, which is not c's own window);
- an LRN backward that treats the denominator as a constant (no cross-channel term);
- a dropout backward that draws a new mask instead of reusing the forward one.

It also checks the pieces: the centred difference of a known function, the relative error,
the random-direction check for big tensors, the helper inputs (distinct values for max-pool,
values away from ReLU's kink), and that ``python -m minitorch_alexnet.gradcheck`` exits 0
with every row passing. Run with ``pytest -m gradcheck``.
"""
import subprocess
import sys

import numpy as np
import pytest

from minitorch_alexnet import functional as F
from minitorch_alexnet import gradcheck
from minitorch_alexnet.functional.lrn import channel_window_sum
from minitorch_alexnet.gradcheck import (
    DEFAULT_TOLERANCE, away_from_zero, check_gradients, check_layer, distinct_values,
    numerical_gradient, relative_error,
)

import reference as ref

pytestmark = pytest.mark.gradcheck


# --- the command line -----------------------------------------------------------------------

def test_the_program_exits_0_and_every_row_passes():
    done = subprocess.run([sys.executable, "-m", "minitorch_alexnet.gradcheck"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.rstrip().endswith(("pass", "FAIL"))]
    assert rows and all(row.rstrip().endswith("pass") for row in rows), done.stdout
    assert f"{len(rows)} of {len(rows)} gradients pass" in done.stdout
    layers = " ".join(rows)
    for layer in ["conv2d", "g2", "linear", "relu", "tanh", "lrn", "large alpha", "max_pool2d",
                  "dropout", "softmax_cross_entropy"]:
        assert layer in layers


def test_main_returns_1_when_a_row_fails(monkeypatch, capsys):
    # main() reports failure through its exit status: make one row fail and look.
    rows = [("good layer", "x", 1e-10, "all elements", True), ("bad layer", "x", 0.5, "all elements", False)]
    monkeypatch.setattr(gradcheck, "run_all", lambda seed=0: rows)
    assert gradcheck.main([]) == 1
    out = capsys.readouterr().out
    assert "bad layer" in out and "FAIL" in out and "1 of 2 gradients pass" in out


# --- wrong backward passes are caught -------------------------------------------------------

def relu_backward_without_mask(dy, cache):
    return dy.copy()                           # WRONG: inactive units must get 0


def lrn_backward_with_unmirrored_window(dy, cache):
    x, s, size, alpha, beta = cache.x, cache.s, cache.size, cache.alpha, cache.beta
    t = dy * x * s ** (-beta - 1)
    spread = channel_window_sum(t, size // 2, (size - 1) // 2)   # WRONG: forward's own window
    return dy * s ** -beta - 2 * alpha * beta * x * spread


def lrn_backward_without_cross_channel_term(dy, cache):
    s, beta = cache.s, cache.beta
    return dy * s ** -beta                     # WRONG: s depends on x too


def dropout_backward_with_a_new_mask(dy, cache):
    _, new_cache = F.dropout_forward(np.ones_like(dy), 0.5, rng=99)
    return F.dropout_backward(dy, new_cache)   # WRONG: must reuse the forward mask


WRONG = {
    "relu without mask": (F.relu_forward, relu_backward_without_mask,
                          lambda rng: away_from_zero((2, 3, 4), rng), {}),
    "lrn unmirrored window": (F.lrn_forward, lrn_backward_with_unmirrored_window,
                              lambda rng: rng.standard_normal((2, 6, 2, 2)),
                              dict(size=4, alpha=1.0, beta=0.75, k=1.0)),
    "lrn no cross-channel term": (F.lrn_forward, lrn_backward_without_cross_channel_term,
                                  lambda rng: rng.standard_normal((2, 6, 2, 2)),
                                  dict(size=5, alpha=1.0, beta=0.75, k=1.0)),
    "dropout new mask": (F.dropout_forward, dropout_backward_with_a_new_mask,
                         lambda rng: rng.standard_normal((4, 10)), dict(p=0.5, rng=7)),
}


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_backward_is_caught(name):
    forward, wrong_backward, make_x, options = WRONG[name]
    x = make_x(np.random.default_rng(0))
    (error, _), = check_layer(forward, wrong_backward, {"x": x}, **options).values()
    assert error > 100 * DEFAULT_TOLERANCE
    # ...while the real backward passes the very same check
    correct_backward = {F.relu_forward: F.relu_backward, F.lrn_forward: F.lrn_backward,
                        F.dropout_forward: F.dropout_backward}[forward]
    ref.assert_gradients_pass(check_layer(forward, correct_backward, {"x": x}, **options))


def test_a_wrong_window_hides_behind_a_small_alpha():
    # Why the LRN tests also use alpha = 1: with the paper's alpha = 1e-4 the neighbours move
    # s by ~1e-4, so a forward pass with the wrong window (size 3 instead of 5) differs from
    # the right one by only ~1e-4 of its size (a loose comparison passes it); with alpha = 1
    # the difference is tens of percent.
    x = np.random.default_rng(0).standard_normal((2, 8, 3, 3))
    for alpha, smallest, largest in [(1e-4, 0.0, 1e-3), (1.0, 0.1, np.inf)]:
        right = ref.lrn(x, size=5, alpha=alpha, beta=0.75, k=2.0)
        wrong, _ = F.lrn_forward(x, size=3, alpha=alpha, beta=0.75, k=2.0)
        difference = np.max(np.abs(wrong - right)) / np.max(np.abs(right))
        assert smallest < difference < largest


def test_wrong_gradient_caught_by_the_random_direction_check():
    # Tensors above max_elements get three random directions instead of every element.
    x = away_from_zero((4, 50), np.random.default_rng(0))
    right = check_layer(F.relu_forward, F.relu_backward, {"x": x}, max_elements=10)
    wrong = check_layer(F.relu_forward, relu_backward_without_mask, {"x": x}, max_elements=10)
    assert right["x"][1] == wrong["x"][1] == "3 random directions"
    assert right["x"][0] < DEFAULT_TOLERANCE < 100 * DEFAULT_TOLERANCE < wrong["x"][0]


# --- the pieces -----------------------------------------------------------------------------

def test_numerical_gradient_of_a_known_function_restores_x():
    x = np.random.default_rng(0).standard_normal((3, 4))
    saved = x.copy()
    grad = numerical_gradient(lambda: float(np.sum(x ** 3)), x)
    np.testing.assert_allclose(grad, 3 * saved ** 2, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, saved)


def test_relative_error():
    a = np.array([1.0, -2.0, 4.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, a + [0.0, 0.0, 0.04]) == pytest.approx(0.04 / 4.04)   # max diff / max entry
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    # scaled by the largest entry, so a tiny entry's round-off does not fail a correct layer
    assert relative_error([1.0, 1e-12], [1.0, 2e-12]) < 1e-11


def test_check_gradients_needs_float64_and_matching_shapes():
    x32 = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="gradient checks need float64; x is float32"):
        check_gradients(lambda: 0.0, {"x": x32}, {"x": x32})
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"gradient of x has shape \(2,\), expected \(3,\)"):
        check_gradients(lambda: 0.0, {"x": x}, {"x": np.ones(2)})


def test_distinct_values_are_spaced_apart():
    x = distinct_values((2, 3, 5, 5), np.random.default_rng(0), spacing=1e-2)
    gaps = np.diff(np.sort(x.ravel()))
    assert x.shape == (2, 3, 5, 5) and np.min(gaps) >= 1e-2 * (1 - 1e-9)


def test_away_from_zero_keeps_a_margin():
    x = away_from_zero((1000,), np.random.default_rng(0), margin=0.1)
    assert np.min(np.abs(x)) >= 0.1
