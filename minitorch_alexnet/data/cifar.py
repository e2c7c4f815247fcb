"""CIFAR-10 from the official Python version: ``cifar-10-batches-py/`` or its ``.tar.gz``.

Each batch file (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) is a pickled dict with
bytes keys: ``b"data"``, a uint8 array (10000, 3072) holding each 32 x 32 image as 1024 red,
then 1024 green, then 1024 blue values, row by row; ``b"labels"``, a list of ints 0..9;
``b"batch_label"`` and ``b"filenames"``. ``batches.meta`` holds ``b"label_names"``.

Security: a pickle file is a small program. Unpickling calls whatever functions the file
names, so a crafted "batch file" can run ``os.system("...")``. ``RestrictedUnpickler`` admits
only the globals a CIFAR batch needs: numpy's array reconstruction (``_reconstruct``,
``ndarray``, ``dtype``) and ``_codecs.encode`` limited to latin-1 (how Python 3 writes bytes at
pickle protocol 2). Any other global stops the load with a ``DataError`` before anything runs.
The tar archive is read in memory; nothing is extracted to disk.
"""
import io
import os
import pickle
import tarfile

import numpy as np

from .arrays import ArrayDataset, check_labels
from .errors import DataError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
TRAIN_BATCHES = [f"data_batch_{k}" for k in range(1, 6)]
TEST_BATCH = "test_batch"
FOLDER, ARCHIVE = "cifar-10-batches-py", "cifar-10-python.tar.gz"
LAYOUT = (f"the official CIFAR-10 Python files: a {FOLDER}/ directory with data_batch_1..5, "
          f"test_batch and batches.meta, or the {ARCHIVE} archive")


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """Stand-in for ``_codecs.encode``: pickle protocol 2 stores bytes as latin-1 text."""
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise ForbiddenGlobal(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1", errors)


def _allowed_globals():
    from numpy import dtype, ndarray
    allowed = {("numpy", "ndarray"): ndarray, ("numpy", "dtype"): dtype,
               ("_codecs", "encode"): _latin1_encode}
    # numpy moved its internals from numpy.core to numpy._core in 2.0; pickles name either.
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            allowed[(module, "_reconstruct")] = getattr(
                __import__(module, fromlist=["_reconstruct"]), "_reconstruct")
        except (ImportError, AttributeError):
            pass
    return allowed


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a function or class outside the allowed list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only numpy arrays, dtypes and latin-1 bytes."""

    def find_class(self, module, name):
        allowed = _allowed_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise ForbiddenGlobal(f"global '{module}.{name}' is not allowed in a CIFAR-10 batch file")


def restricted_load(data, source):
    """Unpickle ``data`` (bytes) with ``RestrictedUnpickler``; ``DataError`` naming ``source``
    if the file is not a clean pickle. ``encoding="bytes"`` reads the original Python 2 files."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ForbiddenGlobal as error:
        raise DataError(f"{source}: refused to unpickle: {error}") from None
    except Exception as error:  # noqa: BLE001 - truncated or garbled pickles raise many types
        raise DataError(f"{source}: not a valid CIFAR-10 pickle ({type(error).__name__}: "
                        f"{error})") from None


def _get(d, key):
    """A dict entry under a bytes key (original files) or a str key."""
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def parse_batch(data, source):
    """Turn one batch file's bytes into (images (N, 32, 32, 3) uint8, labels (N,) int64)."""
    d = restricted_load(data, source)
    if not isinstance(d, dict):
        raise DataError(f"{source}: expected a pickled dict, got {type(d).__name__}")
    x, labels = _get(d, "data"), _get(d, "labels")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        desc = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"{source}: 'data' must be a uint8 array (N, 3072), got {desc}")
    if not isinstance(labels, (list, tuple, np.ndarray)) or \
            not all(isinstance(v, (int, np.integer)) for v in labels):
        raise DataError(f"{source}: 'labels' must be a list of ints")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(x):
        raise DataError(f"{source}: {len(x)} images but {len(labels)} labels")
    check_labels(labels, len(CLASSES), source)
    # Row k of `data` is [R plane (32 x 32), G plane, B plane]: reshape to (N, 3, 32, 32),
    # then move channels last.
    images = np.ascontiguousarray(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


class _Source:
    """The batch files, from a directory or a tar.gz archive (read in memory)."""

    def __init__(self, path):
        self.path = path
        self.tar, self.folder = None, None
        candidates = [path, os.path.join(path, FOLDER)] if os.path.isdir(path) else []
        for folder in candidates:
            if os.path.isfile(os.path.join(folder, TEST_BATCH)) or \
                    os.path.isfile(os.path.join(folder, TRAIN_BATCHES[0])):
                self.folder = folder
                return
        archive = path if os.path.isfile(path) else os.path.join(path, ARCHIVE)
        if os.path.isfile(archive):
            try:
                self.tar = tarfile.open(archive, "r:*")
                self.members = {os.path.basename(m.name): m for m in self.tar.getmembers()
                                if m.isfile()}
            except (tarfile.TarError, OSError, EOFError) as error:
                raise DataError(f"CIFAR-10: cannot read archive {archive!r} ({error})") from None
            self.path = archive
            return
        raise DataError(f"CIFAR-10: nothing found at {path!r}; expected {LAYOUT}")

    def read(self, name):
        if self.folder is not None:
            file = os.path.join(self.folder, name)
            if not os.path.isfile(file):
                return None, file
            with open(file, "rb") as f:
                return f.read(), file
        member = self.members.get(name)
        source = f"{self.path}:{name}"
        if member is None:
            return None, source
        return self.tar.extractfile(member).read(), source


def _load(source, names):
    images, labels = [], []
    for name in names:
        data, where = source.read(name)
        if data is None:
            raise DataError(f"CIFAR-10: {where} not found; expected {LAYOUT}")
        x, y = parse_batch(data, where)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _class_names(source):
    data, where = source.read("batches.meta")
    if data is None:
        return CLASSES
    meta = restricted_load(data, where)
    names = _get(meta, "label_names") if isinstance(meta, dict) else None
    if not isinstance(names, (list, tuple)) or len(names) != len(CLASSES):
        raise DataError(f"{where}: expected 'label_names', a list of {len(CLASSES)} names")
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


def build(data_dir, val_dir=None):
    """Training set from data_batch_1..5, validation set from test_batch (of ``val_dir`` if
    given). ``data_dir`` is the batches directory, its parent, or the .tar.gz archive."""
    if not data_dir:
        raise DataError(f"CIFAR-10 needs --data-dir: {LAYOUT}")
    source = _Source(data_dir)
    classes = _class_names(source)
    train = ArrayDataset(*_load(source, TRAIN_BATCHES), classes, f"cifar10 train ({source.path})")
    val_source = _Source(val_dir) if val_dir else source
    val = ArrayDataset(*_load(val_source, [TEST_BATCH]), classes, f"cifar10 test ({val_source.path})")
    return train, val
