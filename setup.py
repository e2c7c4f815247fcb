"""Packaging for minitorch_alexnet.

The CUDA sources live in the top-level ``kernels/`` folder so that a reader finds them next to
the Python package; ``package_dir`` installs that folder as the sub-package
``minitorch_alexnet.kernels`` so that a non-editable ``pip install .`` carries the ``.cu`` files.
"""
from setuptools import setup

setup(
    name="minitorch_alexnet",
    version="0.1.0",
    description="AlexNet from scratch in NumPy and CuPy, with hand-written backward passes and CUDA kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=[
        "minitorch_alexnet",
        "minitorch_alexnet.bench",
        "minitorch_alexnet.functional",
        "minitorch_alexnet.cuda",
        "minitorch_alexnet.data",
        "minitorch_alexnet.grade",
        "minitorch_alexnet.kernels",
    ],
    package_dir={"minitorch_alexnet.kernels": "kernels"},
    package_data={"minitorch_alexnet.kernels": ["*.cu", "*.cuh", "*.h"]},
    install_requires=["numpy>=1.23", "pillow>=9", "matplotlib>=3.5", "tqdm>=4.60"],
    extras_require={
        # nvidia-cuda-nvrtc: libnvrtc alone (no GPU or driver needed; ~58 MB download, ~150 MB
        # installed), so that tests/test_kernels_compile.py compiles every kernel with NVRTC, the
        # compiler cupy.RawModule uses, as well as with nvcc. Linux only: no macOS wheel exists.
        # Pinned to 13.0: its PTX is one every CUDA 13 driver runs, should CuPy pick it up.
        "dev": ["pytest>=7", "hypothesis>=6",
                "nvidia-cuda-nvrtc==13.0.*; sys_platform == 'linux'"],
        # Data-parallel training under mpiexec (minitorch_alexnet/distributed.py): mpi4py and
        # the MPICH wheel, which brings its own mpiexec (no compiler, no system MPI needed).
        "mpi": ["mpi4py>=4", "mpich>=4"],
        # Pick the wheel that matches the CUDA major version of your driver (nvidia-smi shows it).
        "cuda12": ["cupy-cuda12x>=13"],
        "cuda13": ["cupy-cuda13x>=13.6"],
    },
)
