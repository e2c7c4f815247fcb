"""Random erasing (``Preprocess(erase=p)``, ``data/erasing.py``): the draws of a run without
it are unchanged, the batch path equals the one-image reference and a naive pixel loop, the
boxes follow torchvision's distribution and stay inside the crop, evaluation never erases,
and the setting survives a checkpoint."""
import numpy as np
import pytest

from minitorch_alexnet.data import ArrayDataset, DataLoader, Preprocess
from minitorch_alexnet.data.erasing import ERASE_RATIO, ERASE_SCALE, random_erase_boxes
from minitorch_alexnet.data.transforms import AugmentationDraws
from minitorch_alexnet.run_state import PREPROCESS, SavedRun, preprocess_from_checkpoint

from helpers_data import random_preprocess

pytestmark = pytest.mark.data


def make_preprocess(rng, channels, mean_kind, pca, crop_size, stored_size, erase, **kwargs):
    """``helpers_data.random_preprocess`` with erasing probability ``erase``."""
    return random_preprocess(rng, channels, mean_kind, pca, crop_size, stored_size, erase=erase,
                             **kwargs)


def todays_draws(prep, n, rng):
    """``Preprocess.draw`` as it was before random erasing, written out: n tops, n lefts, n
    flip coins, then the n x k colour-shift ``a_i``."""
    span = prep.stored_size - prep.crop_size + 1
    tops, lefts = rng.integers(0, span, size=n), rng.integers(0, span, size=n)
    mirrors = (rng.random(n) < 0.5) & prep.flip
    pca_a = None if prep.pca is None else rng.normal(0.0, prep.pca_std, (n, len(prep.pca[0])))
    return tops, lefts, mirrors, pca_a


@pytest.mark.parametrize("pca", [False, True])
def test_draws_without_erasing_are_bit_for_bit_those_of_before(pca):
    pca_fit = (np.array([0.2, 0.05, 0.01], np.float32), np.eye(3, dtype=np.float32)) if pca else None
    plain = Preprocess(32, 36, pca=pca_fit)                        # no erase argument at all
    off = Preprocess(32, 36, pca=pca_fit, erase=0)
    on = Preprocess(32, 36, pca=pca_fit, erase=0.5)
    seed = 11
    expected = todays_draws(plain, 500, np.random.default_rng(seed))
    for prep in (plain, off, on):
        draws = prep.draw(500, np.random.default_rng(seed))
        got = (draws.tops, draws.lefts, draws.mirrors, draws.pca_a)
        for field, want in zip(got, expected):
            assert (field is None) == (want is None)
            if want is not None:
                assert field.dtype == want.dtype and np.array_equal(field, want)   # bit for bit
        assert (draws.erase_box is None) == (prep.erase == 0)
    # Without erasing, a row still has its four values (what older callers unpack).
    assert len(off.draw(3, np.random.default_rng(0)).row(1)) == 4
    assert len(on.draw(3, np.random.default_rng(0)).row(1)) == 5


@pytest.mark.parametrize("p", [1.0, 0.5])
@pytest.mark.parametrize("channels, mean_kind, pca", [(3, "image", True), (3, "channel", False),
                                                      (1, "none", False), (1, "image", True)])
@pytest.mark.parametrize("crop_size, stored_size", [(32, 36), (5, 9), (7, 7)])
def test_train_batch_equals_augment_on_each_image(p, channels, mean_kind, pca, crop_size,
                                                  stored_size):
    rng = np.random.default_rng([channels, crop_size, stored_size, pca, int(p * 10)])
    prep = make_preprocess(rng, channels, mean_kind, pca, crop_size, stored_size, p)
    images = rng.integers(0, 256, (60, stored_size, stored_size, channels), dtype=np.uint8)
    draws = prep.draw(len(images), rng)
    batch = prep.train_batch(images, draws)
    one_by_one = np.stack([prep.augment(image, *draws.row(j)) for j, image in enumerate(images)])
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    assert np.array_equal(batch, one_by_one)                       # exactly, not approximately
    erased = draws.erase_box[:, 2] > 0
    assert erased.any() and (p == 1.0 or not erased.all())         # both cases are covered
    assert (erased & draws.mirrors).any()                          # and erased mirrored crops


def naive_erasing(x, boxes):
    """The reference: pixel (y, x) of image j is zeroed, in every channel, iff it lies inside
    image j's box (top <= y < top + height and left <= x < left + width)."""
    out = x.copy()
    for j, (top, left, height, width) in enumerate(boxes):
        for y in range(x.shape[2]):
            for col in range(x.shape[3]):
                if top <= y < top + height and left <= col < left + width:
                    out[j, :, y, col] = 0.0
    return out


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_train_batch_against_a_naive_pixel_loop(p):
    rng = np.random.default_rng(8)
    prep = make_preprocess(rng, 3, "image", True, 12, 15, p)
    images = rng.integers(0, 256, (30, 15, 15, 3), dtype=np.uint8)
    draws = prep.draw(30, rng)
    whole = prep.train_batch(images, draws)
    kept = prep.train_batch(images, AugmentationDraws(draws.tops, draws.lefts, draws.mirrors,
                                                      draws.pca_a))   # the same, not erased
    assert np.array_equal(whole, naive_erasing(kept, draws.erase_box))
    erased = draws.erase_box[:, 2] > 0
    assert np.array_equal(whole[~erased], kept[~erased]) and erased.any()
    # The inputs have no zeros of their own (random means), so every zero is an erased pixel.
    assert (kept != 0).all()
    assert ((whole == 0).all(axis=1).sum(axis=(1, 2)) ==
            draws.erase_box[:, 2] * draws.erase_box[:, 3]).all()


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_share_of_erased_images_is_p(p):
    # On an 8 x 8 crop every box fits (h, w <= round(8 * sqrt(0.33 * 3.3)) = 8) and none is
    # empty (h, w >= round(sqrt(0.02 * 64 * 0.3)) = 1), so the erased count is Binomial(n, p).
    n = 20000
    draws = Preprocess(8, 10, erase=p).draw(n, np.random.default_rng(int(p * 100)))
    if p == 0:
        assert draws.erase_box is None
        return
    count = int((draws.erase_box[:, 2] > 0).sum())
    sd = np.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= 5 * sd + 1e-9


def test_erased_areas_and_ratios_follow_the_distribution():
    c, n = 64, 20000
    boxes = random_erase_boxes(n, c, 1.0, np.random.default_rng(2))
    h, w = boxes[boxes[:, 2] > 0, 2:].T.astype(np.float64)
    assert len(h) > 0.99 * n                      # on a large crop almost every box fits
    # h = round(a), w = round(b) with a * b = s * c^2: so (h - 1/2)(w - 1/2) <= s c^2 <=
    # (h + 1/2)(w + 1/2), which must meet [0.02, 0.33] * c^2; likewise for the ratio a / b.
    assert ((h - 0.5) * (w - 0.5) <= ERASE_SCALE[1] * c * c).all()
    assert ((h + 0.5) * (w + 0.5) >= ERASE_SCALE[0] * c * c).all()
    assert ((h - 0.5) / (w + 0.5) <= ERASE_RATIO[1]).all()
    assert ((h + 0.5) / (w - 0.5) >= ERASE_RATIO[0]).all()
    share = h * w / (c * c)
    assert 0.015 < share.min() < 0.03 and 0.3 < share.max() < 0.35
    assert abs(share.mean() - 0.175) < 0.01                          # the mean of U(0.02, 0.33)
    assert abs((share < 0.1).mean() - 0.08 / 0.31) < 0.02
    log_ratio = np.log(h / w)
    assert abs(log_ratio.mean() - np.log(0.3 * 3.3) / 2) < 0.05


@pytest.mark.parametrize("c", [1, 2, 3, 5, 8, 32, 227])
def test_boxes_lie_inside_the_crop(c):
    n = 3000 if c < 227 else 500
    boxes = random_erase_boxes(n, c, 1.0, np.random.default_rng(c))
    top, left, h, w = boxes.T
    erased = h > 0
    assert boxes.dtype == np.int64 and boxes.shape == (n, 4)
    assert (boxes[~erased] == 0).all()                             # not erased: all zero
    assert (w[erased] > 0).all()
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= c).all() and (left + w <= c).all()
    if c >= 8:
        # Both ends of the top's range are reached.
        assert (top[erased] == 0).any() and (top[erased] + h[erased] == c).any()


def test_evaluation_never_erases():
    rng = np.random.default_rng(5)
    on = make_preprocess(rng, 3, "image", True, 12, 14, 1.0)
    off = Preprocess(**{**on.state_dict(), "erase": 0.0})
    images = rng.integers(0, 256, (10, 14, 14, 3), dtype=np.uint8)
    assert np.array_equal(on.eval_batch(images), off.eval_batch(images))
    assert (on.eval_batch(images) != 0).all()
    for image in images[:3]:
        assert np.array_equal(on.eval(image), off.eval(image))
        assert np.array_equal(on.eval_ten_crop(image), off.eval_ten_crop(image))
    dataset = ArrayDataset(images, np.arange(10) % 2, ["a", "b"])
    batches = [np.concatenate([x for x, _ in DataLoader(dataset, 4, transform=prep,
                                                        train=False, num_workers=0)])
               for prep in (on, off)]
    assert np.array_equal(*batches)


def test_loader_paths_agree_with_erasing():
    rng = np.random.default_rng(6)
    prep = make_preprocess(rng, 3, "image", True, 12, 14, 0.5)
    images = rng.integers(0, 256, (20, 14, 14, 3), dtype=np.uint8)
    dataset = ArrayDataset(images, np.arange(20) % 2, ["a", "b"])
    runs = [list(DataLoader(dataset, 8, transform=prep, seed=1, num_workers=0,
                            batch_path=path).epoch(2)) for path in (True, False)]
    for (x1, y1), (x2, y2) in zip(*runs):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)


def test_train_erases_one_rectangle_to_the_mean():
    image = np.full((10, 10, 3), 200, np.uint8)
    prep = Preprocess(8, 10, mean=np.full(3, 50.0), erase=1.0, scale=False)
    x = prep.train(image, np.random.default_rng(0))
    zero = (x == 0).all(axis=0)
    rows, cols = np.flatnonzero(zero.any(axis=1)), np.flatnonzero(zero.any(axis=0))
    assert zero.any() and zero.sum() == len(rows) * len(cols)      # one full rectangle
    assert np.array_equal(x[:, ~zero], np.full((3, int((~zero).sum())), 150.0, np.float32))


def saved_run(prep, config=None, drop_erase=False):
    """A ``SavedRun`` holding ``prep`` as ``run_state`` lays it out: the mean and the PCA as
    arrays, the other settings in ``meta["preprocess"]``."""
    state = prep.state_dict()
    arrays = {}
    if state["mean"] is not None:
        arrays[PREPROCESS + "mean"] = state["mean"]
    if state["pca"] is not None:
        arrays[PREPROCESS + "pca_eigvals"], arrays[PREPROCESS + "pca_eigvecs"] = state["pca"]
    meta_prep = {k: v for k, v in state.items() if k not in ("mean", "pca")}
    if drop_erase:
        del meta_prep["erase"]
    return SavedRun(arrays, {"preprocess": meta_prep, "config": config or {}}, "memory")


def test_erase_survives_state_dict_and_checkpoint():
    rng = np.random.default_rng(9)
    prep = make_preprocess(rng, 3, "image", True, 12, 14, 0.25)
    assert prep.state_dict()["erase"] == 0.25
    for copy in (Preprocess(**prep.state_dict()), preprocess_from_checkpoint(saved_run(prep))):
        assert copy.erase == 0.25
        a, b = (p.draw(50, np.random.default_rng(1)) for p in (prep, copy))
        assert np.array_equal(a.erase_box, b.erase_box)
    # A checkpoint without the key was written before erasing existed: off.
    assert preprocess_from_checkpoint(saved_run(prep, drop_erase=True)).erase == 0.0


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_erase_outside_zero_one_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="erase"):
        Preprocess(8, 10, erase=bad)
    dataset = ArrayDataset(np.zeros((2, 10, 10, 3), np.uint8), np.zeros(2, np.int64), ["a"])
    with pytest.raises(ValueError, match="erase"):
        Preprocess.from_dataset(dataset, 8, mean=None, pca=False, erase=bad)
