"""Reading Fashion-MNIST (IDX), CIFAR-10 (pickled batches) and image folders, from small files
generated here in the real formats."""
import gzip
import os
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from minitorch_alexnet.data import DataError, FolderDataset, build_datasets, cifar, folder

pytestmark = pytest.mark.data

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


# ---------------------------------------------------------------------------- IDX helpers

def write_idx(path, array, magic=None, compress=False, shape=None):
    """Write ``array`` (uint8) as an IDX file; ``magic``/``shape`` override the header."""
    array = np.asarray(array, dtype=np.uint8)
    shape = array.shape if shape is None else shape
    magic = (0x0800 + len(shape)) if magic is None else magic
    data = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in shape)
    data += array.tobytes()
    if compress:
        path = str(path) + ".gz"
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_fmnist(folder_path, n_train=30, n_test=10, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        write_idx(folder_path / f"{split}-images-idx3-ubyte", images, compress=compress)
        write_idx(folder_path / f"{split}-labels-idx1-ubyte", labels, compress=compress)
        out[split] = (images, labels)
    return out


@pytest.mark.parametrize("compress", [True, False])
def test_idx_generated_files(tmp_path, compress):
    truth = write_fmnist(tmp_path, compress=compress)
    train, val = build_datasets("fashion-mnist", str(tmp_path))
    assert len(train) == 30 and len(val) == 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    image, label = train.load(4)
    assert image.shape == (28, 28, 1) and image.dtype == np.uint8
    assert np.array_equal(image[:, :, 0], truth["train"][0][4]) and label == 4
    assert np.array_equal(val.labels, truth["t10k"][1])
    rgb, _ = build_datasets("fashion-mnist", str(tmp_path), rgb=True, image_size=32, limit_train=5)
    assert rgb.images.shape == (5, 32, 32, 3)


def test_idx_val_dir(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_fmnist(tmp_path / "a", n_test=10)
    truth_b = write_fmnist(tmp_path / "b", n_test=20, seed=1)
    _, val = build_datasets("fashion-mnist", str(tmp_path / "a"), str(tmp_path / "b"))
    assert len(val) == 20 and np.array_equal(val.images[..., 0], truth_b["t10k"][0])


@pytest.mark.skipif(not os.path.isdir(FMNIST_DIR), reason="dataset-fashion-mnist not installed")
def test_idx_real_fashion_mnist():
    train, val = build_datasets("fashion-mnist")
    assert len(train) == 60000 and len(val) == 10000
    assert train.images.shape == (60000, 28, 28, 1)
    assert train.labels.min() == 0 and train.labels.max() == 9
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(val.labels).tolist() == [1000] * 10


def test_idx_errors_name_the_file(tmp_path):
    write_fmnist(tmp_path, compress=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    images = tmp_path / "train-images-idx3-ubyte"
    # Labels file with an image magic number.
    write_idx(labels, np.arange(30) % 10, magic=0x0803, shape=(30,))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: wrong IDX magic number 0x00000803"):
        build_datasets("fashion-mnist", str(tmp_path))
    # Image and label files that disagree on the count.
    write_idx(labels, np.arange(29) % 10)
    with pytest.raises(DataError, match=r"30 images but .*train-labels-idx1-ubyte has 29 labels"):
        build_datasets("fashion-mnist", str(tmp_path))
    # A label out of range.
    write_idx(labels, np.r_[np.arange(29) % 10, 10])
    with pytest.raises(DataError, match=r"label 10 at position 29 is outside 0..9"):
        build_datasets("fashion-mnist", str(tmp_path))
    # A header count that disagrees with the data (file truncated).
    write_idx(labels, np.arange(30) % 10)
    write_idx(images, np.zeros((29, 28, 28)), shape=(30, 28, 28))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: header says shape \(30, 28, 28\)"):
        build_datasets("fashion-mnist", str(tmp_path))


def test_idx_missing_directory_and_files(tmp_path):
    with pytest.raises(DataError, match=r"'.*nowhere' does not exist.*train-images-idx3-ubyte"):
        build_datasets("fashion-mnist", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\[.gz\].*not found in"):
        build_datasets("fashion-mnist", str(tmp_path))


# ---------------------------------------------------------------------------- CIFAR helpers

def cifar_batch(n, seed, labels=None):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = list(range(n)) if labels is None else labels
    labels = [int(v) % 10 for v in labels]
    return {b"batch_label": b"fake batch", b"labels": labels, b"data": data,
            b"filenames": [b"img_%d.png" % k for k in range(n)]}


def write_cifar(root, n=6):
    """The official layout, small: data_batch_1..5 with n images each, test_batch, meta."""
    folder_path = root / "cifar-10-batches-py"
    folder_path.mkdir(parents=True)
    batches = {}
    for k, name in enumerate(cifar.TRAIN_BATCHES + [cifar.TEST_BATCH]):
        batches[name] = cifar_batch(n, k)
        with open(folder_path / name, "wb") as f:
            pickle.dump(batches[name], f, protocol=2)
    meta = {b"label_names": [c.encode() for c in cifar.CLASSES], b"num_vis": 3072}
    with open(folder_path / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder_path, batches


def test_cifar_directory_parent_and_pixel_layout(tmp_path):
    folder_path, batches = write_cifar(tmp_path)
    for where in (folder_path, tmp_path):         # the batches folder or its parent
        train, val = build_datasets("cifar10", str(where))
        assert len(train) == 30 and len(val) == 6
        assert train.classes == cifar.CLASSES
    # Row = 1024 red values, 1024 green, 1024 blue, each row-major over 32 x 32.
    row = batches["data_batch_2"][b"data"][1]
    image, label = train.load(6 + 1)               # second image of the second batch
    assert label == 1
    assert image.shape == (32, 32, 3)
    assert image[0, 0, 0] == row[0] and image[0, 0, 1] == row[1024] and image[0, 0, 2] == row[2048]
    assert image[1, 2, 2] == row[2048 + 32 + 2]


def test_cifar_tar_gz(tmp_path):
    folder_path, batches = write_cifar(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder_path, arcname="cifar-10-batches-py")
    for where in (archive, tmp_path):              # the archive or the folder holding it
        train, val = build_datasets("cifar10", str(where))
        assert len(train) == 30
        assert np.array_equal(val.labels, batches["test_batch"][b"labels"])


def test_cifar_labels_out_of_range_and_wrong_data(tmp_path):
    folder_path, _ = write_cifar(tmp_path)
    bad = cifar_batch(6, 0)
    bad[b"labels"] = [0, 1, 2, 3, 4, 12]
    with open(folder_path / "data_batch_3", "wb") as f:
        pickle.dump(bad, f, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_3: label 12 at position 5 is outside 0..9"):
        build_datasets("cifar10", str(folder_path))
    bad = cifar_batch(6, 0)
    bad[b"data"] = bad[b"data"].astype(np.float64)
    with open(folder_path / "data_batch_3", "wb") as f:
        pickle.dump(bad, f, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_3: 'data' must be a uint8 array"):
        build_datasets("cifar10", str(folder_path))
    os.remove(folder_path / "data_batch_3")
    with pytest.raises(DataError, match=r"data_batch_3 not found"):
        build_datasets("cifar10", str(folder_path))


class _RunsCode:
    """Pickles as a call of os.system: what a crafted batch file would contain."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_cifar_malicious_pickle_runs_nothing(tmp_path):
    folder_path, _ = write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    payload = {b"data": _RunsCode(f"touch {marker}"), b"labels": [0]}
    with open(folder_path / "data_batch_1", "wb") as f:
        pickle.dump(payload, f, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_1: refused to unpickle: global '(posix|nt|os)\.system' is not allowed"):
        build_datasets("cifar10", str(folder_path))
    assert not marker.exists()
    # Other classic gadgets are refused too.
    for module, name in (("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load")):
        data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x001\x85R."
        with pytest.raises(DataError, match=f"global '{module}.{name}' is not allowed"):
            cifar.restricted_load(data, "crafted")


def test_cifar_missing(tmp_path):
    with pytest.raises(DataError, match=r"nothing found at .*cifar-10-batches-py/ directory"):
        build_datasets("cifar10", str(tmp_path))
    with pytest.raises(DataError, match="needs --data-dir"):
        build_datasets("cifar10")


# ---------------------------------------------------------------------------- folder helpers

def save_image(path, mode, size=(40, 30), value=0):
    """Write a small image of Pillow mode ``mode`` (format from the extension)."""
    w, h = size
    rng = np.random.default_rng(value)
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, size=(h, w), dtype=np.uint16))
    elif mode == "P":
        im = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).convert("P")
    else:
        bands = len(Image.new(mode, (1, 1)).getbands())
        array = rng.integers(0, 256, size=(h, w, bands), dtype=np.uint8)
        im = Image.fromarray(array[:, :, 0] if bands == 1 else array[:, :, :3])
        im = im.convert(mode) if im.mode != mode else im   # e.g. RGB -> CMYK
    im.save(path)
    return path


MIXED = [("a.png", "L"), ("b.PNG", "RGBA"), ("c.gif", "P"), ("d.jpg", "CMYK"), ("e.tif", "I;16"),
         ("f.JPEG", "RGB"), ("g.bmp", "RGB"), ("h.webp", "RGB"), ("i.ppm", "RGB")]


def make_class_tree(root, classes=("cats", "dogs"), per_class=5):
    for c in classes:
        (root / c).mkdir(parents=True)
        for k in range(per_class):
            name, mode = MIXED[k % len(MIXED)]
            save_image(root / c / f"{k}_{name}", mode, value=k)
    (root / "cats" / "notes.txt").write_text("not an image, ignored by extension")


def test_folder_class_layout_mixed_modes(tmp_path):
    make_class_tree(tmp_path, per_class=len(MIXED))
    train, val = build_datasets("folder", str(tmp_path), val_fraction=0.25, image_size=24)
    assert train.classes == ["cats", "dogs"]
    assert len(train) + len(val) == 2 * len(MIXED)
    assert isinstance(train, FolderDataset)
    for ds in (train, val):
        for i in range(len(ds)):
            image, label = ds.load(i)
            assert image.shape == (24, 24, 3) and image.dtype == np.uint8
            expected = os.path.basename(os.path.dirname(ds.paths[i]))
            assert ds.classes[label] == expected    # the label is the folder name


def test_folder_flat_kaggle_layout(tmp_path):
    for k in range(6):
        save_image(tmp_path / f"cat.{k}.jpg", "RGB", value=k)
        save_image(tmp_path / f"Dog.{k}.JPG", "RGB", value=10 + k)
    train, val = build_datasets("folder", str(tmp_path), val_fraction=0.34, image_size=16)
    assert train.classes == ["cat", "dog"]
    assert len(val) == 4 and len(train) == 8     # round(6 * 0.34) = 2 per class
    for ds in (train, val):
        for path, label in zip(ds.paths, ds.labels):
            assert os.path.basename(path).lower().startswith(ds.classes[label] + ".")
    assert np.bincount(val.labels).tolist() == [2, 2]


def test_folder_split_is_seeded_stratified_and_disjoint(tmp_path):
    for c in ("a", "b", "c"):
        (tmp_path / c).mkdir()
        for k in range(10):
            (tmp_path / c / f"{k}.png").write_bytes(b"")   # contents are not read by the split
    one = build_datasets("folder", str(tmp_path), seed=5)
    two = build_datasets("folder", str(tmp_path), seed=5)
    other = build_datasets("folder", str(tmp_path), seed=6)
    assert one[0].paths == two[0].paths and one[1].paths == two[1].paths
    assert one[1].paths != other[1].paths
    train, val = one
    assert np.bincount(val.labels).tolist() == [1, 1, 1]     # 10% of 10 per class
    assert not set(train.paths) & set(val.paths)
    assert len(set(train.paths) | set(val.paths)) == 30
    # The lists are shuffled, so the first images of the training set mix the classes.
    assert len(set(train.labels[:9].tolist())) > 1
    limited, limited_val = build_datasets("folder", str(tmp_path), seed=5, limit_train=7, limit_val=2)
    assert limited.paths == train.paths[:7] and limited_val.paths == val.paths[:2]


def test_folder_train_val_tree_and_val_dir(tmp_path):
    make_class_tree(tmp_path / "train", per_class=3)
    make_class_tree(tmp_path / "val", per_class=2)
    train, val = build_datasets("folder", str(tmp_path), image_size=16)
    assert len(train) == 6 and len(val) == 4
    assert all("/val/" in p for p in val.paths)
    # An explicit val_dir with a class the training set lacks.
    make_class_tree(tmp_path / "other", classes=("cats", "birds"), per_class=1)
    with pytest.raises(DataError, match=r"class 'birds' is not among the training classes"):
        build_datasets("folder", str(tmp_path / "train"), str(tmp_path / "other"))


def test_folder_missing_empty_and_unlabelled(tmp_path):
    with pytest.raises(DataError, match=r"'.*missing' does not exist; expected an image folder with one subfolder per class"):
        build_datasets("folder", str(tmp_path / "missing"))
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no images found in '.*empty'; expected .*cat\.123\.jpg"):
        build_datasets("folder", str(tmp_path / "empty"))
    (tmp_path / "test1").mkdir()
    save_image(tmp_path / "test1" / "1.jpg", "RGB")
    with pytest.raises(DataError, match=r"1.jpg: in a flat image folder the class is the file-name prefix"):
        build_datasets("folder", str(tmp_path / "test1"))
    (tmp_path / "one" / "cats").mkdir(parents=True)
    save_image(tmp_path / "one" / "cats" / "1.png", "RGB")
    with pytest.raises(DataError, match=r"only one class, 'cats'"):
        build_datasets("folder", str(tmp_path / "one"))
    with pytest.raises(DataError, match="needs --data-dir"):
        build_datasets("folder")


def test_holdout_split_edges():
    labels = np.array([0] * 3 + [1] * 1)
    train, val = folder.holdout_split(labels, 0.0, seed=0)
    assert len(val) == 0 and sorted(train.tolist()) == [0, 1, 2, 3]
    train, val = folder.holdout_split(labels, 0.5, seed=0)
    assert labels[val].tolist() == [0, 0]        # round(3 * 0.5) = 2 of class 0
    assert 3 in train.tolist()                   # a single-image class stays in training
    with pytest.raises(ValueError, match="val_fraction"):
        folder.holdout_split(labels, 1.0, seed=0)
