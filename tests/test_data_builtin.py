"""The built-in procedural data set: deterministic, balanced, and not separable by colour."""
import time

import numpy as np
import pytest

from minitorch_alexnet.data import build_datasets, builtin

pytestmark = pytest.mark.data


def test_same_seed_same_data_different_seed_different_data():
    a_images, a_labels = builtin.generate(300, seed=7)
    b_images, b_labels = builtin.generate(300, seed=7)
    c_images, c_labels = builtin.generate(300, seed=8)
    assert np.array_equal(a_images, b_images) and np.array_equal(a_labels, b_labels)
    assert not np.array_equal(a_images, c_images)


def test_default_sets_shapes_balance_and_independence():
    start = time.perf_counter()
    train, val = build_datasets("builtin", seed=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"generation took {elapsed:.1f} s"
    assert len(train) == 5000 and len(val) == 1000
    assert train.classes == builtin.CLASSES and len(train.classes) == 10
    assert train.images.shape == (5000, 32, 32, 3) and train.images.dtype == np.uint8
    image, label = train.load(3)
    assert image.shape == (32, 32, 3) and isinstance(label, int)
    # Equal numbers per class: every block of 500 holds 50 of each.
    assert np.bincount(train.labels, minlength=10).tolist() == [500] * 10
    assert np.bincount(val.labels, minlength=10).tolist() == [100] * 10
    # Training and validation images come from independent streams.
    assert not np.array_equal(train.images[:1000], val.images)


def test_mean_colour_does_not_reveal_the_class():
    # A nearest-class-mean classifier on the mean RGB colour of each image should be near
    # chance (10%): classes differ by spatial structure, not by colour.
    train, val = build_datasets("builtin", seed=1, limit_train=2000, limit_val=500)
    features = lambda ds: ds.images.reshape(len(ds), -1, 3).mean(axis=1)  # noqa: E731
    centroids = np.stack([features(train)[train.labels == k].mean(0) for k in range(10)])
    distances = ((features(val)[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = (distances.argmin(1) == val.labels).mean()
    assert accuracy < 0.25


def test_limit_keeps_the_first_images_and_other_sizes_work():
    full, full_val = builtin.build(3, n_train=1200, n_val=600)
    small, small_val = build_datasets("builtin", seed=3, limit_train=700, limit_val=20)
    assert len(small) == 700 and len(small_val) == 20
    assert np.array_equal(small.images, full.images[:700])
    assert np.array_equal(small.labels, full.labels[:700])
    assert np.array_equal(small_val.images, full_val.images[:20])
    big, _ = build_datasets("builtin", seed=3, image_size=48, limit_train=10)
    assert big.images.shape == (10, 48, 48, 3)
    with pytest.raises(ValueError, match="at least 16"):
        builtin.generate(4, size=8)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown data set 'imagenet'.*builtin"):
        build_datasets("imagenet")
