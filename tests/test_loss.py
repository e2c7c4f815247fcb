"""Lesson 6: softmax cross-entropy (``functional/loss.py``).

For logits z (N, K) and labels t (N,):

    loss = (1/N) * sum_n (logsumexp(z[n]) - z[n, t[n]]),   dz = (softmax(z) - onehot(t)) / N

with logsumexp(z) = max(z) + log(sum exp(z - max(z))), so that no exponent is positive.

Checked: loss and gradient against a loop with math.exp and math.log; stability for logits
of magnitude 1e4, where exp(1e4) overflows to inf and a naive formula gives nan ([1e4, 0]
with label 0 costs ~0, with label 1 ~1e4); every row of dz sums to 0 (softmax sums to 1,
the one-hot to 1); the loss is a mean over the batch (a batch repeated twice has the same
loss); the gradient agrees with centred differences. Labels must be integers in [0, K-1].
Run with ``pytest -m loss``.
"""
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alexnet import functional as F
from minitorch_alexnet.gradcheck import check_gradients, check_softmax_cross_entropy

import reference as ref

pytestmark = pytest.mark.loss

DTYPES = [np.float32, np.float64]


@st.composite
def loss_cases(draw, scales=(0.1, 1.0, 10.0, 100.0)):
    """Batch 1-5, 1-10 classes, logits of one of the ``scales``, random labels."""
    n, k = draw(st.integers(1, 5)), draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    logits = rng.standard_normal((n, k)) * draw(st.sampled_from(scales))
    return logits, rng.integers(0, k, size=n)


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=loss_cases())
def test_matches_reference(case, dtype):
    logits, labels = case
    logits = logits.astype(dtype)
    loss, dlogits = F.softmax_cross_entropy(logits, labels)
    expected_loss, expected_dlogits = ref.softmax_cross_entropy(logits.astype(np.float64), labels)
    assert loss.dtype == dlogits.dtype == dtype and loss.shape == ()
    ref.assert_close(loss, expected_loss, scale_at_least=1.0)   # the loss can be ~0
    # entries of dz are probabilities minus 0 or 1, over N: judge them on the scale 1/N, since
    # p - 1 for a nearly certain right answer is all round-off
    ref.assert_close(dlogits, expected_dlogits, scale_at_least=1.0 / len(labels))


@given(loss_cases())
def test_rows_of_the_gradient_sum_to_zero(case):
    logits, labels = case
    _, dlogits = F.softmax_cross_entropy(logits, labels)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-14)


@given(loss_cases(scales=(0.1, 1.0, 3.0)))
def test_gradients(case):
    # Moderate logits: when one class takes nearly all the probability, every entry of dz is
    # tiny and the centred difference's round-off, not the gradient, sets the relative error.
    logits, labels = case
    ref.assert_gradients_pass(check_softmax_cross_entropy(logits, labels))


@pytest.mark.parametrize("dtype", DTYPES)
def test_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, 0.0], [1e4, 0.0], [-1e4, 1e4]], dtype=dtype)
    for labels, expected in [([0, 0, 1], 0.0), ([1, 1, 0], 1e4 * 4 / 3)]:
        loss, dlogits = F.softmax_cross_entropy(logits, np.array(labels))
        assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
        # label 0 of [1e4, 0]: -log softmax = log(1 + e^-1e4) ~ 0; label 1: 1e4.
        # The third row's correct label costs ~0, its wrong one 2e4: mean (1e4+1e4+2e4)/3.
        assert float(loss) == pytest.approx(expected, abs=1e-3, rel=1e-6)
        np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-6)
    _, dlogits = F.softmax_cross_entropy(np.array([[1e4, 0.0]], dtype), np.array([1]))
    np.testing.assert_allclose(dlogits, [[1.0, -1.0]])


def test_single_examples():
    loss, _ = F.softmax_cross_entropy(np.array([[1e4, 0.0]]), np.array([0]))
    assert float(loss) == pytest.approx(0.0, abs=1e-300)
    loss, _ = F.softmax_cross_entropy(np.array([[1e4, 0.0]]), np.array([1]))
    assert float(loss) == pytest.approx(1e4, rel=1e-15)
    # uniform logits: every class has probability 1/K, the loss is log K
    loss, dlogits = F.softmax_cross_entropy(np.zeros((1, 4)), np.array([2]))
    assert float(loss) == pytest.approx(np.log(4), rel=1e-15)
    np.testing.assert_allclose(dlogits, [[0.25, 0.25, -0.75, 0.25]], rtol=1e-15)


def test_loss_is_a_mean_over_the_batch():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((3, 5)), np.array([0, 4, 2])
    loss, dlogits = F.softmax_cross_entropy(logits, labels)
    loss2, dlogits2 = F.softmax_cross_entropy(np.concatenate([logits, logits]), np.concatenate([labels, labels]))
    assert float(loss2) == pytest.approx(float(loss), rel=1e-14)
    np.testing.assert_allclose(dlogits2[:3], dlogits / 2, rtol=1e-14)
    per_row = [float(F.softmax_cross_entropy(logits[i:i + 1], labels[i:i + 1])[0]) for i in range(3)]
    assert float(loss) == pytest.approx(np.mean(per_row), rel=1e-14)


def test_softmax_rows_sum_to_one_and_are_stable():
    p = F.softmax(np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_never_writes_into_arguments(dtype):
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((4, 6)).astype(dtype), np.array([0, 5, 2, 2])
    saved_logits, saved_labels = logits.copy(), labels.copy()
    F.softmax_cross_entropy(logits, labels)
    np.testing.assert_array_equal(logits, saved_logits)
    np.testing.assert_array_equal(labels, saved_labels)


# --- bad arguments --------------------------------------------------------------------------

@pytest.mark.parametrize("labels", [[0, 3], [-1, 0]])
def test_labels_out_of_range(labels):
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array(labels))


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0]), np.array([True, False])])
def test_labels_must_be_integers(labels):
    with pytest.raises(ValueError, match="labels must be integer class indices"):
        F.softmax_cross_entropy(np.zeros((2, 3)), labels)


@pytest.mark.parametrize("shape", [(3,), (2, 1)])
def test_labels_of_the_wrong_shape(shape):
    with pytest.raises(ValueError, match=rf"labels must have shape \(2,\) to match logits \(2, 3\), "
                                         + re.escape(f"got {shape}")):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.zeros(shape, np.int64))


def test_logits_must_be_2d_floats():
    with pytest.raises(ValueError, match=r"logits must be 2-d, got shape \(3,\)"):
        F.softmax_cross_entropy(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match="logits must have dtype float32 or float64, got int64"):
        F.softmax_cross_entropy(np.zeros((2, 3), np.int64), np.array([0, 1]))
    with pytest.raises(ValueError, match="logits must have dtype float32 or float64, got float16"):
        F.softmax_cross_entropy(np.zeros((2, 3), np.float16), np.array([0, 1]))


# ---- label smoothing ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=loss_cases(), smoothing=st.sampled_from([0.05, 0.1, 0.3]))
def test_label_smoothing_matches_reference(case, dtype, smoothing):
    logits, labels = case
    logits = logits.astype(dtype)
    loss, dlogits = F.softmax_cross_entropy(logits, labels, smoothing=smoothing)
    expected_loss, expected_dlogits = ref.softmax_cross_entropy(logits.astype(np.float64), labels,
                                                                smoothing)
    assert loss.dtype == dlogits.dtype == dtype and loss.shape == ()
    ref.assert_close(loss, expected_loss, scale_at_least=1.0)
    ref.assert_close(dlogits, expected_dlogits, scale_at_least=1.0 / len(labels))


@given(loss_cases(scales=(0.1, 1.0, 3.0)))
def test_label_smoothing_gradients(case):
    """float64 against centred differences of the smoothed loss."""
    logits, labels = case
    logits = logits.astype(np.float64)
    _, dlogits = F.softmax_cross_entropy(logits, labels, smoothing=0.1)
    results = check_gradients(lambda: float(F.softmax_cross_entropy(logits, labels, smoothing=0.1)[0]),
                              {"logits": logits}, {"logits": dlogits})
    ref.assert_gradients_pass(results)


def test_label_smoothing_bounds():
    logits, labels = np.zeros((2, 4)), np.array([0, 3])
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="smoothing must be in"):
            F.softmax_cross_entropy(logits, labels, smoothing=bad)
    # equal logits: p = 1/4, so the loss is -sum_k q[k] log(1/4) = log 4 whatever eps, and
    # dz = (p - q) / N with q = 0.8 + 0.05 at the label, 0.05 elsewhere
    loss, dlogits = F.softmax_cross_entropy(logits, labels, smoothing=0.2)
    assert float(loss) == pytest.approx(np.log(4))
    np.testing.assert_allclose(dlogits, [[-0.3, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, -0.3]], atol=1e-15)
