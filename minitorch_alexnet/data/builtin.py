"""The built-in data set: ten classes of procedurally drawn pictures, generated from a seed.

No download, deterministic, fast (about a second for 6000 images), and hard enough that a
model must look at *spatial structure*: every picture has a random background colour, a random
foreground colour (each channel at least 64 levels away from the background), a random
position and scale, and Gaussian pixel noise, so the mean colour or brightness of an image says
nothing about its class. The classes:

====  ====================  ==================================================================
  0   circle                a filled disc
  1   square                a filled axis-aligned square
  2   triangle              a filled triangle pointing up
  3   cross                 a plus sign (two perpendicular bars)
  4   horizontal stripes    a rectangular patch of horizontal stripes
  5   vertical stripes      a rectangular patch of vertical stripes
  6   diagonal stripes      a rectangular patch of stripes at +45 or -45 degrees
  7   checkerboard          a rectangular patch of checkerboard squares
  8   ring                  an annulus (a disc with a hole)
  9   dots                  a rectangular patch of dots on a square grid
====  ====================  ==================================================================

Shapes (0-3, 8) have a random radius of 18-32% of the image side and a random centre in the
middle 40% of the image; textures (4-7, 9) fill a random rectangle of 56-90% of the side with a
random period of 15-28% of the side and a random phase. Classes come in equal numbers: every
block of 500 pictures holds 50 of each, in random order.

Images are 32 x 32 RGB by default (any size >= 16 works: all geometry is relative to it).
``build(seed)`` makes 5000 training and 1000 validation images from independent streams
(``default_rng([seed, 0])`` and ``default_rng([seed, 1])``).
"""
import numpy as np

from .arrays import ArrayDataset

CLASSES = ["circle", "square", "triangle", "cross", "horizontal stripes", "vertical stripes",
           "diagonal stripes", "checkerboard", "ring", "dots"]

DEFAULT_TRAIN, DEFAULT_VAL, DEFAULT_SIZE = 5000, 1000, 32
BLOCK = 500


def _uniform(rng, low, high, n):
    """n draws shaped (n, 1, 1), so that they broadcast against (n, H, W) pixel grids."""
    return rng.uniform(low, high, size=n)[:, None, None]


def _masks(label, n, size, rng):
    """Foreground masks (n, size, size) of bool for n pictures of class ``label``."""
    s = float(size)
    # Pixel-centre coordinates, shaped (1, H, W): yy[0, i, j] = i + 0.5, xx[0, i, j] = j + 0.5.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)[:, None] + 0.5
    cx, cy = _uniform(rng, 0.3 * s, 0.7 * s, n), _uniform(rng, 0.3 * s, 0.7 * s, n)
    dx, dy = xx - cx, yy - cy                      # offsets from each picture's centre
    name = CLASSES[label]
    if name in ("circle", "square", "triangle", "cross", "ring"):
        r = _uniform(rng, 0.18 * s, 0.32 * s, n)
        if name == "circle":
            return dx ** 2 + dy ** 2 <= r ** 2
        if name == "square":                       # side 1.7 r: about the disc's area
            return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
        if name == "triangle":                     # apex at dy = -r, base (width 2.2 r) at dy = +r
            return (dy >= -r) & (dy <= r) & (np.abs(dx) <= 0.55 * (dy + r))
        if name == "cross":                        # bars of half-width t and half-length r
            t = r * _uniform(rng, 0.25, 0.38, n)
            return ((np.abs(dx) <= t) & (np.abs(dy) <= r)) | ((np.abs(dy) <= t) & (np.abs(dx) <= r))
        inner = r * _uniform(rng, 0.45, 0.65, n)   # ring
        d2 = dx ** 2 + dy ** 2
        return (d2 <= r ** 2) & (d2 >= inner ** 2)
    # Textures: a patch of half-width hw and half-height hh around (cx, cy), clipped by the
    # image border, filled with a pattern of period p and random phase.
    hw, hh = _uniform(rng, 0.28 * s, 0.45 * s, n), _uniform(rng, 0.28 * s, 0.45 * s, n)
    patch = (np.abs(dx) <= hw) & (np.abs(dy) <= hh)
    p = _uniform(rng, 0.15 * s, 0.28 * s, n)
    phase = _uniform(rng, 0.0, 1.0, n) * p
    if name == "horizontal stripes":               # on for the first half of every period
        pattern = np.mod(yy - phase, p) < p / 2
    elif name == "vertical stripes":
        pattern = np.mod(xx - phase, p) < p / 2
    elif name == "diagonal stripes":               # distance along (1, +-1) / sqrt(2)
        sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None, None]
        pattern = np.mod((xx + sign * yy) / np.sqrt(2.0) - phase, p) < p / 2
    elif name == "checkerboard":                   # cells of side p / 2, alternating
        cell = p / 2
        pattern = (np.floor((xx - phase) / cell) + np.floor((yy - phase) / cell)) % 2 == 0
    else:                                          # dots of radius 0.22 p on a p-spaced grid
        ox, oy = np.mod(xx - phase, p) - p / 2, np.mod(yy - phase, p) - p / 2
        pattern = ox ** 2 + oy ** 2 <= (0.22 * p) ** 2
    return patch & pattern


def _generate_block(n, rng, size):
    """n pictures from one random stream (see ``generate``)."""
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    # Colours: background uniform in 0..255, foreground = background + an offset of 64..192 in
    # each channel, modulo 256, so each channel differs by at least 64 levels either way.
    background = rng.uniform(0, 256, size=(n, 3))
    foreground = np.mod(background + rng.uniform(64, 192, size=(n, 3)), 256)
    noise_std = rng.uniform(4.0, 16.0, size=n)
    for label in range(len(CLASSES)):
        which = np.flatnonzero(labels == label)
        if len(which) == 0:
            continue
        mask = _masks(label, len(which), size, rng)[..., None]          # (m, H, W, 1)
        bg = background[which, None, None, :].astype(np.float32)        # (m, 1, 1, 3)
        fg = foreground[which, None, None, :].astype(np.float32)
        picture = np.where(mask, fg, bg)
        picture += rng.standard_normal(picture.shape, dtype=np.float32) * \
            noise_std[which, None, None, None].astype(np.float32)
        images[which] = np.clip(np.rint(picture), 0, 255).astype(np.uint8)
    return images, labels


def generate(n, *, seed=0, size=DEFAULT_SIZE):
    """Draw ``n`` pictures.

    The pictures come in blocks of ``BLOCK`` = 500, block b drawn from
    ``default_rng([*seed, b])`` with exactly 50 pictures of each class. So ``generate(k)`` is
    the first k pictures of ``generate(n)`` for any k <= n (a ``--limit-train`` run draws only
    what it uses), and every full block is balanced.

    Returns:
        images (n, size, size, 3) uint8 and labels (n,) int64, a pure function of
        (n, seed, size); ``seed`` is an int or a sequence of ints.
    """
    if size < 16:
        raise ValueError(f"the built-in data set needs images of at least 16x16, got {size}")
    seed = [int(s) for s in np.atleast_1d(seed)]
    images, labels = [], []
    for b in range((n + BLOCK - 1) // BLOCK):
        x, y = _generate_block(BLOCK, np.random.default_rng(seed + [b]), size)
        images.append(x)
        labels.append(y)
    if not images:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(images)[:n], np.concatenate(labels)[:n]


def build(seed=0, *, n_train=DEFAULT_TRAIN, n_val=DEFAULT_VAL, size=DEFAULT_SIZE):
    """The built-in training and validation sets, as two ``ArrayDataset``."""
    train = ArrayDataset(*generate(n_train, seed=[seed, 0], size=size), CLASSES,
                         f"builtin(seed={seed}, train)")
    val = ArrayDataset(*generate(n_val, seed=[seed, 1], size=size), CLASSES,
                       f"builtin(seed={seed}, val)")
    return train, val
