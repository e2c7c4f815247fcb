"""Bad input: truncated, empty, non-image and oversized files, malformed IDX and CIFAR files.
Each gives a clear error (message checked) or a counted skip, never a deep traceback."""
import io
import os
import struct
import tempfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from minitorch_alexnet.data import BadImageError, DataError, cifar, decode_image, idx

pytestmark = pytest.mark.data


def image_bytes(fmt, size=(32, 24)):
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))
    buffer = io.BytesIO()
    im.save(buffer, format=fmt)
    return buffer.getvalue()


PNG, JPEG = image_bytes("PNG"), image_bytes("JPEG")


def png_header(width, height):
    """A PNG signature, an IHDR chunk declaring width x height RGB, and IEND: no pixel data."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, name", [(PNG, "t.png"), (JPEG, "t.jpg")])
def test_truncated_files(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match=r"cannot read image .*t\.(png|jpg): .*(truncated|broken|end of file)") as info:
        decode_image(path)
    assert info.value.path == str(path)
    assert info.value.__cause__ is None and info.value.__suppress_context__   # no chained traceback


def test_zero_byte_text_missing_and_directory(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(BadImageError, match=r"empty\.jpg: empty file \(0 bytes\)"):
        decode_image(tmp_path / "empty.jpg")
    (tmp_path / "notes.png").write_text("this is not a picture\n" * 10)
    with pytest.raises(BadImageError, match=r"notes\.png: not a recognised image file"):
        decode_image(tmp_path / "notes.png")
    with pytest.raises(BadImageError, match=r"gone\.png: cannot open file"):
        decode_image(tmp_path / "gone.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(BadImageError, match=r"dir\.png"):
        decode_image(tmp_path / "dir.png")


def test_decompression_bomb_rejected_from_the_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(100_000, 100_000))      # 30 GB if decoded, 57 bytes on disk
    with pytest.raises(BadImageError, match=r"bomb\.png: declared size .*decompression-bomb limit"):
        decode_image(bomb)
    # Below Pillow's own limit but above ours (64 million pixels): our header check.
    bomb.write_bytes(png_header(9000, 9000))
    with pytest.raises(BadImageError, match=r"declared size 9000x9000 exceeds the decompression-bomb limit of 64000000"):
        decode_image(bomb)
    # The limit is a parameter.
    (tmp_path / "ok.png").write_bytes(PNG)
    with pytest.raises(BadImageError, match="limit of 500 pixels"):
        decode_image(tmp_path / "ok.png", max_pixels=500)
    assert decode_image(tmp_path / "ok.png").shape == (24, 32, 3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from([PNG, JPEG]), cut=st.integers(0, 2000),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4))
def test_fuzzed_images_decode_or_raise_bad_image(source, cut, flips):
    data = bytearray(source[: max(0, len(source) - cut)])
    for position, mask in flips:                      # flip some bits at random positions
        if data:
            data[position % len(data)] ^= mask
    with tempfile.NamedTemporaryFile(suffix=".img", delete=False) as f:
        f.write(bytes(data))
    try:
        image = decode_image(f.name)
    except BadImageError as error:
        assert error.path == f.name and error.reason
    else:                                             # a damaged file may still decode
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    finally:
        os.remove(f.name)


@settings(max_examples=60, deadline=None)
@given(header=st.binary(min_size=0, max_size=24), body=st.binary(max_size=64))
def test_fuzzed_idx_files(header, body):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(header + body)
    try:
        array = idx.read_idx(f.name)
    except DataError as error:
        assert f.name in str(error)
    else:                                             # only a self-consistent file is accepted
        assert array.dtype == np.uint8
        assert 4 + 4 * array.ndim + array.size == len(header + body)
    finally:
        os.remove(f.name)


def test_idx_wrong_value_type_and_corrupt_gzip(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"\x00" * 12)
    with pytest.raises(DataError, match=r"x-idx1-ubyte: IDX value type 0x0d is not 0x08"):
        idx.read_idx(path)
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"x-idx1-ubyte: corrupt gzip data"):
        idx.read_idx(path)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=200))
def test_fuzzed_cifar_batches(data):
    with pytest.raises(DataError, match="crafted"):
        cifar.parse_batch(b"\x80\x02" + data, "crafted")


def test_truncated_cifar_pickle():
    import pickle
    good = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, protocol=2)
    images, labels = cifar.parse_batch(good, "good")
    assert images.shape == (2, 32, 32, 3) and labels.tolist() == [1, 2]
    with pytest.raises(DataError, match=r"cut: not a valid CIFAR-10 pickle"):
        cifar.parse_batch(good[:100], "cut")
    # bytes written as latin-1 text are fine, other codecs are refused
    evil = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x04\x00\x00\x00zlib\x86R."
    with pytest.raises(DataError, match="encoding 'zlib' is not allowed"):
        cifar.parse_batch(evil, "codec")
