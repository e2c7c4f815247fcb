"""Lesson 3: local response normalization (``functional/lrn.py``, paper section 3.3).

    s[c] = k + alpha * sum_{j = max(0, c - size//2)}^{min(C-1, c + (size-1)//2)} a[j]^2
    b[c] = a[c] * s[c]^(-beta)

alpha is used as the paper writes it (PyTorch and Caffe divide it by size).

Checked: the forward pass equals a loop over channels and their clipped windows, for window
sizes 1 to 5 (even sizes have a lopsided window), channel counts below the window size, and
both the paper's alpha = 1e-4 and a large alpha = 1. The large alpha matters: with
alpha = 1e-4 the neighbours change s by about 1e-4, so LRN is nearly x / k^beta and a
forward or backward with the wrong window still comes close to passing. Gradients agree with
centred differences (float64, relative error below 1e-6) in the same settings. dtypes are
kept, nothing is written into the arguments, bad arguments raise a ValueError naming them.
Run with ``pytest -m lrn``.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alexnet import functional as F
from minitorch_alexnet.gradcheck import check_layer

import reference as ref

pytestmark = pytest.mark.lrn

DTYPES = [np.float32, np.float64]
PAPER = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
LARGE_ALPHA = dict(size=5, alpha=1.0, beta=0.75, k=1.0)


@st.composite
def lrn_cases(draw):
    """Batch 1-3, channels 1-8, 1-4 pixels a side, window 1-5, the paper's or a large alpha."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    options = dict(size=draw(st.integers(1, 5)),
                   alpha=draw(st.sampled_from([1e-4, 0.1, 1.0])),
                   beta=draw(st.sampled_from([0.75, 0.5])),
                   k=draw(st.sampled_from([2.0, 1.0])))
    return shape, options, draw(st.integers(0, 1000))


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=lrn_cases())
def test_forward_matches_reference(case, dtype):
    shape, options, seed = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    y, _ = F.lrn_forward(x, **options)
    assert y.dtype == dtype and y.shape == x.shape
    ref.assert_close(y, ref.lrn(x.astype(np.float64), **options))


@given(lrn_cases())
def test_gradients(case):
    shape, options, seed = case
    x = np.random.default_rng(seed).standard_normal(shape)
    ref.assert_gradients_pass(check_layer(F.lrn_forward, F.lrn_backward, {"x": x}, seed=seed, **options))


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("alpha", [1e-4, 1.0])
def test_window_sizes_and_few_channels(size, channels, alpha):
    # channels < size: every window is clipped at one end or both
    options = dict(size=size, alpha=alpha, beta=0.75, k=1.0)
    x = np.random.default_rng(size * 10 + channels).standard_normal((2, channels, 2, 3))
    y, _ = F.lrn_forward(x, **options)
    ref.assert_close(y, ref.lrn(x, **options))
    ref.assert_gradients_pass(check_layer(F.lrn_forward, F.lrn_backward, {"x": x}, **options))


@pytest.mark.parametrize("options", [PAPER, LARGE_ALPHA], ids=["paper constants", "large alpha"])
def test_alexnet_configuration(options):
    # conv1's LRN at a reduced size: 8 channels instead of 96, after a ReLU (non-negative)
    x = np.maximum(np.random.default_rng(0).standard_normal((2, 8, 3, 3)) * 3, 0)
    y, _ = F.lrn_forward(x, **options)
    ref.assert_close(y, ref.lrn(x, **options))
    ref.assert_gradients_pass(check_layer(F.lrn_forward, F.lrn_backward, {"x": x}, **options))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_which_channels_a_channel_normalises(size):
    # Raise channel j alone: exactly the channels c whose window holds j change, i.e.
    # c - size//2 <= j <= c + (size-1)//2, i.e. c in [j - (size-1)//2, j + size//2].
    channels, j = 9, 4
    x = np.ones((1, channels, 1, 1))
    base, _ = F.lrn_forward(x, size=size, alpha=1.0, beta=0.75, k=1.0)
    x[0, j] = 10.0
    bumped, _ = F.lrn_forward(x, size=size, alpha=1.0, beta=0.75, k=1.0)
    changed = [c for c in range(channels) if c != j and bumped[0, c, 0, 0] != base[0, c, 0, 0]]
    expected = [c for c in range(j - (size - 1) // 2, j + size // 2 + 1) if c != j]
    assert changed == expected


def test_alpha_is_not_divided_by_size():
    # one channel: s = k + alpha * a^2 whatever the window size
    a = 3.0
    y, _ = F.lrn_forward(np.full((1, 1, 1, 1), a), size=5, alpha=0.1, beta=0.75, k=2.0)
    assert y.item() == pytest.approx(a / (2.0 + 0.1 * a * a) ** 0.75, rel=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_keeps_dtype_and_never_writes_into_arguments(dtype):
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 6, 3, 3)).astype(dtype), rng.standard_normal((2, 6, 3, 3)).astype(dtype)
    saved_x, saved_dy = x.copy(), dy.copy()
    y, cache = F.lrn_forward(x, **LARGE_ALPHA)
    dx = F.lrn_backward(dy, cache)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(x, saved_x)
    np.testing.assert_array_equal(dy, saved_dy)


# --- bad arguments --------------------------------------------------------------------------

def test_wrong_ndim_names_x():
    with pytest.raises(ValueError, match=r"x must be 4-d, got shape \(2, 6\)"):
        F.lrn_forward(np.ones((2, 6)))


@pytest.mark.parametrize("size", [0, -1, 2.5])
def test_size_must_be_a_positive_integer(size):
    with pytest.raises(ValueError, match="size must be a positive integer"):
        F.lrn_forward(np.ones((1, 6, 2, 2)), size=size)


@pytest.mark.parametrize("dtype", [np.int64, np.float16])
def test_non_float_input_names_x(dtype):
    with pytest.raises(ValueError, match=rf"x must have dtype float32 or float64, got {np.dtype(dtype)}"):
        F.lrn_forward(np.ones((1, 6, 2, 2), dtype))


def test_dy_of_wrong_shape_or_dtype_names_dy():
    _, cache = F.lrn_forward(np.ones((1, 6, 2, 2)))
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 6, 2, 2\), got \(1, 5, 2, 2\)"):
        F.lrn_backward(np.ones((1, 5, 2, 2)), cache)
    with pytest.raises(ValueError, match="dy must have dtype float64"):
        F.lrn_backward(np.ones((1, 6, 2, 2), np.float32), cache)
