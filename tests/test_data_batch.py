"""Whole-batch augmentation: ``Preprocess.train_batch`` / ``eval_batch`` equal the per-image
reference float for float, and the ``DataLoader`` picks that path by itself for in-memory
data sets without changing a single number of its batches."""
import threading

import numpy as np
import pytest
from PIL import Image

from minitorch_alexnet.data import (ArrayDataset, DataLoader, FolderDataset, Preprocess,
                                    builtin, resize_images)
from minitorch_alexnet.data import transforms as transforms_module
from minitorch_alexnet.data.transforms import pca_colour_shifts

from helpers_data import random_preprocess

pytestmark = pytest.mark.data


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mean_kind", ["none", "channel", "image"])
@pytest.mark.parametrize("pca", [False, True])
@pytest.mark.parametrize("crop_size, stored_size", [(32, 36), (5, 9), (7, 7)])
def test_train_batch_equals_augment_on_each_image(channels, mean_kind, pca, crop_size,
                                                  stored_size):
    rng = np.random.default_rng([channels, crop_size, stored_size, pca])
    prep = random_preprocess(rng, channels, mean_kind, pca, crop_size, stored_size)
    images = rng.integers(0, 256, (40, stored_size, stored_size, channels), dtype=np.uint8)
    draws = prep.draw(len(images), rng)
    batch = prep.train_batch(images, draws)
    one_by_one = np.stack([prep.augment(image, *draws.row(j)) for j, image in enumerate(images)])
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    assert batch.shape == (40, channels, crop_size, crop_size)
    assert np.array_equal(batch, one_by_one)                       # exactly, not approximately
    # The draws really vary, so the equality above covers flipped and unflipped images.
    assert draws.mirrors.any() and not draws.mirrors.all()
    if stored_size > crop_size:
        assert len(set(zip(draws.tops.tolist(), draws.lefts.tolist()))) > 1
    j = int(np.flatnonzero(draws.mirrors)[0])
    top, left, _, a = draws.row(j)
    unflipped = prep.augment(images[j], top, left, False, a)
    assert np.array_equal(batch[j], unflipped[:, :, ::-1])
    if crop_size > 1:
        assert not np.array_equal(batch[j], unflipped)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mean_kind", ["none", "channel", "image"])
@pytest.mark.parametrize("scale", [False, True])
def test_eval_batch_equals_eval_on_each_image(channels, mean_kind, scale):
    rng = np.random.default_rng(channels)
    prep = random_preprocess(rng, channels, mean_kind, False, 28, 33, scale=scale)  # odd margin
    images = rng.integers(0, 256, (12, 33, 33, channels), dtype=np.uint8)
    batch = prep.eval_batch(images)
    assert batch.shape == (12, channels, 28, 28) and batch.flags.c_contiguous
    assert np.array_equal(batch, np.stack([prep.eval(image) for image in images]))


def test_train_batch_without_flip_or_scale_is_the_plain_crop_minus_mean():
    rng = np.random.default_rng(4)
    prep = random_preprocess(rng, 3, "image", False, 6, 10, flip=False, scale=False)
    images = rng.integers(0, 256, (5, 10, 10, 3), dtype=np.uint8)
    draws = prep.draw(5, rng)
    assert not draws.mirrors.any()
    batch = prep.train_batch(images, draws)
    for j in range(5):
        t, l = int(draws.tops[j]), int(draws.lefts[j])
        expected = images[j, t:t + 6, l:l + 6].astype(np.float32) - prep.mean[t:t + 6, l:l + 6]
        assert np.array_equal(batch[j], expected.transpose(2, 0, 1))


def test_draws_ranges_and_independence_of_the_flags():
    on = Preprocess(32, 36, pca=(np.ones(3, np.float32), np.eye(3, dtype=np.float32)))
    off = Preprocess(32, 36, flip=False)
    a, b = on.draw(1000, np.random.default_rng(0)), off.draw(1000, np.random.default_rng(0))
    assert a.count == 1000 and a.pca_a.shape == (1000, 3) and b.pca_a is None
    assert a.tops.min() == 0 and a.tops.max() == 4 and a.lefts.min() == 0 and a.lefts.max() == 4
    assert 400 < a.mirrors.sum() < 600 and not b.mirrors.any()
    # Switching the flip and the PCA off leaves the crops where they were.
    assert np.array_equal(a.tops, b.tops) and np.array_equal(a.lefts, b.lefts)
    rows = np.array([7, 3, 999])
    picked = a.take(rows)
    assert picked.count == 3 and picked.row(2)[:3] == a.row(999)[:3]
    assert np.array_equal(picked.pca_a[1], a.pca_a[3])


def test_colour_shifts_of_a_batch_equal_those_of_single_images():
    eigvals = np.array([0.2, 0.05, 0.01], np.float32)
    eigvecs = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0].astype(np.float32)
    a = np.random.default_rng(1).normal(0, 0.1, (50, 3))
    shifts = pca_colour_shifts(eigvals, eigvecs, a)
    assert shifts.dtype == np.float32 and shifts.shape == (50, 3)
    for j in (0, 17, 49):
        assert np.array_equal(shifts[j], pca_colour_shifts(eigvals, eigvecs, a[j:j + 1])[0])
    np.testing.assert_allclose(shifts, (a * eigvals) @ eigvecs.T, rtol=1e-5, atol=1e-7)


def test_batch_errors_name_the_problem():
    prep = Preprocess(32, 36)
    with pytest.raises(ValueError, match=r"stored size, got shape \(2, 32, 32, 3\).*resize_images"):
        prep.train_batch(np.zeros((2, 32, 32, 3), np.uint8), prep.draw(2, np.random.default_rng()))
    with pytest.raises(ValueError, match="got 2 images but draws for 3"):
        prep.train_batch(np.zeros((2, 36, 36, 3), np.uint8), prep.draw(3, np.random.default_rng()))
    with pytest.raises(ValueError, match="stored size"):
        prep.eval_batch(np.zeros((36, 36, 3), np.uint8))


# ---- the loader ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset():
    images, labels = builtin.generate(150, seed=5, size=36)
    return ArrayDataset(images, labels, builtin.CLASSES, "builtin 36")


@pytest.fixture(scope="module")
def prep(dataset):
    return Preprocess.from_dataset(dataset, 32, 36, mean="image", pca=True)


def collect(batches):
    return [(x.copy(), y.copy()) for x, y in batches]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(xa, xb) and np.array_equal(ya, yb)
                                    for (xa, ya), (xb, yb) in zip(a, b))


@pytest.mark.parametrize("train", [True, False])
def test_loader_whole_batches_equal_image_by_image(dataset, prep, train):
    fast = DataLoader(dataset, 32, seed=2, transform=prep, train=train)
    slow = DataLoader(dataset, 32, seed=2, transform=prep, train=train, batch_path=False)
    assert fast.batch_path and not slow.batch_path
    for epoch, start in ((0, 0), (3, 2)):
        expected = collect(slow.epoch(epoch, start_batch=start))
        assert len(expected) == len(fast) - start
        assert same(collect(fast.epoch(epoch, start_batch=start)), expected)
    if train:   # different epochs draw differently
        assert not np.array_equal(collect(fast.epoch(0))[0][0], collect(fast.epoch(1))[0][0])


def test_image_by_image_path_is_reproducible_too(dataset, prep):
    runs = [collect(DataLoader(dataset, 20, seed=3, transform=prep, batch_path=False,
                               num_workers=w).epoch(1, start_batch=1)) for w in (0, 3)]
    assert same(*runs) and len(runs[0]) == 7


def test_loader_resizes_in_memory_images_once(monkeypatch):
    images, labels = builtin.generate(70, seed=6, size=32)            # stored at 32, not 36
    small = ArrayDataset(images, labels, builtin.CLASSES, "builtin 32")
    prep = Preprocess.from_dataset(small, 32, 36, mean="image", pca=True)
    calls = []

    def counting_resize(array, size):
        calls.append(len(array))
        return resize_images(array, size)

    monkeypatch.setattr(transforms_module, "resize_images", counting_resize)   # store_images' resize
    kept = DataLoader(small, 16, seed=0, transform=prep)
    assert kept.batch_path
    first = collect(kept.epoch(0)) + collect(kept.epoch(1))
    assert calls == [70]                                   # the whole array, once
    assert kept.stored_images().shape == (70, 36, 36, 3)
    assert np.array_equal(kept.stored_images(), resize_images(images, 36))
    # Over the memory budget: each batch is resized on its own, with the same result.
    calls.clear()
    tight = DataLoader(small, 16, seed=0, transform=prep, max_stored_bytes=1000)
    assert tight.stored_images() is None
    assert same(collect(tight.epoch(0)) + collect(tight.epoch(1)), first)
    assert calls == [16, 16, 16, 16, 6] * 2


def test_loader_pads_in_memory_images_with_a_padding_preprocess():
    images, labels = builtin.generate(20, seed=6, size=32)
    small = ArrayDataset(images, labels, builtin.CLASSES, "builtin 32")
    prep = Preprocess(32, mean=None, pca=None, padding=2)              # stored at 36
    loader = DataLoader(small, 8, seed=0, transform=prep, train=False)
    stored = loader.stored_images()
    assert stored.shape == (20, 36, 36, 3)
    assert np.array_equal(stored[:, 2:34, 2:34], images) and not stored[:, :2].any() \
        and not stored[:, :, -2:].any()
    # the centre crop of the padded image is the image itself, as the one-image path says
    x = np.concatenate([x_batch for x_batch, _ in loader.epoch(0)])
    np.testing.assert_array_equal(x, images.transpose(0, 3, 1, 2) * np.float32(1 / 255))
    np.testing.assert_array_equal(prep.eval(images[3]), x[3])


def png_folder(tmp_path, n):
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(paths[-1])
    return FolderDataset(paths, [k % 2 for k in range(n)], ["even", "odd"], image_size=10)


def test_when_the_loader_builds_image_by_image(tmp_path, dataset, prep):
    folder = png_folder(tmp_path, 9)
    assert not DataLoader(folder, 4, transform=Preprocess(8, 10)).batch_path
    assert not DataLoader(dataset, 4, transform=lambda image, rng: image).batch_path
    assert not DataLoader(dataset, 4, transform=prep, train=False, ten_crop=True).batch_path
    with pytest.raises(ValueError, match="batch_path=True is not possible here: the data set is "
                                         "not an in-memory ArrayDataset"):
        DataLoader(folder, 4, transform=Preprocess(8, 10), batch_path=True)
    with pytest.raises(ValueError, match="the transform is not a Preprocess"):
        DataLoader(dataset, 4, batch_path=True)


def test_folder_images_follow_the_same_rule(tmp_path):
    folder = png_folder(tmp_path, 9)
    prep = Preprocess(8, 10, mean=np.array([120.0, 110.0, 100.0]))
    loader = DataLoader(folder, 4, seed=7, transform=prep)
    x, _ = next(loader.epoch(2))
    draws = loader.augmentation_draws(2)
    for position, i in enumerate(loader.order(2)[:4]):
        expected = prep.augment(folder.load(int(i))[0], *draws.row(int(i)))
        assert np.array_equal(x[position], expected)


def test_whole_batch_path_uses_one_thread(dataset, prep):
    batches = DataLoader(dataset, 10, transform=prep, num_workers=4, prefetch=3).epoch(0)
    next(batches)
    workers = [t for t in threading.enumerate() if t.name.startswith("data")]
    batches.close()
    assert len(workers) == 1
