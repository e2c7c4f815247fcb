"""Image transforms of AlexNet's section 4.1, in NumPy.

Conventions: an *image* is an ``H x W x C`` array (uint8 from the data sets, C = 3 for RGB or
1 for grey); what goes into the network is float32 ``C x H x W``. Pixel values stay on the
0..255 scale until the very last step, which divides by 255 when ``scale=True`` (or, given
``std``, by the training pixels' standard deviation, so that the inputs have unit variance).

The training pipeline of the paper, and what each step is here::

    decode -> shorter side to S -> centre S x S crop          resize_shorter_side, center_crop
           -> subtract the mean image (S x S)                 compute_mean_image
           -> add a PCA colour shift (one per image per use)  fit_pca_colour, pca_colour_shift
           -> random c x c crop, horizontal flip (p = 0.5)    random_crop, hflip
           -> optional: erase one rectangle (p = erase)       random_erase_boxes (erasing.py)
    test:  -> centre c x c crop, or ten_crop (4 corners + centre, and their mirror images)

with S = 256 ("stored size") and c = 227 ("crop size") in the paper. ``Preprocess`` runs the
whole chain with flags for each step.

Small images (the small preset): the crops are scaled with the input. By default the stored
size is ``round(c * 256 / 227)``, the paper's ratio: a 32 x 32 input is stored at 36 x 36 and
cropped back to random 32 x 32 windows (4 pixels of play, like the paper's 29 of 256), 28 x 28
Fashion-MNIST crops come from 32 x 32, and evaluation takes the centre crop. In-memory images
of a different size are resized (shorter side, then centre crop) to the stored size first.

Whole batches: ``Preprocess.train_batch`` and ``eval_batch`` run the chain on a (B, S, S, C)
batch of stored images in a few array operations (one gather of the B crops, the mean and the
colour shift subtracted and added in place, one reordering for the flips), with the random
choices of all B images given as arrays (``AugmentationDraws``). Each output number goes through
the same float32 operations as in ``Preprocess.augment``, the one-image reference, so the two
agree exactly.

PCA colour augmentation, pixel scale: the covariance is computed on pixels scaled to [0, 1],
so the eigenvalues are on that scale (for natural images the largest is about 0.1-0.2), and
the shift ``sum_i p_i * a_i * lambda_i`` is on the [0, 1] scale too; ``Preprocess`` multiplies
it by 255 before adding it to 0..255 pixels. (Taken literally on the 0..255 scale the formula
would give shifts of hundreds of grey levels, because the eigenvalues grow with the square of
the scale while the pixels grow linearly.)
"""
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# The steps, re-exported here so that ``transforms`` offers the whole chain in one place.
from .erasing import (check_erase_probability, erase_batch, erase_hwc,  # noqa: F401
                      random_erase_boxes)
from .geometry import (PAPER_CROP_SIZE, PAPER_STORED_SIZE, _upsample_bilinear,  # noqa: F401
                       center_crop, crop, default_stored_size, hflip, pad_images, random_crop,
                       random_crop_offsets, random_hflip, resize_images, resize_shorter_side,
                       ten_crop, to_stored_size)
from .statistics import (compute_mean_image, dataset_statistics, fit_pca_colour,  # noqa: F401
                         pca_colour_shift, pca_colour_shifts)


# --------------------------------------------------------------------------------------------
# The whole chain
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)          # eq=False: no == between arrays
class AugmentationDraws:
    """The random choices of ``Preprocess`` for n images, as arrays with one row per image.

    Attributes:
        tops, lefts: (n,) int64, the top-left pixel of each image's c x c crop in its S x S
            stored image, each in 0 .. S - c.
        mirrors: (n,) bool, mirror the crop left-right (all False when ``flip=False``).
        pca_a: (n, k) float64, the ``a_i ~ N(0, pca_std)`` of each image's colour shift, or
            None when the ``Preprocess`` has no colour PCA.
        erase_box: (n, 4) int64 rows (top, left, height, width) of each image's erased
            rectangle in its c x c network input, height 0 for an image left whole; None
            when the ``Preprocess`` does not erase (``erase=0``).
    """
    tops: np.ndarray
    lefts: np.ndarray
    mirrors: np.ndarray
    pca_a: np.ndarray = None
    erase_box: np.ndarray = None

    @property
    def count(self):
        """n, the number of images these draws are for."""
        return len(self.tops)

    def take(self, rows):
        """The draws of the images ``rows`` (an index array), in that order."""
        return AugmentationDraws(self.tops[rows], self.lefts[rows], self.mirrors[rows],
                                 None if self.pca_a is None else self.pca_a[rows],
                                 None if self.erase_box is None else self.erase_box[rows])

    def row(self, k):
        """``(top, left, mirror, a)`` of image k, and its ``erase_box`` row when the draws
        have one: the arguments of ``Preprocess.augment`` (draws without erasing keep their
        four values)."""
        row = (int(self.tops[k]), int(self.lefts[k]), bool(self.mirrors[k]),
               None if self.pca_a is None else self.pca_a[k])
        return row if self.erase_box is None else row + (self.erase_box[k],)


class Preprocess:
    """Everything between a stored uint8 image and the network's float32 (C, c, c) input.

    Args:
        crop_size: c, the network's input side (227 for the paper's net).
        stored_size: S, the side images are brought to before cropping (default: the paper's
            ratio, ``round(c * 256 / 227)``).
        mean: ``None``, a per-channel mean (C,) or a mean image (S, S, C), on the 0..255 scale.
        pca: ``None`` or ``(eigvals, eigvecs)`` from ``fit_pca_colour``; enables the colour
            augmentation in ``train``.
        pca_std: standard deviation of the ``a_i`` (0.1 in the paper).
        flip: mirror training crops with probability 0.5.
        scale: divide by 255 at the end (inputs then lie in about [-1, 1] with a mean, [0, 1]
            without).
        std: with ``scale``, divide by this instead of 255: the standard deviation of the
            training pixels (``dataset_statistics``' ``pixel_std``, 0..255 scale, one number
            for all channels). With the mean subtracted the inputs then have mean 0 and
            variance about 1, the scale He initialisation assumes of a layer's input: on
            Fashion-MNIST (std 90 of 255) conv1 otherwise sees a third of it and the network
            starts slower. None: 255.
        erase: the probability of random erasing (``erasing.py``) of each training input:
            one rectangle set to 0 in every channel after the crop, the mean, the colour
            shift and the flip. With the mean subtracted, 0 is the training set's mean
            there (the mean colour, or the mean image's pixel); without a mean it is black.
            0 (the default): off, and the random draws are those of a run without it.
        padding: P > 0 stores an image by bringing it to the crop size and adding P black
            pixels on every side (``--crop-padding``; stored_size must be crop_size + 2 P):
            random crops then shift the image itself by up to P pixels each way, and the
            centre crop is the image, unresized. 0: images are resized to the stored size.

    One image or a whole batch, with the random choices apart from the arithmetic:

    - ``augment(image, top, left, mirror, a)``: one image with its choices given; the readable
      reference of everything below.
    - ``train(image, rng)``: draws, in this order, the crop's top, its left, the flip (if
      ``flip``), the k ``a_i`` (if ``pca``), the erased box (if ``erase``) from ``rng``, then
      ``augment``. So the output is a pure function of the image and the state of ``rng``.
    - ``draw(n, rng)``: the choices of n images at once (``AugmentationDraws``, row j for image
      j); the ``DataLoader`` draws a whole epoch this way, since creating a generator per image
      costs more than augmenting a small image.
    - ``train_batch(images, draws)``, ``eval_batch(images)``: a whole (B, S, S, C) uint8 batch
      in a few array operations, equal float for float to ``augment`` / ``eval`` on each image.
    """

    def __init__(self, crop_size, stored_size=None, *, mean=None, pca=None, pca_std=0.1,
                 flip=True, scale=True, erase=0.0, std=None, padding=0):
        self.crop_size = int(crop_size)
        self.padding = int(padding)
        self.stored_size = int(stored_size or default_stored_size(self.crop_size, self.padding))
        if self.stored_size < self.crop_size:
            raise ValueError(f"stored_size {self.stored_size} < crop_size {self.crop_size}")
        if self.padding < 0 or (self.padding and self.stored_size != self.crop_size + 2 * self.padding):
            raise ValueError(f"padding {self.padding} needs stored_size = crop_size + 2 * padding "
                             f"= {self.crop_size + 2 * self.padding}, got {self.stored_size}")
        self.mean = None if mean is None else np.asarray(mean, np.float32)
        if self.mean is not None and self.mean.ndim == 3 and \
                self.mean.shape[:2] != (self.stored_size, self.stored_size):
            raise ValueError(f"mean image is {self.mean.shape[:2]}, expected the stored size "
                             f"{self.stored_size}x{self.stored_size}")
        # The mean image channels first, (C, S, S), for ``train_batch`` (see _crops_minus_mean).
        self._mean_chw = None if self.mean is None or self.mean.ndim != 3 else \
            np.ascontiguousarray(self.mean.transpose(2, 0, 1))
        self.pca = None if pca is None else (np.asarray(pca[0], np.float32),
                                             np.asarray(pca[1], np.float32))
        self.pca_std = float(pca_std)
        self.flip = bool(flip)
        self.scale = bool(scale)
        if std is not None and not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        self.std = None if std is None else float(std)
        # the last step's factor: 1/255, or 1/std (every path multiplies by the same float32)
        self._factor = np.float32(1.0 / (255.0 if self.std is None else self.std))
        self.erase = check_erase_probability(erase)

    @classmethod
    def from_dataset(cls, dataset, crop_size, stored_size=None, *, mean="image", pca=True,
                     pca_std=0.1, flip=True, scale=True, erase=0.0, max_images=None,
                     pca_images=2000, seed=0, num_workers=2, std=False, padding=0):
        """Fit the mean (``"image"``, ``"channel"`` or ``None``), the colour PCA and, with
        ``std=True``, the pixels' standard deviation on a training set, in one pass (see
        ``dataset_statistics``)."""
        stored = int(stored_size or default_stored_size(crop_size, padding))
        if mean is None and not pca and not std:
            return cls(crop_size, stored, pca_std=pca_std, flip=flip, scale=scale, erase=erase,
                       padding=padding)
        stats = dataset_statistics(dataset, stored, max_images=max_images,
                                   pca_images=pca_images if pca else 0, seed=seed,
                                   num_workers=num_workers)
        mean_value = {"image": stats["mean_image"],
                      "channel": stats["mean_image"].mean(axis=(0, 1)),
                      None: None}[mean]
        return cls(crop_size, stored, mean=mean_value,
                   pca=(stats["eigvals"], stats["eigvecs"]) if pca else None,
                   pca_std=pca_std, flip=flip, scale=scale, erase=erase,
                   std=stats["pixel_std"] if std else None, padding=padding)

    def state_dict(self):
        """Plain values and arrays, e.g. to save with a checkpoint; ``Preprocess(**state)``."""
        return {"crop_size": self.crop_size, "stored_size": self.stored_size, "mean": self.mean,
                "pca": self.pca, "pca_std": self.pca_std, "flip": self.flip, "scale": self.scale,
                "erase": self.erase, "std": self.std, "padding": self.padding}

    def store(self, image):
        """One (H, W, C) image at the stored size S: as it is if it is S x S already (the
        data sets held in memory are stored up front); else with ``padding`` P brought to the
        crop size (``to_stored_size``) and padded by P black pixels on every side; without
        padding, resized to S (``to_stored_size``)."""
        if self.padding and image.shape[:2] != (self.stored_size, self.stored_size):
            return pad_images(to_stored_size(image, self.crop_size)[None], self.padding)[0]
        return to_stored_size(image, self.stored_size)

    def store_images(self, images):
        """``store`` on every image of an (N, H, W, C) uint8 array (vectorised for square
        images that grow: ``resize_images``)."""
        if self.padding and images.shape[1:3] != (self.stored_size, self.stored_size):
            return pad_images(resize_images(images, self.crop_size), self.padding)
        return resize_images(images, self.stored_size)

    def _finish(self, patch, top, left):
        """Subtract the mean (cropped at the same window), scale, HWC -> CHW float32."""
        patch = patch.astype(np.float32)
        if self.mean is not None:
            patch -= crop(self.mean, top, left, self.crop_size) if self.mean.ndim == 3 else self.mean
        return patch

    def _to_chw(self, patch):
        if self.scale:
            patch *= self._factor
        return np.ascontiguousarray(patch.transpose(2, 0, 1))

    # ---- one image -----------------------------------------------------------------------
    def augment(self, image, top, left, mirror, pca_a=None, erase_box=None):
        """One (H, W, C) image -> float32 (C, c, c), with its random choices given: the c x c
        crop at (top, left) of the stored image minus the mean at the same window, plus the
        colour shift of ``pca_a`` (the k ``a_i``; None: no shift), mirrored if ``mirror``, then
        the rectangle ``erase_box`` = (top, left, height, width) of that mirrored crop set to 0
        (None or height 0: no erasing)."""
        if pca_a is not None and self.pca is None:
            raise ValueError("augment got colour-shift a_i but this Preprocess has no PCA")
        stored = self.store(image)
        patch = self._finish(crop(stored, top, left, self.crop_size), top, left)
        if pca_a is not None:
            patch += 255.0 * pca_colour_shifts(*self.pca, np.asarray(pca_a)[None, :])[0]
        if mirror:
            patch = patch[:, ::-1]
        if erase_box is not None:
            # The box is in the coordinates of the network input, i.e. after the mirroring.
            # 0 is the training set's mean there, since the mean was subtracted above.
            erase_hwc(patch, erase_box)
        return self._to_chw(patch)

    def train(self, image, rng):
        """Random crop, flip and colour shift of one (H, W, C) image -> float32 (C, c, c)."""
        c, s = self.crop_size, self.stored_size
        top, left = random_crop_offsets(s, s, c, rng)
        mirror = self.flip and rng.random() < 0.5
        pca_a = None if self.pca is None else rng.normal(0.0, self.pca_std, size=len(self.pca[0]))
        box = random_erase_boxes(1, c, self.erase, rng)[0] if self.erase > 0 else None
        return self.augment(image, top, left, mirror, pca_a, box)

    def eval(self, image):
        """The centre crop of one image -> float32 (C, c, c)."""
        stored = self.store(image)
        offset = (self.stored_size - self.crop_size) // 2
        return self._to_chw(self._finish(crop(stored, offset, offset, self.crop_size),
                                         offset, offset))

    # ---- a whole batch -------------------------------------------------------------------
    def draw(self, n, rng):
        """The random choices of n images: ``AugmentationDraws`` with n rows. Draws, in this
        order, n tops, n lefts, n coins for the flips, then (with PCA) an n x k block of
        ``a_i``; the coins are drawn even with ``flip=False`` (and then ignored), so that
        switching the flip off does not move the crops or the colour shifts. The erased boxes
        (``random_erase_boxes``) come last and only with ``erase > 0``: the draws before them
        are the same numbers with or without erasing."""
        span = self.stored_size - self.crop_size + 1       # crop offsets 0 .. S - c
        tops = rng.integers(0, span, size=n)
        lefts = rng.integers(0, span, size=n)
        mirrors = (rng.random(n) < 0.5) & self.flip
        pca_a = None if self.pca is None else rng.normal(0.0, self.pca_std,
                                                         size=(n, len(self.pca[0])))
        boxes = random_erase_boxes(n, self.crop_size, self.erase, rng) if self.erase > 0 else None
        return AugmentationDraws(tops, lefts, mirrors, pca_a, boxes)

    def train_batch(self, images, draws):
        """``augment`` on every image of a batch: images (B, S, S, C) uint8 at the stored size,
        ``draws`` with B rows (row j for image j) -> float32 (B, C, c, c).

        Equal float for float to ``np.stack([augment(images[j], *draws.row(j)) ...])``: every
        output number goes through the same float32 steps, ((pixel - mean) + shift) / 255,
        only the loops over images and pixels are NumPy's instead of Python's."""
        self._check_batch(images, "train_batch")
        if draws.count != len(images):
            raise ValueError(f"train_batch got {len(images)} images but draws for {draws.count}")
        if draws.pca_a is not None and self.pca is None:
            raise ValueError("the draws have colour-shift a_i but this Preprocess has no PCA")
        out = self._crops_minus_mean(images, draws.tops, draws.lefts)     # (B, C, c, c)
        if draws.pca_a is not None:
            shifts = 255.0 * pca_colour_shifts(*self.pca, draws.pca_a)    # (B, C) float32
            out += shifts[:, :, None, None]                   # one colour per image and channel
        # Mirroring reorders the columns of a crop, out[j, :, :, x] <- out[j, :, :, c - 1 - x],
        # after the mean (taken at the unmirrored window) and the colour, as in ``augment``.
        # The right-hand side is a copy (boolean indexing copies), so reading and writing the
        # same images is safe.
        out[draws.mirrors] = out[draws.mirrors, :, :, ::-1]
        if draws.erase_box is not None:
            # After the mirroring, as in ``augment``: the boxes are in network-input
            # coordinates. 0 = the training set's mean (it was subtracted).
            erase_batch(out, draws.erase_box)
        if self.scale:
            out *= self._factor
        return out

    def eval_batch(self, images):
        """``eval`` on every image of a batch: (B, S, S, C) uint8 -> float32 (B, C, c, c), the
        centre crops, equal float for float to ``eval`` on each image."""
        self._check_batch(images, "eval_batch")
        offset = (self.stored_size - self.crop_size) // 2
        corner = np.full(len(images), offset)
        out = self._crops_minus_mean(images, corner, corner)
        if self.scale:
            out *= self._factor
        return out

    def _check_batch(self, images, name):
        s = self.stored_size
        if images.ndim != 4 or images.shape[1:3] != (s, s):
            raise ValueError(f"{name} needs a batch (B, {s}, {s}, C) at the stored size, got "
                             f"shape {images.shape}; bring the images to the stored size first "
                             f"(resize_images(images, {s}))")

    def _crops_minus_mean(self, images, tops, lefts):
        """Crop j of the batch, at (tops[j], lefts[j]), minus the mean at the same window:
        float32 (B, C, c, c), channels first.

        The plain version, one image at a time::

            images[j, top:top + c, left:left + c].astype(float32) - mean[top:top + c, left:left + c]

        ``sliding_window_view`` gives, without copying, an array ``windows`` of shape
        (B, P, P, C, c, c) with P = S - c + 1 and ``windows[j, t, l] == images[j, t:t + c,
        l:l + c]`` moved to (C, c, c): the two window axes come after the channel axis. So one
        fancy index, ``windows[arange(B), tops, lefts]``, copies exactly the B crops, already
        channels first. The mean image's windows are picked with the same (tops, lefts).
        """
        c = self.crop_size
        windows = sliding_window_view(images, (c, c), axis=(1, 2))         # (B, P, P, C, c, c)
        crops = windows[np.arange(len(images)), tops, lefts]               # (B, C, c, c) uint8
        if self._mean_chw is not None:
            # Windows of the channels-first mean, axes moved to (P, P, C, c, c) like `windows`.
            # (Fancy indexing lays its result out in the memory order of the window it copies;
            # from the channels-first mean that order is (C, c, c), so the gathered crops come
            # out C-contiguous, as the network wants them.)
            mean_windows = np.moveaxis(sliding_window_view(self._mean_chw, (c, c), axis=(1, 2)),
                                       0, 2)
            # The gathered mean crops are a new array: use it as the output, so that the
            # subtraction needs no third (B, C, c, c) buffer. uint8 - float32 converts the
            # pixel to float32 (exactly) and subtracts, as ``astype`` then ``-=`` does.
            out = mean_windows[tops, lefts]
            return np.subtract(crops, out, out=out)
        out = np.empty(crops.shape, np.float32)
        if self.mean is None:
            np.copyto(out, crops)                         # uint8 -> float32, exact
            return out
        return np.subtract(crops, self.mean.reshape(-1, 1, 1), out=out)   # (C,) -> (C, 1, 1)

    def eval_ten_crop(self, image):
        """The ten test views of one image -> float32 (10, C, c, c), in ``ten_crop``'s order."""
        stored = self.store(image).astype(np.float32)
        if self.mean is not None:
            stored = stored - self.mean               # whole-image mean, then crop: same thing
        views = ten_crop(stored, self.crop_size)
        if self.scale:
            views *= self._factor
        return views
