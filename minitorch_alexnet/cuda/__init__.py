"""The GPU path: our CUDA kernels (``kernels/*.cu``) run through CuPy, and their CPU emulation.

- ``loader``: finds the ``.cu`` files, compiles each once per process with ``cupy.RawModule``.
- ``host``: the host half of every kernel (sizes, allocation, grid/block, arguments), shared
  by the GPU and the emulation so that both launch the same shape, and the table
  ``OPERATIONS`` (name -> host function) that ``ops`` and ``emulate`` are both made from.
- ``ops``: the operations on CuPy arrays, called by ``minitorch_alexnet.functional``.
- ``emulate``: the same kernels compiled for the CPU with g++, on NumPy arrays.
- ``nvrtc``: compiles the kernels' source with NVRTC, as CuPy does, without a GPU (the tests).
- ``bench``: per-layer GPU timings of AlexNet (``gpu_layer_benchmark``).

The caches the kernels' forward passes return are the CPU path's classes
(``minitorch_alexnet.caches``), and the shape checks are shared too (``minitorch_alexnet.checks``).

Importing this package never imports CuPy.
"""
