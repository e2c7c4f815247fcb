"""minitorch_alexnet: AlexNet from scratch, written to be read.

- ``minitorch_alexnet.functional``: every layer as a pure ``*_forward -> (y, cache)`` /
  ``*_backward(dy, cache)`` pair, on NumPy arrays (CPU) or CuPy arrays (our CUDA kernels).
- ``minitorch_alexnet.nn``: thin modules holding ``params`` and ``grads``.
- ``minitorch_alexnet.gradcheck``: centred-difference gradient checks.
"""
__version__ = "0.1.0"

import os as _os


def _share_the_cores():
    """Under ``mpiexec -n N`` several processes share one machine's cores: unless told
    otherwise, give each cores / N threads (BLAS and our layers), as torchrun does, instead of
    every process starting one thread per core. Runs before NumPy is imported, since BLAS
    reads its variables once, when it loads."""
    local = _os.environ.get("MPI_LOCALNRANKS") or _os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE")
    if local and local.isdigit() and int(local) > 1:
        cores = len(_os.sched_getaffinity(0)) if hasattr(_os, "sched_getaffinity") else _os.cpu_count()
        share = str(max(1, (cores or 1) // int(local)))
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MINITORCH_THREADS"):
            _os.environ.setdefault(name, share)


_share_the_cores()

from .architecture import Variant  # noqa: E402
from .model import AlexNet  # noqa: E402  (imports NumPy only; CuPy stays lazy)

__all__ = ["AlexNet", "Variant"]
