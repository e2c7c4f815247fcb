"""--flip-test: each centre crop's softmax averaged with its mirror image's, against a naive
loop over the images that mirrors each one by hand."""
import numpy as np
import pytest

from minitorch_alexnet.data import ArrayDataset, Preprocess
from minitorch_alexnet.evaluation import (CENTRE, VIEWS, evaluate, evaluate_batch, evaluate_views,
                                          evaluation_loader)
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


def test_one_pass_of_ten_views_scores_the_centre_and_its_mirror_as_their_own_passes():
    """The final report scores the centre crop, the centre with its mirror image and the ten
    views from one ten-view pass (``evaluate_views``); each must equal its own pass, and the
    ten views' average a naive loop over the ten crops of each image."""
    model = AlexNet(num_classes=10, preset="small", width=0.125, dtype=np.float64, seed=3,
                    init="he")
    rng = np.random.default_rng(1)
    stored = model.input_size + 4
    data = ArrayDataset(rng.integers(0, 256, (7, stored, stored, 3), dtype=np.uint8),
                        rng.integers(0, 10, 7), [str(k) for k in range(10)])
    preprocess = Preprocess(model.input_size, stored, mean=rng.uniform(0, 255, 3))

    def loader(ten_crop):
        return evaluation_loader(data, preprocess, 30 if ten_crop else 3, ten_crop=ten_crop,
                                 workers=0)
    views = evaluate_views(model, loader(True), "cpu", {"centre": [CENTRE], "ten": range(VIEWS),
                           "mirror": [CENTRE, CENTRE + 5]}, confusion=True)
    separate = {"centre": evaluate(model, loader(False), "cpu", confusion=True),
                "mirror": evaluate(model, loader(False), "cpu", mirror=True, confusion=True)}
    for name, expected in separate.items():
        assert views[name]["count"] == expected["count"] == 7
        assert views[name]["loss"] == pytest.approx(expected["loss"], rel=1e-10)
        assert (views[name]["top1_error"], views[name]["top5_error"]) == \
            (expected["top1_error"], expected["top5_error"])
        assert np.array_equal(views[name]["confusion"], expected["confusion"])
    # the ten views, image by image: corners, centre, then the same five mirrored
    losses = []
    for index in range(len(data)):
        image, label = data.load(index)[0], data.labels[index]
        x = (image.astype(np.float64) - preprocess.mean) / 255      # scale=True: 0..255 -> 0..1
        p = 0
        offset = (stored - model.input_size) // 2
        for top, left in [(0, 0), (0, 4), (4, 0), (4, 4), (offset, offset)]:
            crop = x[top:top + model.input_size, left:left + model.input_size].transpose(2, 0, 1)
            for view in (crop, crop[:, :, ::-1]):
                p = p + naive_softmax(model.forward(np.ascontiguousarray(view)[None],
                                                    train=False)[0]) / VIEWS
        losses.append(-np.log(p[label] + 1e-12))
    assert views["ten"]["loss"] == pytest.approx(np.mean(losses), rel=1e-6)
