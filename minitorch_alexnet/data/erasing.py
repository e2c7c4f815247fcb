"""Random erasing (Zhong et al., 2017, "Random Erasing Data Augmentation"), with the defaults
of torchvision's ``RandomErasing``: with probability p, one axis-aligned rectangle of a
training input is set to a constant. Not in the AlexNet paper; ``Preprocess(erase=p)`` adds it
as the last step of the training chain (``transforms.py``).

The rectangle of one image, on a c x c crop::

    s ~ Uniform(0.02, 0.33)                 its share of the crop's area c * c
    r = exp(Uniform(log 0.3, log 3.3))      its aspect ratio, height / width, log-uniform
    h = round(sqrt(s * c * c * r)),  w = round(sqrt(s * c * c / r))     so that h * w ~ s c^2
    top ~ Uniform{0, ..., c - h},  left ~ Uniform{0, ..., c - w}

A box is the row (top, left, h, w) and covers rows top .. top + h - 1 and columns
left .. left + w - 1 of the crop, every channel. When the rectangle does not fit
(h > c or w > c, a tall or wide box on a large s) the image is not erased: torchvision tries
up to ten times to find one that fits; one try is enough here, and keeps the number of
random draws per image fixed (so image j's box is a function of row j of the draws alone).
Boxes that round to an empty rectangle (h = 0 or w = 0, possible on tiny crops) count as not
erased as well. A box that is not erased is stored as (0, 0, 0, 0): height 0 means "no
erasing".
"""
import numpy as np

ERASE_SCALE = (0.02, 0.33)      # the box's share of the crop's area (torchvision's default)
ERASE_RATIO = (0.3, 3.3)        # its aspect ratio h / w, drawn log-uniformly


def check_erase_probability(erase):
    """``erase`` as a float, or a ValueError naming it when it is not a probability."""
    value = float(erase)
    if not 0.0 <= value <= 1.0:            # also refuses NaN
        raise ValueError(f"erase must be a probability in [0, 1], got {erase!r}")
    return value


def random_erase_boxes(n, crop_size, p, rng):
    """The erasing rectangles of n images on c x c crops: an (n, 4) int64 array of rows
    (top, left, height, width), height 0 for an image that is not erased (see the module docs).

    Draws from ``rng``, in this order and always all n of each (whatever the coins say, so
    that the numbers drawn do not depend on p): n coins, n area shares s, n log aspect ratios,
    n tops, n lefts.
    """
    c = int(crop_size)
    erased = rng.random(n) < p                                   # the coin of each image
    area = rng.uniform(*ERASE_SCALE, size=n) * (c * c)
    ratio = np.exp(rng.uniform(np.log(ERASE_RATIO[0]), np.log(ERASE_RATIO[1]), size=n))
    heights = np.rint(np.sqrt(area * ratio)).astype(np.int64)     # rint: half to even, as round()
    widths = np.rint(np.sqrt(area / ratio)).astype(np.int64)
    keep = erased & (heights <= c) & (widths <= c) & (heights > 0) & (widths > 0)
    heights, widths = np.where(keep, heights, 0), np.where(keep, widths, 0)
    # A box of height h can start on rows 0 .. c - h: c - h + 1 choices (integers() excludes
    # its upper bound). Images that are not erased have h = w = 0 here, so their bound is
    # c + 1, always valid; what they draw is thrown away below.
    tops = rng.integers(0, c - heights + 1)
    lefts = rng.integers(0, c - widths + 1)
    boxes = np.stack([tops, lefts, heights, widths], axis=1).astype(np.int64)
    boxes[~keep] = 0
    return boxes


def erase_hwc(patch, box):
    """Set the rectangle ``box`` = (top, left, height, width) of a (c, c, C) patch to 0 in
    every channel, in place; height 0: nothing. Returns the patch."""
    top, left, height, width = (int(v) for v in box)
    if height > 0:
        patch[top:top + height, left:left + width] = 0.0
    return patch


def erase_batch(out, boxes):
    """Set each image's rectangle of a (B, C, c, c) batch to 0 in every channel, in place.

    A plain loop over the erased images: each rectangle has its own size, so a vectorised
    version would build a (B, c, c) mask; the loop writes only the erased pixels and costs
    one slice assignment per erased image, little next to the crop gather before it."""
    for j in np.flatnonzero(boxes[:, 2] > 0):
        top, left, height, width = (int(v) for v in boxes[j])
        out[j, :, top:top + height, left:left + width] = 0.0
    return out
