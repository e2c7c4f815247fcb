"""Lesson 2: ReLU and tanh (``functional/activation.py``).

    ReLU:  y = max(0, x),  dx = dy * [x > 0]        (0 at the kink x = 0)
    tanh:  y = tanh(x),    dx = dy * (1 - y^2)

Checked: forward values against ``max(0, v)`` and ``math.tanh`` element by element; gradients
against centred differences (float64, relative error below 1e-6) with inputs kept away from
ReLU's kink, since a step of eps across x = 0 measures half a slope; the kink itself gives 0;
dtypes are kept and nothing is written into the arguments. Run with ``pytest -m relu``.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alexnet import functional as F
from minitorch_alexnet.gradcheck import away_from_zero, check_layer

import reference as ref

pytestmark = pytest.mark.relu

DTYPES = [np.float32, np.float64]
LAYERS = {
    "relu": (F.relu_forward, F.relu_backward, ref.relu),
    "tanh": (F.tanh_forward, F.tanh_backward, ref.tanh),
}

# any shape: 1-d to 4-d, each side 1-5
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=st.integers(0, 1000))
def test_forward_matches_reference(name, dtype, shape, seed):
    forward, _, reference = LAYERS[name]
    x = (3 * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)
    y, _ = forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    ref.assert_close(y, reference(x.astype(np.float64)))


@pytest.mark.parametrize("name", LAYERS)
@given(shape=shapes, seed=st.integers(0, 1000))
def test_gradients(name, shape, seed):
    forward, backward, _ = LAYERS[name]
    x = away_from_zero(shape, np.random.default_rng(seed))
    ref.assert_gradients_pass(check_layer(forward, backward, {"x": x}, seed=seed))


def test_relu_gradient_is_zero_at_the_kink_and_for_negative_inputs():
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0])
    y, cache = F.relu_forward(x)
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 1e-300, 3.0])
    np.testing.assert_array_equal(F.relu_backward(np.full(5, 5.0), cache), [0.0, 0.0, 0.0, 5.0, 5.0])


def test_tanh_saturates():
    # the reason ReLU trains faster: tanh's derivative vanishes for large |x|
    _, cache = F.tanh_forward(np.array([0.0, 3.0, 20.0]))
    dx = F.tanh_backward(np.ones(3), cache)
    assert dx[0] == 1.0 and dx[1] < 0.01 and dx[2] == 0.0


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_keeps_dtype_and_never_writes_into_arguments(name, dtype):
    forward, backward, _ = LAYERS[name]
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 3, 4, 4)).astype(dtype), rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    saved_x, saved_dy = x.copy(), dy.copy()
    y, cache = forward(x)
    dx = backward(dy, cache)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(x, saved_x)
    np.testing.assert_array_equal(dy, saved_dy)
    assert not np.shares_memory(dx, dy) and not np.shares_memory(y, x)


# --- bad arguments --------------------------------------------------------------------------

@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("dtype", [np.int64, np.float16])
def test_non_float_input_names_x(name, dtype):
    forward, _, _ = LAYERS[name]
    with pytest.raises(ValueError, match=rf"x must have dtype float32 or float64, got {np.dtype(dtype)}"):
        forward(np.zeros((2, 3), dtype))


@pytest.mark.parametrize("name", LAYERS)
def test_dy_of_wrong_shape_names_dy(name):
    forward, backward, _ = LAYERS[name]
    _, cache = forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\), got \(3, 2\)"):
        backward(np.ones((3, 2)), cache)


def test_tanh_dy_of_wrong_dtype_names_dy():
    _, cache = F.tanh_forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="dy must have dtype float64"):
        F.tanh_backward(np.ones((2, 3), np.float32), cache)
