"""Lesson 6: the fully connected layer (``functional/linear.py``).

    y = x @ w.T + b,   dx = dy @ w,   dw = dy.T @ x,   db = sum over the batch of dy

with w in PyTorch's (out, in) layout. A conv output (N, C, H, W) is flattened to (N, C*H*W)
in C, H, W order, and dx comes back in the 4-d shape: that is how fc6 reads pool5.

Checked: the forward pass equals a double loop over (n, o); the three gradients agree with
centred differences (float64, relative error below 1e-6) for random shapes, 2-d and 4-d
inputs; dtypes are kept, nothing is written into the arguments; bad shapes and dtypes raise
a ValueError naming the argument. Run with ``pytest -m linear``.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alexnet import functional as F
from minitorch_alexnet.gradcheck import check_layer

import reference as ref

pytestmark = pytest.mark.linear

DTYPES = [np.float32, np.float64]


@st.composite
def linear_cases(draw):
    """Batch 1-3, an input of shape (N, in) or (N, C, H, W), 1-6 outputs."""
    n = draw(st.integers(1, 3))
    if draw(st.booleans()):
        features = (draw(st.integers(1, 8)),)                                  # (N, in)
    else:
        features = tuple(draw(st.integers(1, 3)) for _ in range(3))            # (N, C, H, W)
    return dict(x_shape=(n,) + features, n_out=draw(st.integers(1, 6)), seed=draw(st.integers(0, 1000)))


def make_inputs(case, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["x_shape"]).astype(dtype)
    n_in = int(np.prod(case["x_shape"][1:]))
    return x, rng.standard_normal((case["n_out"], n_in)).astype(dtype), rng.standard_normal(case["n_out"]).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=linear_cases())
def test_forward_matches_reference(case, dtype):
    x, w, b = make_inputs(case, dtype)
    y, _ = F.linear_forward(x, w, b)
    assert y.dtype == dtype and y.shape == (x.shape[0], w.shape[0])
    ref.assert_close(y, ref.linear(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)))


@given(linear_cases())
def test_gradients(case):
    x, w, b = make_inputs(case)
    ref.assert_gradients_pass(check_layer(F.linear_forward, F.linear_backward, {"x": x, "w": w, "b": b},
                                          seed=case["seed"]))


def test_flattens_in_channel_height_width_order():
    # fc6 reads pool5 (N, 256, 6, 6) as 9216 features, channel by channel, row by row.
    x = np.arange(2 * 2 * 2 * 3, dtype=np.float64).reshape(2, 2, 2, 3)
    w = np.eye(12)
    y, cache = F.linear_forward(x, w, np.zeros(12))
    np.testing.assert_array_equal(y, x.reshape(2, 12))
    dx, _, _ = F.linear_backward(np.ones((2, 12)), cache)
    assert dx.shape == x.shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_keeps_dtype_and_never_writes_into_arguments(dtype):
    x, w, b = make_inputs(dict(x_shape=(3, 2, 2, 2), n_out=5, seed=0), dtype)
    dy = np.random.default_rng(1).standard_normal((3, 5)).astype(dtype)
    saved = [a.copy() for a in (x, w, b, dy)]
    y, cache = F.linear_forward(x, w, b)
    dx, dw, db = F.linear_backward(dy, cache)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    for before, after in zip(saved, (x, w, b, dy)):
        np.testing.assert_array_equal(before, after)


# --- bad arguments --------------------------------------------------------------------------

def test_feature_mismatch_names_x_and_w_with_both_shapes():
    x, w, b = np.zeros((2, 7)), np.zeros((3, 8)), np.zeros(3)
    with pytest.raises(ValueError, match=r"x has 7 features per sample \(shape \(2, 7\)\) but w expects 8 "
                                         r"\(w shape \(3, 8\)\)"):
        F.linear_forward(x, w, b)


def test_wrong_ndim():
    with pytest.raises(ValueError, match=r"x must be \(N, in\) or \(N, \.\.\.\), got shape \(8,\)"):
        F.linear_forward(np.zeros(8), np.zeros((3, 8)), np.zeros(3))
    with pytest.raises(ValueError, match=r"w must be 2-d, got shape \(3, 8, 1\)"):
        F.linear_forward(np.zeros((2, 8)), np.zeros((3, 8, 1)), np.zeros(3))


def test_bias_length_names_b():
    with pytest.raises(ValueError, match=r"b must have shape \(3,\), got \(4,\)"):
        F.linear_forward(np.zeros((2, 8)), np.zeros((3, 8)), np.zeros(4))


@pytest.mark.parametrize("dtype", [np.int32, np.float16])
def test_non_float_input_names_x(dtype):
    with pytest.raises(ValueError, match=rf"x must have dtype float32 or float64, got {np.dtype(dtype)}"):
        F.linear_forward(np.zeros((2, 8), dtype), np.zeros((3, 8)), np.zeros(3))


def test_mixed_dtypes_name_the_odd_one():
    x = np.zeros((2, 8), np.float64)
    with pytest.raises(ValueError, match="w must have dtype float64"):
        F.linear_forward(x, np.zeros((3, 8), np.float32), np.zeros(3))


def test_dy_of_wrong_shape_or_dtype_names_dy():
    y, cache = F.linear_forward(np.zeros((2, 8)), np.zeros((3, 8)), np.zeros(3))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\), got \(2, 4\)"):
        F.linear_backward(np.zeros((2, 4)), cache)
    with pytest.raises(ValueError, match="dy must have dtype float64"):
        F.linear_backward(y.astype(np.float32), cache)
