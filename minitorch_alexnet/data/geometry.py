"""Geometry of AlexNet's augmentation (section 4.1) on ``H x W x C`` image arrays: bringing an
image to the stored size (shorter side, then centre crop), crops, mirror images, the ten test
views, and resizing a whole array of images at once. ``transforms.py`` chains them.
"""
import numpy as np

PAPER_STORED_SIZE = 256
PAPER_CROP_SIZE = 227


def default_stored_size(crop_size, padding=0):
    """The stored size that keeps the paper's 256 : 227 ratio: 227 -> 256, 32 -> 36, 28 -> 32;
    with ``padding`` P, the crop inside its border: crop_size + 2 P."""
    if padding:
        return crop_size + 2 * padding
    return int(round(crop_size * PAPER_STORED_SIZE / PAPER_CROP_SIZE))


# --------------------------------------------------------------------------------------------
# Geometry: resizing and cropping (H x W x C arrays)
# --------------------------------------------------------------------------------------------

def resize_shorter_side(image, size):
    """Resize so that the shorter side is ``size``, keeping the aspect ratio (bilinear, with
    Pillow's antialiasing when shrinking). uint8 images stay uint8; others become float32."""
    from PIL import Image

    h, w, c = image.shape
    if min(h, w) == size:
        return image
    if h <= w:   # the height is the shorter side: it becomes `size`, the width follows
        new_h, new_w = size, max(size, int(round(w * size / h)))
    else:
        new_h, new_w = max(size, int(round(h * size / w))), size
    if image.dtype == np.uint8 and c in (1, 3):
        pil = Image.fromarray(image[:, :, 0] if c == 1 else image, mode="L" if c == 1 else "RGB")
        out = np.asarray(pil.resize((new_w, new_h), Image.BILINEAR), dtype=np.uint8)
        return out.reshape(new_h, new_w, c)
    # Other dtypes or channel counts: resize each channel as a 32-bit float image.
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, k], np.float32),
                                           mode="F").resize((new_w, new_h), Image.BILINEAR))
                for k in range(c)]
    return np.stack(channels, axis=2)


def crop(image, top, left, size):
    """The ``size x size`` window whose top-left pixel is (top, left)."""
    return image[top:top + size, left:left + size]


def _check_fits(image, size):
    h, w = image.shape[:2]
    if h < size or w < size:
        raise ValueError(f"cannot take a {size}x{size} crop from a {h}x{w} image")
    return h, w


def center_crop(image, size):
    """The central ``size x size`` window (when the margin is odd, the extra pixel is on the
    bottom / right: top = (H - size) // 2)."""
    h, w = _check_fits(image, size)
    return crop(image, (h - size) // 2, (w - size) // 2, size)


def to_stored_size(image, size):
    """Shorter side to ``size`` then centre ``size x size`` crop; a no-op if already that size."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return center_crop(resize_shorter_side(image, size), size)


def pad_images(images, padding):
    """(N, H, W, C) images with ``padding`` black (zero) pixels added on every side:
    (N, H + 2 * padding, W + 2 * padding, C); pixel (y, x) moves to (y + padding, x + padding)."""
    return np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


def random_crop_offsets(height, width, size, rng):
    """Draw (top, left) uniformly among the (H - size + 1) * (W - size + 1) valid positions."""
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return top, left


def random_crop(image, size, rng):
    """A random ``size x size`` window; ``rng`` is a ``numpy.random.Generator``."""
    h, w = _check_fits(image, size)
    top, left = random_crop_offsets(h, w, size, rng)
    return crop(image, top, left, size)


def hflip(image):
    """Mirror left-right: column x becomes column W - 1 - x."""
    return image[:, ::-1]


def random_hflip(image, rng, p=0.5):
    """Mirror with probability ``p``."""
    return hflip(image) if rng.random() < p else image


def ten_crop(image, size):
    """The paper's ten test views of an ``H x W x C`` image, as an array (10, C, size, size) of
    the input's dtype: top-left, top-right, bottom-left, bottom-right, centre, then the same
    five windows mirrored left-right."""
    h, w = _check_fits(image, size)
    offsets = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size),
               ((h - size) // 2, (w - size) // 2)]
    views = [crop(image, top, left, size) for top, left in offsets]
    views += [hflip(v) for v in views]
    return np.ascontiguousarray(np.stack(views).transpose(0, 3, 1, 2))   # (10, H, W, C) -> CHW


def _upsample_bilinear(images, size):
    """Bilinear upsampling of square images (N, H, H, C) to (N, size, size, C), vectorised.

    Output pixel i samples the input at y = (i + 0.5) * H / size - 0.5 (pixel centres line up,
    as in Pillow), clamped to the border, and blends rows y0 = floor(y) and y0 + 1 with
    weights (1 - t, t), t = y - y0; then the same along the columns.
    """
    h = images.shape[1]
    pos = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, h - 1)
    t = (pos - i0).astype(np.float32)
    x = images.astype(np.float32)
    x = x[:, i0] * (1 - t)[:, None, None] + x[:, i1] * t[:, None, None]           # rows
    x = x[:, :, i0] * (1 - t)[:, None] + x[:, :, i1] * t[:, None]                 # columns
    return np.clip(np.rint(x), 0, 255).astype(images.dtype)


def resize_images(images, size):
    """``to_stored_size`` on every image of an (N, H, W, C) uint8 array. Square images that
    grow (28 -> 32, 32 -> 36) take a vectorised bilinear path; others go one by one through
    Pillow (which antialiases when shrinking)."""
    n, h, w, c = images.shape
    if h == size and w == size:
        return images
    if h == w and size > h:
        return np.concatenate([_upsample_bilinear(images[k:k + 2048], size)
                               for k in range(0, n, 2048)]) if n else \
            np.zeros((0, size, size, c), images.dtype)
    out = np.empty((n, size, size, c), dtype=images.dtype)
    for k, image in enumerate(images):
        out[k] = to_stored_size(image, size)
    return out
