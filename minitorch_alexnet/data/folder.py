"""Image folders: ``root/<class>/<image>`` trees, or flat ``<class>.<n>.<ext>`` files.

Two layouts are recognised:

1. *Class folders* (ImageNet-style, or Cats vs Dogs ``train/cats``, ``train/dogs``): every
   subfolder of the root is a class, named after the folder, and holds that class's images
   (searched recursively). Loose image files beside the class folders are ignored.
2. *Flat files* (Kaggle's Dogs vs Cats ``train/``): images directly in the root, named
   ``<class>.<anything>.<ext>`` such as ``cat.123.jpg``; the class is the part of the name
   before the first ``.``, lower-cased. Names whose prefix is a number (``1.jpg``, Kaggle's
   unlabelled test set) are an error: they carry no label.

A root whose only subfolders are ``train`` and some of ``val`` / ``valid`` / ``validation`` /
``test`` is a split tree: the training set comes from ``train``, and the validation set from
``val`` (or ``valid``, ``validation``) unless ``val_dir`` is given.

Without a validation folder, a seeded, stratified hold-out: in each class, ``round(n *
val_fraction)`` images (at least one when the class has two or more) go to validation. Both
lists are then shuffled with the same seed, so that "the first N images" (``--limit-train``) is
a mix of classes rather than the first class alone. Class names are sorted, so label k is the
k-th name in alphabetical order.

Images are decoded when loaded (``FolderDataset.load``), brought to the stored size (shorter
side to ``image_size``, then centre crop; 256 by default as in the paper).
"""
import os

import numpy as np

from .errors import DataError
from .images import IMAGE_EXTENSIONS, decode_image, is_image_file
from .transforms import to_stored_size

SPLIT_NAMES = ("train", "val", "valid", "validation", "test")
VAL_NAMES = ("val", "valid", "validation")
LAYOUT = ("an image folder with one subfolder per class (root/cats/1.jpg, root/dogs/2.jpg) or "
          "flat files named <class>.<n>.<ext> (root/cat.123.jpg, root/dog.456.jpg); image "
          "extensions: " + ", ".join(e[1:] for e in IMAGE_EXTENSIONS))


class FolderDataset:
    """Image files on disk with integer labels; decodes on ``load``.

    Attributes:
        paths: list of file paths; labels: (N,) int64; classes: class names.
        image_size: the stored side (None keeps the decoded size, which then varies).
        mode: ``"RGB"`` or ``"L"``.
    """

    def __init__(self, paths, labels, classes, *, image_size=256, mode="RGB", name="folder"):
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)
        self.image_size = image_size
        self.mode = mode
        self.name = name
        if len(self.paths) != len(self.labels):
            raise DataError(f"{name}: {len(self.paths)} paths but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise DataError(f"{name}: labels outside 0..{len(self.classes) - 1}")

    def __len__(self):
        return len(self.paths)

    def load(self, index):
        """Decode image ``index``: ``(uint8 (S, S, C), label)``; ``BadImageError`` if broken."""
        image = decode_image(self.paths[index], mode=self.mode, draft_size=self.image_size)
        if self.image_size is not None:
            image = to_stored_size(image, self.image_size)
        return image, int(self.labels[index])

    def subset(self, limit):
        """The first ``limit`` images (all of them if ``limit`` is None)."""
        if limit is None or limit >= len(self):
            return self
        return FolderDataset(self.paths[:limit], self.labels[:limit], self.classes,
                             image_size=self.image_size, mode=self.mode,
                             name=f"{self.name}[:{limit}]")

    def __repr__(self):
        return f"FolderDataset({self.name}, {len(self)} images, {len(self.classes)} classes)"


def _visible(entries):
    return [e for e in entries if not e.name.startswith(".")]


def _images_under(folder):
    """All image files under ``folder``, recursively, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [os.path.join(dirpath, f) for f in filenames
                  if is_image_file(f) and not f.startswith(".")]
    return sorted(found)


def scan(root):
    """Find the images of one folder: ``(paths, class_name_per_path, layout)`` with layout
    ``"class-folders"`` or ``"flat"``. ``DataError`` if the folder is missing or has none."""
    if not os.path.isdir(root):
        raise DataError(f"image folder {root!r} does not exist; expected {LAYOUT}")
    with os.scandir(root) as it:
        entries = sorted(_visible(it), key=lambda e: e.name)
    paths, names = [], []
    for entry in entries:
        if entry.is_dir():
            found = _images_under(entry.path)
            paths += found
            names += [entry.name] * len(found)
    if paths:
        return paths, names, "class-folders"
    for entry in entries:
        if entry.is_file() and is_image_file(entry.name):
            label = entry.name.split(".", 1)[0].lower()
            if not label or label.isdigit():
                raise DataError(
                    f"{entry.path}: in a flat image folder the class is the file-name prefix "
                    f"before the first '.', as in cat.123.jpg; {entry.name!r} has none "
                    f"(is this an unlabelled test folder?)")
            paths.append(entry.path)
            names.append(label)
    if paths:
        return paths, names, "flat"
    raise DataError(f"no images found in {root!r}; expected {LAYOUT}")


def holdout_split(labels, val_fraction, seed):
    """Seeded stratified split: returns (train_indices, val_indices), each shuffled.

    In every class (taken in label order, members in file order), a seeded permutation puts its
    first ``round(n_c * val_fraction)`` members (at least 1 if n_c >= 2 and val_fraction > 0,
    at most n_c - 1) into validation.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(members) * val_fraction))
        if val_fraction > 0 and len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    train = rng.permutation(np.concatenate(train)) if train else np.zeros(0, np.int64)
    val = rng.permutation(np.concatenate(val)) if val else np.zeros(0, np.int64)
    return train.astype(np.int64), val.astype(np.int64)


def build(data_dir, val_dir=None, *, seed=0, val_fraction=0.1, image_size=256, mode="RGB"):
    """Training and validation ``FolderDataset`` (see the module docstring for the rules)."""
    if not data_dir:
        raise DataError(f"the folder data set needs --data-dir: {LAYOUT}")
    root = data_dir
    if os.path.isdir(root):
        with os.scandir(root) as it:
            subdirs = {e.name for e in _visible(it) if e.is_dir()}
        if "train" in subdirs and subdirs <= set(SPLIT_NAMES):
            root = os.path.join(data_dir, "train")
            if val_dir is None:
                val_dir = next((os.path.join(data_dir, v) for v in VAL_NAMES if v in subdirs), None)
    paths, names, layout = scan(root)
    classes = sorted(set(names))
    if len(classes) < 2:
        raise DataError(f"{root!r} ({layout} layout) has only one class, {classes[0]!r}; "
                        f"expected {LAYOUT}")
    index = {name: k for k, name in enumerate(classes)}
    labels = np.array([index[n] for n in names], dtype=np.int64)
    kwargs = dict(image_size=image_size, mode=mode)
    if val_dir is None:
        train_idx, val_idx = holdout_split(labels, val_fraction, seed)
        pick = lambda idx: [paths[i] for i in idx]  # noqa: E731
        train = FolderDataset(pick(train_idx), labels[train_idx], classes,
                              name=f"{root} ({layout}, train split)", **kwargs)
        val = FolderDataset(pick(val_idx), labels[val_idx], classes,
                            name=f"{root} ({layout}, held-out split)", **kwargs)
        return train, val
    order = np.random.default_rng(seed).permutation(len(paths))
    train = FolderDataset([paths[i] for i in order], labels[order], classes,
                          name=f"{root} ({layout})", **kwargs)
    val_paths, val_names, val_layout = scan(val_dir)
    unknown = sorted(set(val_names) - set(classes))
    if unknown:
        raise DataError(f"{val_dir!r}: class {unknown[0]!r} is not among the training classes "
                        f"{classes} of {root!r}")
    val_labels = np.array([index[n] for n in val_names], dtype=np.int64)
    val_order = np.random.default_rng([seed, 1]).permutation(len(val_paths))
    val = FolderDataset([val_paths[i] for i in val_order], val_labels[val_order], classes,
                        name=f"{val_dir} ({val_layout})", **kwargs)
    return train, val
