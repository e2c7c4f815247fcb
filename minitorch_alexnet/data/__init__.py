"""Data: data sets, safe image decoding, AlexNet's augmentation, and a reproducible loader.

The trainer's view, in three steps::

    from minitorch_alexnet.data import build_datasets, Preprocess, DataLoader

    train_set, val_set = build_datasets("builtin", seed=0)        # or fashion-mnist, cifar10, folder
    prep = Preprocess.from_dataset(train_set, crop_size=32)       # mean image + colour PCA
                                                                  # (stored at 36, cropped to 32)
    loader = DataLoader(train_set, 128, seed=0, transform=prep, train=True)
    for epoch in range(epochs):
        for x, labels in loader.epoch(epoch):                     # x (B, C, 32, 32) float32
            ...
        report(loader.bad_images)                                  # [(path, reason), ...]

**Data sets** (``builtin.py``, ``idx.py``, ``cifar.py``, ``folder.py``) have ``classes`` (a
list of names), ``__len__`` and ``load(index) -> (image, label)``: image a uint8 array
(H, W, C), C = 3, or 1 for Fashion-MNIST unless ``rgb=True``; label an int. The in-memory ones
(``ArrayDataset``: builtin, fashion-mnist, cifar10) also expose ``images`` (N, H, W, C) and
``labels`` (N,); ``FolderDataset`` holds file paths and decodes on ``load``.

**Public API**

- ``build_datasets(name, data_dir=None, val_dir=None, *, seed=0, limit_train=None,
  limit_val=None, val_fraction=0.1, image_size=None, rgb=False, crop_padding=0)
  -> (train_set, val_set)``
- ``decode_image(path, *, mode="RGB", max_pixels=MAX_PIXELS, draft_size=None) -> uint8 (H, W, C)``
- transforms: ``resize_shorter_side(image, size)``, ``center_crop(image, size)``,
  ``to_stored_size(image, size)``, ``pad_images(images, padding)``,
  ``random_crop(image, size, rng)``, ``hflip(image)``,
  ``random_hflip(image, rng, p=0.5)``, ``ten_crop(image, size) -> (10, C, size, size)``,
  ``fit_pca_colour(images, *, max_images=None) -> (eigvals, eigvecs)``,
  ``pca_colour_shift(eigvals, eigvecs, rng, std=0.1) -> (C,)``,
  ``compute_mean_image(dataset, size, *, max_images=None, seed=0, num_workers=2)``,
  ``dataset_statistics(dataset, size, ...)``
- ``Preprocess(crop_size, stored_size=None, *, mean=None, pca=None, pca_std=0.1, flip=True,
  scale=True, erase=0.0, std=None, padding=0)`` and ``Preprocess.from_dataset(dataset,
  crop_size, ...)``, with ``store(image)``, ``store_images(images)``, ``train(image, rng)``,
  ``augment(image, top, left, mirror, pca_a=None)``, ``eval(image)``, ``eval_ten_crop(image)``,
  and for whole batches ``draw(n, rng) -> AugmentationDraws``, ``train_batch(images, draws)``,
  ``eval_batch(images)``;
  ``pca_colour_shifts(eigvals, eigvecs, a) -> (n, C)``
- ``DataLoader(dataset, batch_size, *, shuffle=None, seed=0, transform=None, train=True,
  ten_crop=False, num_workers=2, drop_last=False, prefetch=2, max_bad_fraction=0.01,
  batch_path=None, max_stored_bytes=2 GiB)`` with ``len(loader)``,
  ``loader.epoch(epoch, start_batch=0, earlier_bad=())``, ``loader.augmentation_draws(epoch)``,
  ``loader.bad_images``
- errors: ``DataError`` (a ``ValueError``), ``BadImageError(path, reason)`` (a ``DataError``)

**Sizes.** ``image_size`` is the side the images are stored at: the built-in set is drawn at
that size (default 32); Fashion-MNIST (28) and CIFAR-10 (32) are resized to it if given (with
``crop_padding`` P, these three are instead drawn at or resized to the crop size
image_size - 2 P and given a black border of P pixels, as torchvision's
``RandomCrop(padding=P)`` pads);
folder images are brought to it on load (shorter side, then centre crop; default 256 as in
the paper). ``Preprocess`` then crops ``crop_size`` windows from ``stored_size`` images,
resizing any image that is not already ``stored_size`` square. For in-memory data sets the
``DataLoader`` does that once for the whole array and keeps the result in memory (when it fits
in ``max_stored_bytes``, 2 GiB by default), then crops and augments whole batches with
``Preprocess.train_batch``; asking ``build_datasets`` for
``image_size=default_stored_size(crop_size)`` up front (as the trainer does) saves even that.
"""
from . import builtin, cifar, folder, idx
from .arrays import ArrayDataset
from .errors import BadImageError, DataError
from .folder import FolderDataset
from .images import IMAGE_EXTENSIONS, MAX_PIXELS, decode_image
from .loader import DataLoader
from .transforms import (AugmentationDraws, Preprocess, center_crop, compute_mean_image,
                         dataset_statistics, default_stored_size, fit_pca_colour, hflip,
                         pad_images, pca_colour_shift, pca_colour_shifts, random_crop, random_hflip,
                         resize_images, resize_shorter_side, ten_crop, to_stored_size)

DATASETS = ("builtin", "fashion-mnist", "cifar10", "folder")


def _resized(dataset, image_size, crop_padding=0):
    """An in-memory data set at the stored size ``image_size``: resized to it, or with
    ``crop_padding`` P, resized to the crop (image_size - 2 P) if need be and then padded by P
    black pixels on every side."""
    if crop_padding:
        padded = _resized(dataset, image_size - 2 * crop_padding)
        return ArrayDataset(pad_images(padded.images, crop_padding), padded.labels,
                            padded.classes, f"{padded.name} padded by {crop_padding}")
    if image_size is None or dataset.images.shape[1:3] == (image_size, image_size):
        return dataset
    return ArrayDataset(resize_images(dataset.images, image_size), dataset.labels,
                        dataset.classes, f"{dataset.name} at {image_size}x{image_size}")


def build_datasets(name="builtin", data_dir=None, val_dir=None, *, seed=0, limit_train=None,
                   limit_val=None, val_fraction=0.1, image_size=None, rgb=False, crop_padding=0):
    """The training and validation sets of data set ``name``.

    Args:
        name: ``"builtin"`` (generated, no files), ``"fashion-mnist"`` (IDX files; default
            directory ``/usr/share/datasets/fashion-mnist``), ``"cifar10"`` (the
            ``cifar-10-batches-py`` directory or ``cifar-10-python.tar.gz``) or ``"folder"``
            (class subfolders or flat ``cat.123.jpg`` files).
        data_dir: where the files are (not used by ``builtin``).
        val_dir: a separate validation source; otherwise the test split (fashion-mnist,
            cifar10), the ``val`` folder or a seeded hold-out of ``val_fraction`` (folder),
            or an independent generated set (builtin).
        seed: seeds the built-in generator and the folder hold-out split.
        limit_train, limit_val: keep only the first N images (after the split).
        image_size: stored side length (see the module docstring).
        rgb: Fashion-MNIST with three identical channels instead of one.
        crop_padding: P > 0 stores the in-memory sets (builtin, fashion-mnist, cifar10) at the
            crop size image_size - 2 P with P black pixels added on every side, instead of
            resized to image_size: random crops then shift the image itself by up to P pixels.

    Raises:
        DataError: a missing or empty directory (the message says where and which layout),
            malformed files, labels out of range.
    """
    if crop_padding and name == "folder":
        raise DataError("crop padding pads the data sets held in memory (builtin, fashion-mnist, "
                        "cifar10); folder images are resized to the stored size instead")
    if crop_padding and image_size is None:
        raise DataError("crop padding needs the stored size (image_size)")
    if name == "builtin":
        # Draw only what the limits keep (the first k pictures do not depend on n).
        train, val = builtin.build(
            seed, size=(image_size or builtin.DEFAULT_SIZE) - 2 * crop_padding,
            n_train=min(limit_train or builtin.DEFAULT_TRAIN, builtin.DEFAULT_TRAIN),
            n_val=min(limit_val or builtin.DEFAULT_VAL, builtin.DEFAULT_VAL))
        train, val = _resized(train, image_size, crop_padding), _resized(val, image_size, crop_padding)
    elif name == "fashion-mnist":
        train, val = idx.build(data_dir, val_dir, rgb=rgb)
        train, val = _resized(train, image_size, crop_padding), _resized(val, image_size, crop_padding)
    elif name == "cifar10":
        train, val = cifar.build(data_dir, val_dir)
        train, val = _resized(train, image_size, crop_padding), _resized(val, image_size, crop_padding)
    elif name == "folder":
        train, val = folder.build(data_dir, val_dir, seed=seed, val_fraction=val_fraction,
                                  image_size=image_size or 256)
    else:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return train.subset(limit_train), val.subset(limit_val)


def image_channels(dataset):
    """1 for grayscale data sets, 3 for colour ones, without decoding an image (the first one
    may be unreadable)."""
    if hasattr(dataset, "images"):
        return int(dataset.images.shape[-1])
    return 1 if getattr(dataset, "mode", "RGB") == "L" else 3


__all__ = [
    "ArrayDataset", "AugmentationDraws", "BadImageError", "DATASETS", "DataError", "DataLoader", "FolderDataset",
    "IMAGE_EXTENSIONS", "MAX_PIXELS", "Preprocess", "build_datasets", "builtin", "center_crop",
    "cifar", "compute_mean_image", "dataset_statistics", "decode_image", "default_stored_size",
    "fit_pca_colour", "folder", "hflip", "idx", "image_channels", "pca_colour_shift", "pca_colour_shifts", "random_crop",
    "pad_images", "random_hflip", "resize_images", "resize_shorter_side", "ten_crop", "to_stored_size",
]
