"""Lesson 5: inverted dropout (``functional/dropout.py``, paper section 4.2).

``p`` is the probability of ZEROING a unit. While training

    keep ~ Bernoulli(1 - p),   y = x * keep / (1 - p),   dx = dy * keep / (1 - p)

so E[y] = x and the network needs no rescaling at test time, where y = x.

Checked, as statistics on 100,000 units: the fraction zeroed is p and the mean is preserved,
both within 4 standard errors (a correct layer fails such a test about once in 16,000 runs;
with fixed seeds, never). The mask is the same for the same int seed or the same Generator
state, the backward pass uses the forward pass's mask, p = 0 and p = 1 give no nan, and the
gradient (with the mask fixed by a seed) agrees with centred differences. Run with
``pytest -m dropout``.
"""
import numpy as np
import pytest

from minitorch_alexnet import functional as F
from minitorch_alexnet.gradcheck import check_layer

import reference as ref

pytestmark = pytest.mark.dropout

DTYPES = [np.float32, np.float64]
UNITS = 100_000


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_fraction_zeroed_is_p(p):
    y, _ = F.dropout_forward(np.ones(UNITS), p, training=True, rng=0)
    standard_error = np.sqrt(p * (1 - p) / UNITS)
    assert abs(np.mean(y == 0) - p) < 4 * standard_error


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mean_is_preserved_by_the_inverted_scaling(p):
    # y is 0 with probability p and 1/(1-p) otherwise: mean 1, variance p/(1-p)
    y, _ = F.dropout_forward(np.ones(UNITS), p, training=True, rng=1)
    standard_error = np.sqrt(p / (1 - p) / UNITS)
    assert abs(y.mean() - 1.0) < 4 * standard_error
    np.testing.assert_allclose(np.unique(y), [0.0, 1.0 / (1.0 - p)], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_when_not_training(dtype):
    x = np.random.default_rng(0).standard_normal((4, 10)).astype(dtype)
    y, cache = F.dropout_forward(x, 0.5, training=False, rng=0)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == dtype and not np.shares_memory(y, x)
    dy = np.ones_like(x)
    dx = F.dropout_backward(dy, cache)
    np.testing.assert_array_equal(dx, dy)
    assert not np.shares_memory(dx, dy)


def test_same_int_seed_gives_the_same_mask():
    x = np.ones((50, 40))
    a, _ = F.dropout_forward(x, 0.5, rng=123)
    b, _ = F.dropout_forward(x, 0.5, rng=123)
    c, _ = F.dropout_forward(x, 0.5, rng=124)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mask_is_reproducible_from_a_generator_state():
    x = np.ones((50, 40))
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    first, _ = F.dropout_forward(x, 0.5, rng=rng)
    second, _ = F.dropout_forward(x, 0.5, rng=rng)     # the generator moved on: a new mask
    assert not np.array_equal(first, second)
    rng.bit_generator.state = state                    # rewind
    again, _ = F.dropout_forward(x, 0.5, rng=rng)
    np.testing.assert_array_equal(first, again)
    # the documented rule: keep where rng.random(x.shape) >= p
    keep = np.random.default_rng(7).random(x.shape) >= 0.5
    np.testing.assert_array_equal(first, keep * 2.0)


def test_backward_uses_the_forward_mask():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 30)) + 5.0     # no zeros in x, so y == 0 marks a dropped unit
    y, cache = F.dropout_forward(x, 0.3, rng=rng)
    dy = rng.standard_normal(x.shape)
    dx = F.dropout_backward(dy, cache)
    np.testing.assert_array_equal(dx == 0, y == 0)
    np.testing.assert_allclose(dx, dy * y / x, rtol=1e-14)


def test_p_zero_is_the_identity():
    x = np.random.default_rng(0).standard_normal((5, 5))
    y, cache = F.dropout_forward(x, 0.0, training=True, rng=0)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(F.dropout_backward(np.ones((5, 5)), cache), 1.0)


def test_p_one_zeroes_everything_without_nan():
    x = np.random.default_rng(0).standard_normal((5, 5))
    y, cache = F.dropout_forward(x, 1.0, training=True, rng=0)
    dx = F.dropout_backward(np.ones((5, 5)), cache)
    np.testing.assert_array_equal(y, 0.0)
    np.testing.assert_array_equal(dx, 0.0)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_gradients_with_a_fixed_mask(p):
    # an int seed draws the same mask on every forward call, so the function is fixed
    x = np.random.default_rng(0).standard_normal((4, 3, 5))
    ref.assert_gradients_pass(check_layer(F.dropout_forward, F.dropout_backward, {"x": x},
                                          p=p, training=True, rng=11))


@pytest.mark.parametrize("dtype", DTYPES)
def test_keeps_dtype_and_never_writes_into_arguments(dtype):
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((6, 8)).astype(dtype), rng.standard_normal((6, 8)).astype(dtype)
    saved_x, saved_dy = x.copy(), dy.copy()
    y, cache = F.dropout_forward(x, 0.5, rng=3)
    dx = F.dropout_backward(dy, cache)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(x, saved_x)
    np.testing.assert_array_equal(dy, saved_dy)


# --- bad arguments --------------------------------------------------------------------------

@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_p_outside_zero_one(p):
    with pytest.raises(ValueError, match=r"p \(the probability of zeroing\) must be in \[0, 1\]"):
        F.dropout_forward(np.ones(4), p)


@pytest.mark.parametrize("dtype", [np.int64, np.float16])
def test_non_float_input_names_x(dtype):
    with pytest.raises(ValueError, match=rf"x must have dtype float32 or float64, got {np.dtype(dtype)}"):
        F.dropout_forward(np.ones(4, dtype), 0.5)


def test_rng_of_the_wrong_kind_names_rng():
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator, KeyedUniforms, an int seed or None"):
        F.dropout_forward(np.ones(4), 0.5, rng="seven")


def test_dy_of_wrong_shape_names_dy():
    _, cache = F.dropout_forward(np.ones((2, 3)), 0.5, rng=0)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\), got \(3, 2\)"):
        F.dropout_backward(np.ones((3, 2)), cache)


def test_keyed_uniforms_depend_on_the_row_key_only():
    """Row n of a keyed draw is a function of (seed, key n): the same in any batch, any order,
    and a slice of units is that slice of the whole layer's draw."""
    whole = F.KeyedUniforms((5, 2, 6), [10, 11, 12]).random((3, 8))
    alone = F.KeyedUniforms((5, 2, 6), [12, 10]).random((2, 8))
    np.testing.assert_array_equal(alone, whole[[2, 0]])
    right_half = F.KeyedUniforms((5, 2, 6), [11], first_unit=4, total_units=8).random((1, 4))
    np.testing.assert_array_equal(right_half, whole[[1], 4:])
    other_seed = F.KeyedUniforms((6, 2, 6), [10, 11, 12]).random((3, 8))
    assert not np.array_equal(other_seed, whole)
    assert whole.min() >= 0.0 and whole.max() < 1.0


def test_keyed_uniforms_give_dropout_masks_and_name_bad_keys():
    x = np.ones((3, 8))
    y, cache = F.dropout_forward(x, 0.5, rng=F.KeyedUniforms((1,), [0, 1, 2]))
    keep = F.KeyedUniforms((1,), [0, 1, 2]).random((3, 8)) >= 0.5
    np.testing.assert_array_equal(y, 2.0 * keep)
    with pytest.raises(ValueError, match="row_keys must be non-negative"):
        F.KeyedUniforms((1,), [-1])
    with pytest.raises(ValueError, match="N = 2 row keys"):
        F.dropout_forward(x, 0.5, rng=F.KeyedUniforms((1,), [0, 1]))
