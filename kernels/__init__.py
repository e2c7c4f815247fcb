"""The CUDA C sources of minitorch_alexnet (installed as ``minitorch_alexnet.kernels``).

Nothing to import here: ``minitorch_alexnet.cuda.loader`` reads the ``.cu`` files beside this
file and compiles them with ``cupy.RawModule``.
"""
