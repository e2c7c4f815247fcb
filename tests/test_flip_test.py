"""--flip-test: each centre crop's softmax averaged with its mirror image's, against a naive
loop over the images that mirrors each one by hand."""
import numpy as np
import pytest

from minitorch_alexnet.evaluation import evaluate_batch
from minitorch_alexnet.model import AlexNet

pytestmark = pytest.mark.train


def naive_softmax(logits):
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def test_mirror_views_against_a_naive_loop():
    model = AlexNet(num_classes=10, preset="small", width=0.125, dtype=np.float64, seed=3, init="he")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 32, 32))
    labels = rng.integers(0, 10, 6)
    wrong1, wrong5, loss, scores = evaluate_batch(model, x, labels, "cpu", ten_crop=False,
                                                  mirror=True)
    expected_scores, losses = [], []
    for image, label in zip(x, labels):
        mirrored = np.empty_like(image)
        for column in range(32):                       # column j of the mirror is 31 - j
            mirrored[:, :, column] = image[:, :, 31 - column]
        p = (naive_softmax(model.forward(image[None], train=False)[0])
             + naive_softmax(model.forward(mirrored[None], train=False)[0])) / 2
        expected_scores.append(np.log(p + 1e-12))
        losses.append(-np.log(p[label] + 1e-12))
    expected_scores = np.array(expected_scores)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-10, atol=1e-12)
    assert loss == pytest.approx(np.mean(losses), rel=1e-10)
    ranks = [(expected_scores[i] > expected_scores[i, labels[i]]).sum() for i in range(6)]
    assert (wrong1, wrong5) == (sum(r >= 1 for r in ranks), sum(r >= 5 for r in ranks))
    # the mirror changes the answer: averaging over one view alone gives other scores
    _, _, _, centre = evaluate_batch(model, x, labels, "cpu", ten_crop=False)
    assert not np.allclose(np.exp(centre) / np.exp(centre).sum(1, keepdims=True),
                           np.exp(scores))
