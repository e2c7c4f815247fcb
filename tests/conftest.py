"""Shared pytest set-up: one marker per layer (``pytest -m lrn`` runs the LRN checks alone)
and a shared hypothesis profile."""
import os

from hypothesis import HealthCheck, settings

MARKERS = {
    "conv": "convolution, im2col and col2im (lesson 1)",
    "linear": "fully connected layer (lesson 6)",
    "relu": "ReLU and tanh (lesson 2)",
    "lrn": "local response normalization (lesson 3)",
    "pool": "max-pooling (lesson 4)",
    "dropout": "dropout (lesson 5)",
    "loss": "softmax cross-entropy (lesson 6)",
    "gradcheck": "the gradient-check machinery (lesson 7)",
    "modules": "the nn modules",
    "kernels": "CUDA kernels: nvcc compile and CPU emulation (lesson 8)",
    "gpu": "needs a CUDA GPU and CuPy; skipped without one",
    "model": "the AlexNet model and its two columns (lesson 9)",
    "train": "the trainer, optimizer and checkpoints (lesson 10)",
    "data": "data sets, decoding and augmentation",
    "faults": "crash safety and bad input",
    "tutorials": "the tutorials' code runs",
    "slow": "slower end-to-end runs",
    "bench": "the benchmarks run and report sane numbers (tiny sizes, nothing timed against a target)",
    "style": "size limits: no function over 60 lines, no module over 400 (tests/test_sizes.py)",
}


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


settings.register_profile(
    "default", deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
