"""Fashion-MNIST from its IDX files (the MNIST file format), plain or gzip-compressed.

An IDX file is a big-endian header followed by raw values::

    bytes 0-1   0x00 0x00
    byte  2     value type: 0x08 = unsigned byte (the only type these data sets use)
    byte  3     number of dimensions d: 3 for images (count, rows, cols), 1 for labels
    4 * d bytes each dimension's size, a big-endian uint32
    then        prod(sizes) values, row-major

so the magic number of an image file is 0x00000803 (2051) and of a label file 0x00000801 (2049).
The files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` (60000 examples) and
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (10000), each optionally ``.gz``.
Debian's ``dataset-fashion-mnist`` package installs them in ``/usr/share/datasets/fashion-mnist``.
"""
import gzip
import os
import zlib

import numpy as np

from .arrays import ArrayDataset, check_labels
from .errors import DataError

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]

IMAGES_MAGIC, LABELS_MAGIC = 0x0803, 0x0801


def _read_bytes(path):
    """The file's bytes, decompressed if it is gzip (recognised by its 1f 8b signature)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: corrupt gzip data ({error})") from None
    return raw


def read_idx(path, expected_magic=None):
    """Read one IDX file into a uint8 array shaped by its header.

    Raises:
        DataError naming the file: wrong magic number, a value type other than unsigned
        byte, or a size that disagrees with the header.
    """
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if raw[:2] != b"\x00\x00" or (expected_magic is not None and magic != expected_magic):
        expected = f"0x{expected_magic:08x}" if expected_magic is not None else "0x0000TTDD"
        raise DataError(f"{path}: wrong IDX magic number 0x{magic:08x}, expected {expected}")
    if raw[2] != 0x08:
        raise DataError(f"{path}: IDX value type 0x{raw[2]:02x} is not 0x08 (unsigned byte)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    expected_size = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected_size:
        raise DataError(f"{path}: header says shape {shape} ({expected_size} bytes in all) "
                        f"but the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(directory, stem):
    """``directory/stem`` or ``directory/stem.gz``, whichever exists, else None."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def load_split(directory, split, *, rgb=False):
    """One split (``"train"`` or ``"t10k"``) as an ``ArrayDataset`` of (N, 28, 28, 1) images
    (or (N, 28, 28, 3) with ``rgb=True``, the grey value copied to the three channels)."""
    image_path = _find(directory, f"{split}-images-idx3-ubyte")
    label_path = _find(directory, f"{split}-labels-idx1-ubyte")
    if image_path is None or label_path is None:
        missing = [f"{split}-{kind}-idx{d}-ubyte[.gz]" for kind, d, p in
                   (("images", 3, image_path), ("labels", 1, label_path)) if p is None]
        raise DataError(f"Fashion-MNIST: {', '.join(missing)} not found in {directory!r}; "
                        "expected the IDX files train-images-idx3-ubyte.gz, "
                        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                        "t10k-labels-idx1-ubyte.gz (Debian: apt install dataset-fashion-mnist)")
    images = read_idx(image_path, IMAGES_MAGIC)
    labels = read_idx(label_path, LABELS_MAGIC)
    if images.ndim != 3:
        raise DataError(f"{image_path}: expected 3 dimensions (count, rows, cols), got {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{label_path}: expected 1 dimension (count), got {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{image_path} has {len(images)} images but {label_path} has "
                        f"{len(labels)} labels")
    check_labels(labels, len(CLASSES), label_path)
    images = images[..., None]                        # (N, 28, 28) -> (N, 28, 28, 1)
    if rgb:
        images = np.repeat(images, 3, axis=3)
    return ArrayDataset(images, labels, CLASSES, f"fashion-mnist {split} ({directory})")


def build(data_dir=None, val_dir=None, *, rgb=False):
    """Training set from ``train-*`` files, validation set from the ``t10k-*`` test files of
    ``val_dir`` (default: the same directory)."""
    directory = data_dir or DEFAULT_DIR
    if not os.path.isdir(directory):
        raise DataError(f"Fashion-MNIST: directory {directory!r} does not exist; expected the "
                        "IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz there "
                        "(Debian: apt install dataset-fashion-mnist, or pass --data-dir)")
    train = load_split(directory, "train", rgb=rgb)
    val = load_split(val_dir or directory, "t10k", rgb=rgb)
    return train, val
