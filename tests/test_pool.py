"""Lesson 4: max-pooling (``functional/pooling.py``, paper section 3.4).

    y[n, c, oh, ow] = max_{i, j < size} x_pad[n, c, oh*stride + i, ow*stride + j]

with x padded by -inf, so padding is never the maximum. Backward sends each window's gradient
to its maximum; on a tie, to the first maximum in row-major window order.

Checked: forward and backward against a loop over windows, for random shapes, window sizes,
strides and pads, including AlexNet's overlapping 3/2 and the non-overlapping 2/2. The
backward comparison uses inputs full of ties (a few distinct integers), so the tie rule is
tested too. Gradients agree with centred differences (float64, relative error below 1e-6) on
inputs with DISTINCT values (``gradcheck.distinct_values``): with a tie, or two values closer
than eps, a step of eps can change which element is the maximum and the difference quotient
measures a different function. An all-negative padded input never yields 0. dtypes are kept,
nothing is written into the arguments, bad arguments raise a ValueError naming them.
Run with ``pytest -m pool``.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alexnet import functional as F
from minitorch_alexnet.gradcheck import check_layer, distinct_values

import reference as ref

pytestmark = pytest.mark.pool

DTYPES = [np.float32, np.float64]


@st.composite
def pool_cases(draw):
    """Batch 1-3, channels 1-4, sides 1-9, window 1-5 fitting the padded input, stride 1-3,
    pad 0 .. min(2, size//2)."""
    size = draw(st.integers(1, 5))
    pad = draw(st.integers(0, min(2, size // 2)))
    h = draw(st.integers(max(1, size - 2 * pad), 9))     # the window must fit
    w = draw(st.integers(max(1, size - 2 * pad), 9))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), h, w)
    return shape, dict(size=size, stride=draw(st.integers(1, 3)), pad=pad), draw(st.integers(0, 1000))


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=pool_cases())
def test_forward_matches_reference(case, dtype):
    shape, options, seed = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    y, _ = F.max_pool2d_forward(x, **options)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ref.max_pool2d(x, **options))   # a max is exact


@given(pool_cases())
def test_backward_matches_reference_with_ties(case):
    shape, options, seed = case
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=shape).astype(np.float64)    # many ties in every window
    y, cache = F.max_pool2d_forward(x, **options)
    dy = rng.integers(1, 10, size=y.shape).astype(np.float64)  # integers: sums are exact
    np.testing.assert_array_equal(F.max_pool2d_backward(dy, cache),
                                  ref.max_pool2d_backward(dy, x, **options))


@given(pool_cases())
def test_gradients(case):
    shape, options, seed = case
    x = distinct_values(shape, np.random.default_rng(seed))
    ref.assert_gradients_pass(check_layer(F.max_pool2d_forward, F.max_pool2d_backward, {"x": x},
                                          seed=seed, **options))


@pytest.mark.parametrize("size, stride, pad", [(3, 2, 0), (2, 2, 0), (3, 2, 1), (2, 2, 1)],
                         ids=["AlexNet 3/2 overlapping", "2/2", "3/2 pad 1", "2/2 pad 1"])
def test_alexnet_and_non_overlapping_pooling(size, stride, pad):
    x = distinct_values((2, 3, 7, 7), np.random.default_rng(size + pad))
    y, _ = F.max_pool2d_forward(x, size, stride, pad)
    np.testing.assert_array_equal(y, ref.max_pool2d(x, size, stride, pad))
    ref.assert_gradients_pass(check_layer(F.max_pool2d_forward, F.max_pool2d_backward, {"x": x},
                                          size=size, stride=stride, pad=pad))


@pytest.mark.parametrize("side, pooled", [(55, 27), (27, 13), (13, 6)])
def test_alexnet_output_sizes(side, pooled):
    y, _ = F.max_pool2d_forward(np.zeros((1, 1, side, side), np.float32), 3, 2)
    assert y.shape == (1, 1, pooled, pooled)


def test_overlapping_windows_add_up_at_a_shared_maximum():
    # 3/2 pooling of a 5x5 image: the centre pixel lies in all four windows. Make it the
    # largest value and it receives all four gradients.
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    _, cache = F.max_pool2d_forward(x, 3, 2)
    dx = F.max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    assert dx[0, 0, 2, 2] == 10.0 and np.count_nonzero(dx) == 1


def test_padding_is_minus_infinity():
    # With zero padding an all-negative input would give 0 at the border; -inf never wins.
    x = -1.0 - np.random.default_rng(0).random((2, 3, 4, 4))
    for size, stride, pad in [(3, 2, 1), (2, 2, 1), (3, 1, 1), (5, 3, 2)]:
        y, cache = F.max_pool2d_forward(x, size, stride, pad)
        assert np.all(y < 0) and np.all(np.isfinite(y))
        np.testing.assert_array_equal(y, ref.max_pool2d(x, size, stride, pad))
        dx = F.max_pool2d_backward(np.ones_like(y), cache)
        assert dx.sum() == y.size   # every window's gradient landed on a real pixel


def test_a_tie_routes_the_whole_gradient_to_the_first_maximum():
    # A 3x3 window of equal values: the first element in row-major order, (0, 0), takes all.
    x = np.full((1, 1, 3, 3), 2.0)
    _, cache = F.max_pool2d_forward(x, 3, 2)
    dx = F.max_pool2d_backward(np.full((1, 1, 1, 1), 5.0), cache)
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 0, 0] = 5.0
    np.testing.assert_array_equal(dx, expected)
    # A tie later in the window: values 1 at (0, 2) and (2, 0); (0, 2) comes first.
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 0, 2] = x[0, 0, 2, 0] = 1.0
    _, cache = F.max_pool2d_forward(x, 3, 2)
    dx = F.max_pool2d_backward(np.full((1, 1, 1, 1), 5.0), cache)
    assert dx[0, 0, 0, 2] == 5.0 and dx[0, 0, 2, 0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_keeps_dtype_and_never_writes_into_arguments(dtype):
    rng = np.random.default_rng(0)
    x = distinct_values((2, 3, 7, 7), rng).astype(dtype)
    dy = rng.standard_normal((2, 3, 3, 3)).astype(dtype)
    saved_x, saved_dy = x.copy(), dy.copy()
    y, cache = F.max_pool2d_forward(x, 3, 2)
    dx = F.max_pool2d_backward(dy, cache)
    assert y.dtype == dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_array_equal(x, saved_x)
    np.testing.assert_array_equal(dy, saved_dy)


# --- bad arguments --------------------------------------------------------------------------

def test_wrong_ndim_names_x():
    with pytest.raises(ValueError, match=r"x must be 4-d, got shape \(3, 7, 7\)"):
        F.max_pool2d_forward(np.zeros((3, 7, 7)))


@pytest.mark.parametrize("dtype", [np.int64, np.float16])
def test_non_float_input_names_x(dtype):
    with pytest.raises(ValueError, match=rf"x must have dtype float32 or float64, got {np.dtype(dtype)}"):
        F.max_pool2d_forward(np.zeros((1, 1, 7, 7), dtype))


@pytest.mark.parametrize("size, pad", [(3, 2), (2, 2), (1, 1)])
def test_pad_more_than_half_the_window(size, pad):
    # a window lying wholly in the padding would have no maximum
    with pytest.raises(ValueError, match=rf"pad must be at most size//2 = {size // 2}.*got pad={pad}"):
        F.max_pool2d_forward(np.zeros((1, 1, 7, 7)), size, 1, pad)


@pytest.mark.parametrize("size", [0, -3, 2.0])
def test_size_must_be_a_positive_integer(size):
    with pytest.raises(ValueError, match="size must be a positive integer"):
        F.max_pool2d_forward(np.zeros((1, 1, 7, 7)), size, 1)


def test_window_that_does_not_fit_and_bad_stride():
    with pytest.raises(ValueError, match="window 3 does not fit in input of size 2 with pad 0"):
        F.max_pool2d_forward(np.zeros((1, 1, 2, 2)), 3, 2)
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        F.max_pool2d_forward(np.zeros((1, 1, 7, 7)), 3, 0)


def test_dy_of_wrong_shape_names_dy():
    _, cache = F.max_pool2d_forward(np.zeros((1, 2, 7, 7)), 3, 2)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 2, 3, 3\), got \(1, 2, 4, 4\)"):
        F.max_pool2d_backward(np.zeros((1, 2, 4, 4)), cache)


def test_windows_wider_than_255_pixels():
    # the window offsets i*, j* are kept in one byte up to size 255 and in 4 bytes beyond
    x = np.random.default_rng(7).standard_normal((1, 2, 258, 259))
    y, cache = F.max_pool2d_forward(x, 257, 1)
    np.testing.assert_array_equal(y, ref.max_pool2d(x, 257, 1))
    dy = np.arange(1.0, 1.0 + y.size).reshape(y.shape)
    np.testing.assert_array_equal(F.max_pool2d_backward(dy, cache), ref.max_pool2d_backward(dy, x, 257, 1))
