"""``ArrayDataset``: a data set held in memory as one uint8 array of images and one of labels.

The built-in, Fashion-MNIST and CIFAR-10 data sets are all of this kind.
"""
import numpy as np

from .errors import DataError


def check_labels(labels, num_classes, source):
    """Raise ``DataError`` naming ``source`` unless every label is an int in [0, num_classes)."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        position = int(np.flatnonzero((labels < 0) | (labels >= num_classes))[0])
        raise DataError(f"{source}: label {int(bad[0])} at position {position} is outside "
                        f"0..{num_classes - 1} ({len(bad)} such labels)")


class ArrayDataset:
    """Images (N, H, W, C) uint8 and labels (N,) int64 in memory.

    Attributes:
        images, labels: the arrays.
        classes: list of class names; ``labels`` index into it.
        name: a short description for messages.
    """

    def __init__(self, images, labels, classes, name="arrays"):
        images = np.asarray(images)
        labels = np.asarray(labels).astype(np.int64)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise DataError(f"{name}: images must be a uint8 array (N, H, W, C), "
                            f"got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise DataError(f"{name}: {len(images)} images but {len(labels)} labels")
        check_labels(labels, len(classes), name)
        self.images, self.labels = images, labels
        self.classes = list(classes)
        self.name = name

    def __len__(self):
        return len(self.labels)

    def load(self, index):
        """Return ``(image (H, W, C) uint8, label int)``."""
        return self.images[index], int(self.labels[index])

    def subset(self, limit):
        """The first ``limit`` examples (all of them if ``limit`` is None)."""
        if limit is None or limit >= len(self):
            return self
        return ArrayDataset(self.images[:limit], self.labels[:limit], self.classes,
                            f"{self.name}[:{limit}]")

    def __repr__(self):
        h, w, c = self.images.shape[1:]
        return f"ArrayDataset({self.name}, {len(self)} images {h}x{w}x{c}, {len(self.classes)} classes)"
