"""minitorch_alexnet: AlexNet from scratch, written to be read.

- ``minitorch_alexnet.functional``: every layer as a pure ``*_forward -> (y, cache)`` /
  ``*_backward(dy, cache)`` pair, on NumPy arrays (CPU) or CuPy arrays (our CUDA kernels).
- ``minitorch_alexnet.nn``: thin modules holding ``params`` and ``grads``.
- ``minitorch_alexnet.gradcheck``: centred-difference gradient checks.
"""
__version__ = "0.1.0"

from .model import AlexNet  # noqa: E402  (imports NumPy only; CuPy stays lazy)

__all__ = ["AlexNet"]
