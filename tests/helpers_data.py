"""Shared helpers for the data tests: a Preprocess with random statistics."""
import numpy as np

from minitorch_alexnet.data import Preprocess, fit_pca_colour


def random_preprocess(rng, channels, mean_kind, pca, crop_size, stored_size, **options):
    """A Preprocess with a random mean ("none", "channel" or "image") and, if ``pca``, a colour
    PCA fitted on random correlated images; ``options`` go to Preprocess (flip, scale, erase)."""
    mean = {"none": None,
            "channel": rng.uniform(0, 255, channels),
            "image": rng.uniform(0, 255, (stored_size, stored_size, channels))}[mean_kind]
    pca_fit = None
    if pca:
        base = rng.integers(0, 256, (8, 6, 6, 1))
        pca_fit = fit_pca_colour(np.clip(base + rng.integers(-30, 30, (8, 6, 6, channels)),
                                         0, 255).astype(np.uint8))
    return Preprocess(crop_size, stored_size, mean=mean, pca=pca_fit, **options)
