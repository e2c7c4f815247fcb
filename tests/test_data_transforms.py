"""Crops, flips, ten-crop, colour PCA, mean image and the Preprocess chain."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from minitorch_alexnet.data import (ArrayDataset, FolderDataset, Preprocess, center_crop,
                                    compute_mean_image, dataset_statistics,
                                    default_stored_size, fit_pca_colour,
                                    hflip, pca_colour_shift, random_crop, resize_images,
                                    resize_shorter_side, ten_crop, to_stored_size)
from minitorch_alexnet.data.transforms import _upsample_bilinear

pytestmark = pytest.mark.data


def numbered(h, w, c=3):
    """An image whose every value is distinct, so a wrong slice cannot pass by accident."""
    return np.arange(h * w * c, dtype=np.int64).reshape(h, w, c)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), size=st.integers(1, 12), seed=st.integers(0, 99))
def test_crops_are_slices_of_the_image(h, w, size, seed):
    image = numbered(h, w)
    if size > min(h, w):
        with pytest.raises(ValueError, match=f"cannot take a {size}x{size} crop"):
            center_crop(image, size)
        return
    centre = center_crop(image, size)
    top, left = (h - size) // 2, (w - size) // 2
    assert np.array_equal(centre, image[top:top + size, left:left + size])
    rng = np.random.default_rng(seed)
    patch = random_crop(image, size, rng)
    assert patch.shape == (size, size, 3)
    # The crop's first value tells where it was taken: value = (y * w + x) * 3.
    y, x = divmod(int(patch[0, 0, 0]) // 3, w)
    assert 0 <= y <= h - size and 0 <= x <= w - size
    assert np.array_equal(patch, image[y:y + size, x:x + size])


def test_random_crop_positions_cover_the_range():
    image = numbered(6, 6)
    rng = np.random.default_rng(0)
    corners = {int(random_crop(image, 4, rng)[0, 0, 0]) for _ in range(300)}
    assert len(corners) == 9                      # (6 - 4 + 1) ** 2 positions


def test_hflip():
    image = numbered(3, 4)
    flipped = hflip(image)
    for x in range(4):
        assert np.array_equal(flipped[:, x], image[:, 3 - x])
    assert np.array_equal(hflip(flipped), image)


def test_ten_crop_views_are_the_corner_and_centre_slices():
    image = numbered(7, 9)
    views = ten_crop(image, 4)
    assert views.shape == (10, 3, 4, 4)
    chw = lambda a: a.transpose(2, 0, 1)  # noqa: E731
    expected = [image[:4, :4], image[:4, 5:], image[3:, :4], image[3:, 5:], image[1:5, 2:6]]
    for k, window in enumerate(expected):
        assert np.array_equal(views[k], chw(window))
        assert np.array_equal(views[5 + k], chw(window[:, ::-1]))


def test_resize_shorter_side_keeps_the_aspect_ratio():
    tall = np.zeros((100, 50, 3), np.uint8)
    assert resize_shorter_side(tall, 20).shape == (40, 20, 3)
    wide = np.zeros((30, 90, 1), np.uint8)
    assert resize_shorter_side(wide, 10).shape == (10, 30, 1)
    assert to_stored_size(wide, 10).shape == (10, 10, 1)
    floats = np.random.default_rng(0).random((8, 12, 2)).astype(np.float32)
    assert resize_shorter_side(floats, 4).shape == (4, 6, 2)
    # A constant image stays constant.
    grey = np.full((50, 70, 3), 77, np.uint8)
    assert np.all(to_stored_size(grey, 32) == 77)


def test_vectorised_upsampling_matches_pillow():
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 3), dtype=np.uint8)
    ours = _upsample_bilinear(images, 32)
    pillow = np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.BILINEAR))
                       for im in images])
    assert np.abs(ours.astype(int) - pillow.astype(int)).max() <= 1
    assert resize_images(images, 28) is images


def correlated_images(n=40, seed=0):
    """Pixels whose colour varies mostly along (1, 1, 1) / sqrt(3) (brightness), a little
    along (1, -1, 0) / sqrt(2)."""
    rng = np.random.default_rng(seed)
    brightness = rng.normal(0, 40, size=(n, 8, 8, 1))
    tint = rng.normal(0, 8, size=(n, 8, 8, 1))
    rgb = 128 + brightness * np.ones(3) / np.sqrt(3) + tint * np.array([1, -1, 0]) / np.sqrt(2)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def test_pca_matches_the_covariance_and_is_orthonormal():
    images = correlated_images()
    eigvals, eigvecs = fit_pca_colour(images)
    assert eigvals.shape == (3,) and eigvecs.shape == (3, 3)
    assert np.all(np.diff(eigvals) <= 0)                                  # largest first
    np.testing.assert_allclose(eigvecs.T @ eigvecs, np.eye(3), atol=1e-5)
    cov = np.cov(images.reshape(-1, 3).T / 255.0, bias=True)
    np.testing.assert_allclose(cov @ eigvecs, eigvecs * eigvals, atol=1e-6)
    # The top direction is brightness; an iterator of images gives the same answer.
    assert abs(abs(eigvecs[:, 0] @ (np.ones(3) / np.sqrt(3))) - 1) < 1e-3
    np.testing.assert_allclose(fit_pca_colour(iter(list(images)))[0], eigvals, rtol=1e-5)
    assert np.allclose(fit_pca_colour(images, max_images=5)[0],
                       fit_pca_colour(images[:5])[0])


def test_pca_colour_shift_formula_and_direction():
    eigvals, eigvecs = fit_pca_colour(correlated_images())
    shift = pca_colour_shift(eigvals, eigvecs, np.random.default_rng(3), std=0.1)
    a = np.random.default_rng(3).normal(0, 0.1, size=3)
    np.testing.assert_allclose(shift, eigvecs @ (a * eigvals), rtol=1e-5)
    # Over many draws the shifts have covariance sum_i (0.1 lambda_i)^2 p_i p_i^T: mostly along p1.
    rng = np.random.default_rng(0)
    shifts = np.stack([pca_colour_shift(eigvals, eigvecs, rng) for _ in range(4000)])
    expected = (eigvecs * (0.1 * eigvals) ** 2) @ eigvecs.T
    np.testing.assert_allclose(np.cov(shifts.T, bias=True), expected, rtol=0.1,
                               atol=0.1 * expected.max())


def test_mean_image_in_memory_and_from_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (10, 6, 6, 3), dtype=np.uint8)
    dataset = ArrayDataset(images, np.arange(10) % 2, ["a", "b"])
    np.testing.assert_allclose(compute_mean_image(dataset, 6), images.mean(axis=0), rtol=1e-6)
    sample = compute_mean_image(dataset, 6, max_images=4, seed=1)
    chosen = np.sort(np.random.default_rng(1).choice(10, 4, replace=False))
    np.testing.assert_allclose(sample, images[chosen].mean(axis=0), rtol=1e-6)
    # The file path (decoded one by one in threads) gives the same mean, skipping a bad file.
    paths = []
    for k, image in enumerate(images):
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(image).save(paths[-1])
    (tmp_path / "bad.png").write_bytes(b"broken")
    files = FolderDataset(paths + [str(tmp_path / "bad.png")], [0] * 11, ["a"], image_size=6)
    np.testing.assert_allclose(compute_mean_image(files, 6), images.mean(axis=0), rtol=1e-6)


def test_std_divides_by_the_training_pixels_standard_deviation(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    dataset = ArrayDataset(images, np.arange(12) % 2, ["a", "b"])
    # naive: every value of every image, all channels together, one at a time
    values = [float(v) for v in images.reshape(-1)]
    mean = sum(values) / len(values)
    naive_std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    assert dataset_statistics(dataset, 8, pca_images=0)["pixel_std"] == pytest.approx(naive_std, rel=1e-9)
    paths = []
    for k, image in enumerate(images):                 # the file path gives the same number
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(image).save(paths[-1])
    files = FolderDataset(paths, [0] * 12, ["a"], image_size=8)
    assert dataset_statistics(files, 8, pca_images=0)["pixel_std"] == pytest.approx(naive_std, rel=1e-9)

    prep = Preprocess.from_dataset(dataset, 6, stored_size=8, mean="image", pca=False, std=True)
    assert prep.std == pytest.approx(naive_std, rel=1e-9)
    expected = (images[0].astype(np.float32) - prep.mean)[1:7, 1:7] / naive_std
    np.testing.assert_allclose(prep.eval(images[0]), expected.transpose(2, 0, 1), rtol=1e-5, atol=1e-6)
    # every path divides by the same number: the batches equal the one-image references
    np.testing.assert_array_equal(prep.eval_batch(images)[0], prep.eval(images[0]))
    np.testing.assert_array_equal(prep.eval_ten_crop(images[0])[4], prep.eval(images[0]))
    draws = prep.draw(3, np.random.default_rng(1))
    batch = prep.train_batch(images[:3], draws)
    for j in range(3):
        np.testing.assert_array_equal(batch[j], prep.augment(
            images[j], int(draws.tops[j]), int(draws.lefts[j]), bool(draws.mirrors[j])))
    copy = Preprocess(**prep.state_dict())
    assert copy.std == prep.std and np.array_equal(copy.eval(images[1]), prep.eval(images[1]))
    with pytest.raises(ValueError, match="std must be positive, got 0"):
        Preprocess(6, 8, std=0.0)


def test_default_stored_size():
    assert default_stored_size(227) == 256
    assert default_stored_size(32) == 36 and default_stored_size(28) == 32


def test_preprocess_train_equals_the_step_by_step_recipe():
    rng_images = np.random.default_rng(0)
    image = rng_images.integers(0, 256, (36, 36, 3), dtype=np.uint8)
    mean = rng_images.random((36, 36, 3)).astype(np.float32) * 255
    eigvals, eigvecs = fit_pca_colour(correlated_images())
    prep = Preprocess(32, mean=mean, pca=(eigvals, eigvecs), flip=True, scale=True)
    assert prep.stored_size == 36
    out = prep.train(image, np.random.default_rng(7))
    # The same draws, by hand: top, left, flip, then a_1..a_3.
    rng = np.random.default_rng(7)
    top, left = int(rng.integers(0, 5)), int(rng.integers(0, 5))
    mirror = rng.random() < 0.5
    shift = pca_colour_shift(eigvals, eigvecs, rng)
    expected = (image.astype(np.float32) - mean)[top:top + 32, left:left + 32] + 255 * shift
    if mirror:
        expected = expected[:, ::-1]
    np.testing.assert_allclose(out, expected.transpose(2, 0, 1) / 255, atol=1e-5)
    assert out.dtype == np.float32 and out.shape == (3, 32, 32) and out.flags.c_contiguous
    # Same generator state, same output; different seeds usually differ.
    assert np.array_equal(out, prep.train(image, np.random.default_rng(7)))


def test_preprocess_eval_and_ten_crop():
    image = np.random.default_rng(1).integers(0, 256, (28, 28, 1), dtype=np.uint8)
    prep = Preprocess(28, mean=np.array([100.0]), scale=False)          # stored 32, per-channel mean
    stored = to_stored_size(image, 32).astype(np.float32) - 100.0
    centre = prep.eval(image)
    assert centre.shape == (1, 28, 28)
    np.testing.assert_allclose(centre[0], stored[2:30, 2:30, 0], atol=1e-4)
    views = prep.eval_ten_crop(image)
    assert views.shape == (10, 1, 28, 28) and views.dtype == np.float32
    np.testing.assert_allclose(views[4], centre, atol=1e-4)
    np.testing.assert_allclose(views[9], centre[:, :, ::-1], atol=1e-4)
    np.testing.assert_allclose(views[0, 0], stored[:28, :28, 0], atol=1e-4)


def test_preprocess_from_dataset_and_state():
    images = correlated_images(n=20)
    dataset = ArrayDataset(images, np.arange(20) % 2, ["a", "b"])
    prep = Preprocess.from_dataset(dataset, 8, stored_size=8, mean="image")
    np.testing.assert_allclose(prep.mean, images.mean(0), rtol=1e-5)
    np.testing.assert_allclose(prep.pca[0], fit_pca_colour(images)[0], rtol=1e-4)
    channel = Preprocess.from_dataset(dataset, 6, mean="channel", pca=False)
    assert channel.mean.shape == (3,) and channel.pca is None and channel.stored_size == 7
    copy = Preprocess(**prep.state_dict())
    rng = lambda: np.random.default_rng(5)  # noqa: E731
    assert np.array_equal(copy.train(images[0], rng()), prep.train(images[0], rng()))
    with pytest.raises(ValueError, match="stored_size 20 < crop_size 24"):
        Preprocess(24, 20)
    with pytest.raises(ValueError, match="mean image is"):
        Preprocess(8, 8, mean=np.zeros((9, 9, 3)))


def test_padding_preprocess_stores_an_image_inside_a_black_border():
    rng = np.random.default_rng(3)
    image = rng.integers(1, 256, (8, 8, 3), dtype=np.uint8)
    prep = Preprocess(8, padding=2)                            # stored at 8 + 2 * 2 = 12
    assert prep.stored_size == 12
    stored = prep.store(image)
    assert stored.shape == (12, 12, 3)
    assert np.array_equal(stored[2:10, 2:10], image)
    assert stored.sum() == image.sum()                         # the border is zeros
    # the centre crop is the image itself; the corner views shift it by 2 pixels
    np.testing.assert_array_equal(prep.eval(image), image.transpose(2, 0, 1) * np.float32(1 / 255))
    top_left = prep.eval_ten_crop(image)[0]
    np.testing.assert_array_equal(top_left[:, 2:, 2:], image[:6, :6].transpose(2, 0, 1) * np.float32(1 / 255))
    assert not top_left[:, :2].any()
    # an image of another size is brought to the crop size first, then padded
    big = rng.integers(0, 256, (20, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(prep.store(big)[2:10, 2:10], to_stored_size(big, 8))
    np.testing.assert_array_equal(prep.store_images(big[None])[0], prep.store(big))
    # an image already at the stored size is taken as stored (the in-memory data sets)
    assert np.array_equal(prep.store(stored), stored)
    with pytest.raises(ValueError, match="padding 2 needs stored_size = crop_size"):
        Preprocess(8, 11, padding=2)
