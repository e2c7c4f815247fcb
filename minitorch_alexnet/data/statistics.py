"""Training-set statistics for AlexNet's preprocessing (section 4.1): the mean image and the
PCA of the pixel colours, computed in one pass over a data set; and the colour shift the PCA
gives each image. ``transforms.py`` explains the pixel scale of the PCA.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import BadImageError
from .geometry import resize_images, to_stored_size

# --------------------------------------------------------------------------------------------
# Training-set statistics: mean image and PCA of the colours
# --------------------------------------------------------------------------------------------

class _ColourCovariance:
    """Running sums for the C x C covariance of pixel colours (pixels scaled to [0, 1])."""

    def __init__(self, channels):
        self.n = 0
        self.sum = np.zeros(channels)
        self.outer = np.zeros((channels, channels))

    def add(self, images):
        x = np.asarray(images).reshape(-1, self.sum.shape[0]).astype(np.float64) / 255.0
        self.n += x.shape[0]
        self.sum += x.sum(axis=0)
        self.outer += x.T @ x                         # sum over pixels of x x^T

    def eigen(self):
        if self.n == 0:
            raise ValueError("no pixels to fit the colour PCA on")
        mean = self.sum / self.n
        cov = self.outer / self.n - np.outer(mean, mean)   # E[x x^T] - E[x] E[x]^T
        eigvals, eigvecs = np.linalg.eigh(cov)        # ascending, orthonormal columns
        order = np.argsort(eigvals)[::-1]             # largest first, as in the paper
        eigvals = np.clip(eigvals[order], 0.0, None)
        eigvecs = eigvecs[:, order]
        # An eigenvector's sign is arbitrary; make its largest component positive so that the
        # result does not depend on the LAPACK build.
        signs = np.sign(eigvecs[np.abs(eigvecs).argmax(axis=0), np.arange(eigvecs.shape[1])])
        eigvecs = eigvecs * np.where(signs == 0, 1.0, signs)
        return eigvals.astype(np.float32), eigvecs.astype(np.float32)


def fit_pca_colour(images, *, max_images=None):
    """PCA of the pixel colours of a set of images.

    Args:
        images: an (N, H, W, C) array, or any iterable of (H, W, C) arrays (0..255).
        max_images: use at most the first this many images.

    Returns:
        ``(eigvals, eigvecs)``: eigenvalues (C,), largest first, of the C x C covariance of the
        pixel values scaled to [0, 1]; eigenvectors as the columns of a (C, C) matrix, so that
        ``cov @ eigvecs[:, i] == eigvals[i] * eigvecs[:, i]``.
    """
    acc = None
    for k, image in enumerate(images):
        if max_images is not None and k >= max_images:
            break
        image = np.asarray(image)
        if acc is None:
            acc = _ColourCovariance(image.shape[-1])
        acc.add(image)
    if acc is None:
        raise ValueError("fit_pca_colour got no images")
    return acc.eigen()


def pca_colour_shift(eigvals, eigvecs, rng, std=0.1):
    """The paper's colour offset ``[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T`` with ``a_i ~ N(0, std)``,
    on the [0, 1] pixel scale of ``fit_pca_colour``. Returns a (C,) float32 vector to add to
    every pixel of one image (multiply by 255 for 0..255 pixels)."""
    a = rng.normal(0.0, std, size=len(eigvals))
    return pca_colour_shifts(eigvals, eigvecs, a[None, :])[0]


def pca_colour_shifts(eigvals, eigvecs, a):
    """The colour offsets of n images at once, for given ``a`` (n, k): row j is
    ``sum_i a[j, i] * eigvals[i] * eigvecs[:, i]``, an (n, C) float32 array.

    The plain version is one matrix product, ``(a * eigvals) @ eigvecs.T``. A BLAS may add the k
    terms in a different order for a different n, which can change the last bit; the loop
    below adds them in the order i = 0, 1, ... for every row, so an image's offset is the same
    float whether it is computed alone or in a batch (``Preprocess.train_batch`` relies on it).
    """
    a = np.asarray(a, np.float64)
    eigvals = np.asarray(eigvals, np.float64)
    eigvecs = np.asarray(eigvecs, np.float64)
    weights = a * eigvals                                   # (n, k): a_i * lambda_i
    shifts = np.zeros((a.shape[0], eigvecs.shape[0]))       # (n, C)
    for i in range(len(eigvals)):
        shifts += weights[:, i:i + 1] * eigvecs[:, i]        # + (a_i lambda_i) p_i, every row
    return shifts.astype(np.float32)


def _sample_indices(n, max_images, seed):
    if max_images is None or max_images >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_images, replace=False))


def dataset_statistics(dataset, size, *, max_images=None, pca_images=2000, seed=0, num_workers=2):
    """Mean image and colour PCA of a data set in one pass over the images.

    Each image is brought to ``size x size`` (``to_stored_size``). The mean image uses all
    images (or a seeded sample of ``max_images``); the PCA uses at most ``pca_images`` of those,
    also a seeded sample. Unreadable images are skipped.

    Returns:
        dict with ``mean_image`` (size, size, C) float32 on the 0..255 scale, ``pixel_std``
        (the standard deviation of every pixel value of those images, all channels together,
        0..255 scale), ``eigvals``, ``eigvecs`` (see ``fit_pca_colour``; None when
        ``pca_images=0``), ``count`` (images averaged), ``bad`` (list of (path, reason)).
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("cannot compute statistics of an empty data set")
    indices = _sample_indices(n, max_images, seed)
    # The PCA sample: the first `pca_images` of a seeded shuffle of the chosen indices.
    pca_set = set(np.random.default_rng([seed, 1]).permutation(indices)[:pca_images].tolist())
    sums, bad = _Sums(), []
    images = getattr(dataset, "images", None)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        # In-memory data set: vectorised, in chunks of 512 images brought to the stored size.
        for start in range(0, len(indices), 512):
            chunk = indices[start:start + 512]
            sums.add(resize_images(images[chunk], size), [int(i) in pca_set for i in chunk])
    else:
        def load(i):
            try:
                return to_stored_size(dataset.load(int(i))[0], size), None
            except BadImageError as error:
                return None, (error.path, error.reason)

        with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
            for i, (image, failure) in zip(indices, pool.map(load, indices)):
                if failure is not None:
                    bad.append(failure)
                else:
                    sums.add(image[None], [int(i) in pca_set])
    if sums.count == 0:
        raise ValueError("every image of the data set failed to decode")
    eigvals, eigvecs = sums.cov.eigen() if sums.cov.n > 0 else (None, None)   # pca_images=0: no PCA
    values = sums.count * sums.total[..., :1].size * sums.total.shape[-1]   # pixels x channels
    mean = sums.total.sum() / values
    pixel_std = float(np.sqrt(max(0.0, sums.squares / values - mean * mean)))  # E[x^2] - E[x]^2
    return {"mean_image": (sums.total / sums.count).astype(np.float32), "pixel_std": pixel_std,
            "eigvals": eigvals, "eigvecs": eigvecs, "count": sums.count, "bad": bad}


class _Sums:
    """The running sums of ``dataset_statistics``: the pixel-wise total of the images (float64),
    the sum of every value squared, their count, and the colour covariance of those chosen for
    the PCA."""

    def __init__(self):
        self.total, self.cov, self.count, self.squares = None, None, 0, 0.0

    def add(self, stored, in_pca):
        """stored: uint8 (K, S, S, C) images at the stored size; in_pca: K booleans."""
        block = stored.astype(np.float64)
        if self.total is None:
            self.total = np.zeros(block.shape[1:])
            self.cov = _ColourCovariance(block.shape[-1])
        self.total += block.sum(axis=0)
        flat = block.reshape(-1)
        self.squares += float(flat @ flat)                              # sum of x^2
        self.count += len(stored)
        chosen = [k for k, yes in enumerate(in_pca) if yes]
        if chosen:
            self.cov.add(stored[chosen])


def compute_mean_image(dataset, size, *, max_images=None, seed=0, num_workers=2):
    """The mean of the training images at ``size x size`` (0..255 scale, float32 (S, S, C)),
    over all images or a seeded sample of ``max_images``. Subtract it before cropping, as the
    paper does (``Preprocess`` crops the mean at the same window as the image)."""
    return dataset_statistics(dataset, size, max_images=max_images, pca_images=0,
                              seed=seed, num_workers=num_workers)["mean_image"]
