"""DataLoader: shapes, deterministic order and augmentation, bit-exact resume, bad images."""
import threading

import numpy as np
import pytest
from PIL import Image

from minitorch_alexnet.data import (ArrayDataset, DataError, DataLoader, FolderDataset,
                                    Preprocess, builtin)
from minitorch_alexnet.data.loader import AUGMENTATION_KEY

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def small_set():
    images, labels = builtin.generate(203, seed=11)            # 203: the last batch is short
    return ArrayDataset(images, labels, builtin.CLASSES, "small")


@pytest.fixture(scope="module")
def prep(small_set):
    return Preprocess.from_dataset(small_set, 28, stored_size=32, mean="image", pca=True)


def collect(batches):
    return [(x.copy(), y.copy()) for x, y in batches]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(xa, xb) and np.array_equal(ya, yb)
                                    for (xa, ya), (xb, yb) in zip(a, b))


def test_batches_shapes_lengths_and_coverage(small_set, prep):
    loader = DataLoader(small_set, 32, seed=0, transform=prep, train=True)
    assert len(loader) == 7
    batches = collect(loader.epoch(0))
    assert len(batches) == 7 and batches[-1][0].shape == (11, 3, 28, 28)
    x, y = batches[0]
    assert x.dtype == np.float32 and x.shape == (32, 3, 28, 28)
    assert y.dtype == np.int64 and y.shape == (32,)
    order = loader.order(0)
    seen = np.concatenate([y for _, y in batches])
    assert np.array_equal(seen, small_set.labels[order])     # every sample once, in order
    assert sorted(order.tolist()) == list(range(203))
    dropped = DataLoader(small_set, 32, seed=0, transform=prep, drop_last=True)
    assert len(dropped) == 6 and len(collect(dropped.epoch(0))) == 6


def test_same_seed_same_batches_whatever_the_workers(small_set, prep):
    runs = [collect(DataLoader(small_set, 25, seed=3, transform=prep, num_workers=w,
                               prefetch=p).epoch(2))
            for w, p in ((0, 1), (1, 1), (2, 2), (4, 1))]
    assert all(same(runs[0], run) for run in runs[1:])
    other_epoch = collect(DataLoader(small_set, 25, seed=3, transform=prep).epoch(3))
    other_seed = collect(DataLoader(small_set, 25, seed=4, transform=prep).epoch(2))
    assert not np.array_equal(runs[0][0][1], other_epoch[0][1])
    assert not np.array_equal(runs[0][0][0], other_seed[0][0])


def test_resume_from_a_batch_equals_the_tail_of_the_epoch(small_set, prep):
    loader = DataLoader(small_set, 16, seed=9, transform=prep, num_workers=2)
    full = collect(loader.epoch(5))
    for k in (0, 1, 7, len(loader) - 1, len(loader)):
        resumed = collect(DataLoader(small_set, 16, seed=9, transform=prep).epoch(5, start_batch=k))
        assert same(resumed, full[k:])


def test_augmentation_depends_on_sample_not_on_position(small_set, prep):
    # The same sample in two different epochs sits at different positions; with the epoch's
    # draws (row i for sample i) we can recompute any sample's tensor alone.
    loader = DataLoader(small_set, 10, seed=1, transform=prep)
    x, y = next(loader.epoch(4))
    i = int(loader.order(4)[3])
    draws = prep.draw(len(small_set), np.random.default_rng([1, 4, AUGMENTATION_KEY]))
    expected = prep.augment(small_set.images[i], *draws.row(i))
    assert np.array_equal(x[3], expected)
    # Another batch size puts sample i in another batch at another position: same tensor.
    other = DataLoader(small_set, 7, seed=1, transform=prep, num_workers=0)
    position = int(np.flatnonzero(other.order(4) == i)[0])
    batches = collect(other.epoch(4))
    assert np.array_equal(batches[position // 7][0][position % 7], expected)


def test_eval_mode_and_ten_crop(small_set, prep):
    loader = DataLoader(small_set, 50, transform=prep, train=False)
    assert np.array_equal(loader.order(0), np.arange(203))      # no shuffle by default
    x, y = next(loader.epoch(0))
    assert np.array_equal(x[0], prep.eval(small_set.images[0]))
    ten = DataLoader(small_set, 8, transform=prep, train=False, ten_crop=True)
    x, _ = next(ten.epoch(0))
    assert x.shape == (8, 10, 3, 28, 28)
    with pytest.raises(ValueError, match="ten_crop"):
        DataLoader(small_set, 8, transform=prep, train=True, ten_crop=True)
    plain = DataLoader(small_set, 4, train=False)                 # no transform: CHW floats
    x, _ = next(plain.epoch(0))
    assert x.shape == (4, 3, 32, 32) and x.max() > 1


def test_stopping_early_leaves_no_threads(small_set, prep):
    before = threading.active_count()
    for _ in range(3):
        batches = DataLoader(small_set, 8, transform=prep, num_workers=3).epoch(0)
        next(batches)
        batches.close()                                           # what `break` does
    assert threading.active_count() <= before


def image_folder(tmp_path, n_good, n_bad):
    """n_good real PNGs labelled k % 2, then n_bad broken files labelled 1."""
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for k in range(n_good):
        path = tmp_path / f"good{k}.png"
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
        labels.append(k % 2)
    for k in range(n_bad):
        path = tmp_path / f"bad{k}.jpg"
        path.write_bytes(b"" if k % 2 else b"\xff\xd8\xff\xe0 truncated jpeg")
        paths.append(str(path))
        labels.append(1)
    return FolderDataset(paths, labels, ["even", "odd"], image_size=8)


def test_bad_images_are_skipped_and_counted(tmp_path):
    dataset = image_folder(tmp_path, n_good=18, n_bad=2)
    prep = Preprocess(8, 8, scale=True)
    loader = DataLoader(dataset, 5, seed=0, transform=prep, max_bad_fraction=0.2)
    batches = collect(loader.epoch(0))
    assert loader.num_bad == 2
    assert sorted(p.rsplit("/", 1)[1] for p, _ in loader.bad_images) == ["bad0.jpg", "bad1.jpg"]
    assert {r for _, r in loader.bad_images} >= {"empty file (0 bytes)"}
    assert sum(len(y) for _, y in batches) == 18                 # shortened, not replaced
    # The remaining labels are still the right ones, in order.
    order = [int(i) for i in loader.order(0) if dataset.paths[int(i)].split("/")[-1].startswith("good")]
    assert np.concatenate([y for _, y in batches]).tolist() == [dataset.labels[i] for i in order]
    # A new epoch starts a new count.
    collect(loader.epoch(1))
    assert loader.num_bad == 2


def test_too_many_bad_images_raise(tmp_path):
    dataset = image_folder(tmp_path, n_good=10, n_bad=4)
    loader = DataLoader(dataset, 4, seed=0, transform=Preprocess(8, 8), max_bad_fraction=0.1)
    with pytest.raises(DataError, match=r"of the 14 images of epoch 0 could not be read, more than "
                                        r"max_bad_fraction=0.1; first ones: .*bad\d\.jpg"):
        collect(loader.epoch(0))
    (tmp_path / "all_bad").mkdir()
    all_bad = image_folder(tmp_path / "all_bad", n_good=0, n_bad=3)
    loader = DataLoader(all_bad, 2, transform=Preprocess(8, 8), max_bad_fraction=1.0)
    assert collect(loader.epoch(0)) == [] and loader.num_bad == 3  # empty batches not yielded


def test_bad_image_budget_covers_the_whole_epoch_after_a_resume(tmp_path):
    """A loader started at batch k counts against the whole epoch's images, and takes the bad
    images of batches 0..k-1 (kept by the trainer's checkpoint) as its starting count."""
    dataset = image_folder(tmp_path, n_good=18, n_bad=2)       # the bad ones: indices 18, 19
    loader = DataLoader(dataset, 5, seed=0, shuffle=False, transform=Preprocess(8, 8),
                        max_bad_fraction=0.1)                   # 2 of 20 allowed
    # From the last batch (5 images, both bad): within the budget of the whole epoch.
    assert sum(len(y) for _, y in collect(loader.epoch(0, start_batch=3))) == 3
    assert loader.num_bad == 2                                  # this call's own part
    # One bad image met before the resume: 3 of the 20 images, over the limit.
    with pytest.raises(DataError, match=r"^3 of the 20 images of epoch 0 could not be read.*"
                                        r"first ones: elsewhere\.jpg: gone"):
        collect(loader.epoch(0, start_batch=3, earlier_bad=[("elsewhere.jpg", "gone")]))


@pytest.mark.parametrize("size", [2, 3])
def test_parts_of_every_batch_together_are_the_batch(small_set, prep, size):
    """With part=(rank, size) each loader builds a contiguous slice of every global batch;
    the slices of all ranks, put together, are the one-process batch, images included."""
    whole = list(DataLoader(small_set, 25, seed=5, transform=prep).batches(1, start_batch=2))
    parts = [list(DataLoader(small_set, 25, seed=5, transform=prep, part=(r, size)).batches(1, start_batch=2))
             for r in range(size)]
    assert all(len(p) == len(whole) for p in parts)
    for k, batch in enumerate(whole):
        pieces = [p[k] for p in parts]
        assert max(len(b.labels) for b in pieces) - min(len(b.labels) for b in pieces) <= 1
        np.testing.assert_array_equal(np.concatenate([b.indices for b in pieces]), batch.indices)
        np.testing.assert_array_equal(np.concatenate([b.labels for b in pieces]), batch.labels)
        np.testing.assert_array_equal(np.concatenate([b.x for b in pieces]), batch.x)


def test_parts_yield_empty_batches_to_stay_in_step(tmp_path):
    """A rank whose slice is empty or unreadable still gets the batch (empty), so every rank
    sees every step; the one-process ``epoch`` leaves empty batches out as before."""
    dataset = image_folder(tmp_path, n_good=3, n_bad=2)
    prep = Preprocess(8, 8, scale=True)
    loaders = [DataLoader(dataset, 5, transform=prep, max_bad_fraction=1.0, part=(r, 8)) for r in range(8)]
    counts = [[len(b.labels) for b in loader.batches(0)] for loader in loaders]
    assert all(len(c) == 1 for c in counts) and sum(c[0] for c in counts) == 3
    assert sum(loader.num_bad for loader in loaders) == 2
    with pytest.raises(ValueError, match="part must be"):
        DataLoader(dataset, 5, part=(2, 2))
