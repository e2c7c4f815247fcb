"""Decoding image files safely: any file in, a uint8 ``H x W x C`` array or ``BadImageError`` out.

Image files in the wild come in many modes (Pillow's word for pixel formats): ``1`` (bilevel),
``L`` (grey), ``LA`` (grey + alpha), ``P`` (palette), ``RGB``, ``RGBA``, ``CMYK``, ``YCbCr``,
``I;16`` (16-bit grey), ``I`` (32-bit integer) and ``F`` (32-bit float). ``decode_image``
turns all of them into 8-bit RGB (or 8-bit grey with ``mode="L"``):

- alpha (``RGBA``, ``LA``, ``PA``, palette with a transparent colour) is composited over a
  white background, so transparent pixels do not show whatever colour happened to be stored
  under them;
- 16-bit grey (``I;16``) is scaled to 8 bits by dividing by 257 (65535 -> 255);
  32-bit integer grey (``I``) likewise when its values exceed 255, otherwise kept as is;
  float grey (``F``) is multiplied by 255 when it lies in [0, 1], otherwise clipped to [0, 255];
- the EXIF orientation tag (photos taken with a rotated camera) is honoured.

Safety:

- A decompression-bomb limit: the pixel count declared in the file header is checked before
  any pixel is decoded (``max_pixels``, 64 million by default, e.g. 8000 x 8000), so a 100-byte
  PNG claiming to be 100000 x 100000 is rejected without allocating its 30 GB.
- Truncated files are errors (Pillow's ``LOAD_TRUNCATED_IMAGES`` stays off), not silently
  grey-padded images.
- Every failure, whatever Pillow plugin raised it, becomes ``BadImageError(path, reason)``
  with a one-line reason. Pillow's plugins raise a zoo of exception types on malformed data
  (``OSError``, ``SyntaxError``, ``ValueError``, ``EOFError``, ``struct.error``, ...), so the
  decoder catches them all; the loader then skips and counts the image.
"""
import os

import numpy as np

from .errors import BadImageError

MAX_PIXELS = 64_000_000
"""Default decompression-bomb limit: images declaring more pixels than this are rejected."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
"""File extensions (compared case-insensitively) that the folder data set treats as images."""

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def is_image_file(name):
    """True if ``name`` ends with one of ``IMAGE_EXTENSIONS`` (any letter case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _pil():
    """Import Pillow on first use, with a clear message if it is missing."""
    try:
        from PIL import Image, ImageOps
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Pillow is needed to decode image files: pip install pillow") from error
    return Image, ImageOps


def _high_depth_grey_to_uint8(im):
    """Scale a 16-bit, 32-bit integer or float grey image to an 8-bit grey array (H, W)."""
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        a = a.astype(np.float32) / 257.0              # 0..65535 -> 0..255
    elif im.mode == "I":
        a = a.astype(np.float64)
        if a.size and a.max() > 255:                  # 16-bit data stored in 32-bit ints
            a = np.clip(a, 0, 65535) / 257.0
    else:  # "F"
        a = a.astype(np.float64)
        finite = np.isfinite(a)
        a = np.where(finite, a, 0.0)
        if a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _to_array(im, mode):
    """Convert an opened, loaded Pillow image to a uint8 array (H, W, 3) or (H, W, 1)."""
    Image, _ = _pil()
    if im.mode.startswith("I") and im.mode not in ("I",) and not im.mode.startswith("I;16"):
        im = im.convert("I")                          # rare "I;32" style modes
    if im.mode == "I" or im.mode.startswith("I;16") or im.mode == "F":
        im = Image.fromarray(_high_depth_grey_to_uint8(im), mode="L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in _ALPHA_MODES:
        # Composite over white: out = alpha * colour + (1 - alpha) * 255.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    im = im.convert(mode)                             # 1, L, P, CMYK, YCbCr, RGB -> RGB or L
    a = np.asarray(im, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]                             # grey: (H, W) -> (H, W, 1)
    return np.ascontiguousarray(a)


def decode_image(path, *, mode="RGB", max_pixels=MAX_PIXELS, draft_size=None):
    """Read one image file into a uint8 array of shape (H, W, 3) (``mode="RGB"``) or
    (H, W, 1) (``mode="L"``).

    Args:
        path: the file.
        mode: ``"RGB"`` or ``"L"``.
        max_pixels: reject images whose header declares more than this many pixels.
        draft_size: optional side length; JPEG files are then decoded at a reduced scale whose
            both sides stay >= ``draft_size`` (much faster for large photos that will be resized
            to a shorter side of ``draft_size`` anyway).

    Raises:
        BadImageError: the file is missing, a directory, empty, truncated, not an image, too
            large, or in a mode that cannot be converted.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    Image, ImageOps = _pil()
    if os.path.isdir(path):
        raise BadImageError(path, "it is a directory, not an image file")
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise BadImageError(path, f"cannot open file ({error.strerror or error})") from None
    if size == 0:
        raise BadImageError(path, "empty file (0 bytes)")
    try:
        # Image.open reads only the header: width and height are known, no pixels decoded.
        with Image.open(path) as im:
            width, height = im.size
            if width <= 0 or height <= 0:
                raise BadImageError(path, f"invalid size {width}x{height}")
            if width * height > max_pixels:
                raise BadImageError(
                    path, f"declared size {width}x{height} exceeds the decompression-bomb "
                    f"limit of {max_pixels} pixels")
            if draft_size is not None and im.format == "JPEG":
                im.draft(im.mode, (draft_size, draft_size))
            im.load()                                 # decode; raises on truncated data
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:                         # broken EXIF: keep the stored orientation
                pass
            return _to_array(im, mode)
    except BadImageError:
        raise
    except Image.DecompressionBombError:
        raise BadImageError(path, "declared size exceeds Pillow's decompression-bomb limit") from None
    except Image.UnidentifiedImageError:
        raise BadImageError(path, "not a recognised image file") from None
    except MemoryError:
        raise BadImageError(path, "out of memory while decoding") from None
    except Exception as error:  # noqa: BLE001 - see the module docstring
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "truncated" in reason.lower():
            reason = f"truncated file ({reason})"
        raise BadImageError(path, reason) from None
