"""decode_image: every Pillow mode becomes 8-bit RGB (or grey) with the right values."""
import numpy as np
import pytest
from PIL import Image

from minitorch_alexnet.data import decode_image

pytestmark = pytest.mark.data


def roundtrip(tmp_path, im, name="x.png", **kwargs):
    path = tmp_path / name
    im.save(path, **kwargs)
    return decode_image(path)


def test_grey_and_bilevel_become_equal_channels(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = roundtrip(tmp_path, Image.fromarray(grey))
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert np.array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))
    bilevel = Image.fromarray(grey > 100).convert("1")
    out = roundtrip(tmp_path, bilevel, "b.png")
    assert set(np.unique(out).tolist()) == {0, 255}
    assert decode_image(tmp_path / "x.png", mode="L").shape == (3, 4, 1)


def test_sixteen_bit_is_scaled_to_eight(tmp_path):
    values = np.array([[0, 257 * 100], [65535, 257 * 17]], dtype=np.uint16)
    for name in ("x.png", "x.tif"):
        out = roundtrip(tmp_path, Image.fromarray(values), name)
        assert out[:, :, 0].tolist() == [[0, 100], [255, 17]], name


def test_int32_and_float_modes(tmp_path):
    ints = Image.fromarray(np.array([[0, 1000], [65535, 257]], dtype=np.int32), mode="I")
    assert roundtrip(tmp_path, ints, "i.tif")[:, :, 0].tolist() == [[0, 4], [255, 1]]
    small = Image.fromarray(np.array([[0, 7], [200, 255]], dtype=np.int32), mode="I")
    assert roundtrip(tmp_path, small, "s.tif")[:, :, 0].tolist() == [[0, 7], [200, 255]]
    floats = Image.fromarray(np.array([[0.0, 0.5], [1.0, 0.2]], dtype=np.float32), mode="F")
    assert roundtrip(tmp_path, floats, "f.tif")[:, :, 0].tolist() == [[0, 128], [255, 51]]


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)       # opaque: kept
    rgba[0, 1] = (10, 20, 30, 0)         # transparent: white
    rgba[0, 2] = (0, 0, 0, 128)          # half: mid grey
    out = roundtrip(tmp_path, Image.fromarray(rgba, mode="RGBA"))
    assert out[0, 0].tolist() == [10, 20, 30]
    assert out[0, 1].tolist() == [255, 255, 255]
    assert abs(int(out[0, 2, 0]) - 127) <= 1
    la = Image.fromarray(np.array([[[50, 0], [50, 255]]], dtype=np.uint8), mode="LA")
    assert roundtrip(tmp_path, la, "la.png")[0, :, 0].tolist() == [255, 50]


def test_palette_and_cmyk(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    palette = Image.fromarray(rgb).convert("P")
    assert roundtrip(tmp_path, palette, "p.png").tolist() == rgb.tolist()
    cmyk = Image.fromarray(np.full((2, 2, 3), (0, 255, 0), np.uint8)).convert("CMYK")
    out = roundtrip(tmp_path, cmyk, "c.tif")
    assert out[0, 0].tolist() == [0, 255, 0]


def test_exif_orientation_is_honoured(tmp_path):
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))      # 40 wide, 20 tall
    exif = Image.Exif()
    exif[0x0112] = 6                                           # "rotate 90 degrees clockwise"
    out = roundtrip(tmp_path, im, "r.jpg", exif=exif.tobytes())
    assert out.shape == (40, 20, 3)


def test_draft_decoding_keeps_at_least_the_requested_size(tmp_path):
    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (400, 600, 3), np.uint8))
    big.save(tmp_path / "big.jpg")
    out = decode_image(tmp_path / "big.jpg", draft_size=90)
    assert min(out.shape[:2]) >= 90 and out.shape[0] < 400      # decoded at 1/4 scale
