"""A fuzz campaign over every reader of files: IDX, CIFAR-10 batches, image files, image
folders and checkpoints.

Each test starts from a valid file, lets hypothesis damage it (truncate it, overwrite bytes,
insert or delete a run of bytes, or replace it with random bytes) and reads it back. The
reader must either return data of the promised shape and dtype or raise the project's own
error (``DataError``, ``BadImageError``, ``CheckpointError``) with a message naming the file:
never another exception, never a hang. For checkpoints, what loads must equal what was saved:
damage is either detected or harmless, so nothing is silently lost.

FUZZ_EXAMPLES damaged files per format: a few dozen in the default profile (CI), a few
hundred with ``HYPOTHESIS_PROFILE=thorough``.
"""
import gzip
import io
import os
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet.data import cifar, folder, idx
from minitorch_alexnet.data.errors import BadImageError, DataError
from minitorch_alexnet.data.images import decode_image

pytestmark = [pytest.mark.faults, pytest.mark.data]

FUZZ_EXAMPLES = 300 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 40
fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@st.composite
def damage(draw, size):
    """A list of edits to a file of ``size`` bytes (applied in order by ``apply``)."""
    kinds = st.sampled_from(["truncate", "overwrite", "insert", "delete", "random"])
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(kinds)
        position = draw(st.integers(0, max(0, size - 1)))
        edits.append((kind, position, draw(st.binary(min_size=1, max_size=16))))
    return edits


def apply(data, edits):
    for kind, position, chunk in edits:
        position = min(position, len(data))
        if kind == "truncate":
            data = data[:position]
        elif kind == "overwrite":
            data = data[:position] + chunk + data[position + len(chunk):]
        elif kind == "insert":
            data = data[:position] + chunk + data[position:]
        elif kind == "delete":
            data = data[:position] + data[position + len(chunk):]
        else:
            data = chunk * 8
    return data


def idx_bytes(array):
    """An unsigned-byte IDX file: magic 0x0000 08 ndim, big-endian sizes, the values."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


VALID_IDX = idx_bytes(np.random.default_rng(0).integers(0, 256, size=(3, 4, 5)))


@fuzz
@given(edits=damage(len(VALID_IDX)), compressed=st.booleans())
def test_idx_reader_returns_an_array_or_a_data_error(tmp_path, edits, compressed):
    data = apply(VALID_IDX, edits)
    path = tmp_path / ("images.idx3-ubyte.gz" if compressed else "images.idx3-ubyte")
    path.write_bytes(gzip.compress(data) if compressed else data)
    try:
        array = idx.read_idx(str(path))
    except DataError as error:
        assert str(path) in str(error)
        return
    assert array.dtype == np.uint8 and array.size == int(np.prod(array.shape))


def cifar_batch_bytes(n=2):
    rng = np.random.default_rng(1)
    batch = {b"data": rng.integers(0, 256, size=(n, 3072)).astype(np.uint8),
             b"labels": [int(v) for v in rng.integers(0, 10, n)]}
    return pickle.dumps(batch, protocol=2)


VALID_CIFAR = cifar_batch_bytes()


@fuzz
@given(edits=damage(len(VALID_CIFAR)))
def test_cifar_batch_reader_returns_images_or_a_data_error(edits):
    try:
        images, labels = cifar.parse_batch(apply(VALID_CIFAR, edits), "data_batch_1")
    except DataError as error:
        assert "data_batch_1" in str(error)
        return
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
    assert len(labels) == len(images)


def image_bytes(fmt):
    from PIL import Image
    pixels = np.random.default_rng(2).integers(0, 256, size=(12, 9, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


VALID_IMAGES = {fmt: image_bytes(fmt) for fmt in ("PNG", "JPEG", "BMP", "GIF")}


@fuzz
@given(fmt=st.sampled_from(sorted(VALID_IMAGES)), data=st.data())
def test_image_decoder_returns_rgb_or_a_bad_image_error(tmp_path, fmt, data):
    edits = data.draw(damage(len(VALID_IMAGES[fmt])))
    path = tmp_path / f"picture.{fmt.lower()}"
    path.write_bytes(apply(VALID_IMAGES[fmt], edits))
    try:
        image = decode_image(str(path))
    except BadImageError as error:
        assert str(path) in str(error)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@fuzz
@given(layout=st.lists(st.tuples(st.sampled_from(["cats", "dogs", ".hidden", "empty"]),
                                 st.sampled_from(["a.png", "b.jpg", "notes.txt", ".DS_Store"]),
                                 st.booleans()), max_size=6))
def test_folder_scan_returns_a_data_set_or_a_data_error(tmp_path, layout):
    root = tmp_path / "train"
    root.mkdir(exist_ok=True)
    for sub, name, broken in layout:
        (root / sub).mkdir(exist_ok=True)
        if sub != "empty":
            payload = VALID_IMAGES["PNG"][:20] if broken else VALID_IMAGES["PNG"]
            (root / sub / name).write_bytes(payload)
    try:
        train_set, val_set = folder.build(str(root), image_size=8, val_fraction=0.5)
    except DataError as error:
        assert str(root) in str(error) or "train" in str(error)
        return
    for dataset in (train_set, val_set):
        for index in range(len(dataset)):
            try:
                image, label = dataset.load(index)
            except BadImageError:
                continue
            assert image.shape == (8, 8, 3) and 0 <= label < len(dataset.classes)


SAVED = {"model/w": np.arange(12, dtype=np.float32).reshape(3, 4), "step": np.asarray(7)}


@pytest.fixture(scope="module")
def valid_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoint") / "last.npz"
    ckpt.save(str(path), SAVED, {"epoch": 1})
    return path.read_bytes()


@fuzz
@given(data=st.data())
def test_checkpoint_damage_is_detected_or_harmless(tmp_path, valid_checkpoint, data):
    edits = data.draw(damage(len(valid_checkpoint)))
    path = tmp_path / "last.npz"
    path.write_bytes(apply(valid_checkpoint, edits))
    try:
        arrays, meta = ckpt.load(str(path))
    except ckpt.CheckpointError as error:
        assert str(path) in str(error)
        return
    # loaded despite the damage: then nothing of it may have changed
    assert meta == {"epoch": 1}
    assert set(arrays) == set(SAVED)
    for name, value in SAVED.items():
        np.testing.assert_array_equal(arrays[name], value)
