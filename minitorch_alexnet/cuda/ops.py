"""Our CUDA kernels on CuPy arrays: the GPU twin of ``minitorch_alexnet.functional``.

``functional`` validates shapes and dtypes, and when its input is a CuPy array it calls the
function of the same name here with the same arguments. Each function is a thin wrapper, made
from the table ``host.OPERATIONS`` (the emulation is made from the same table): ``host.py``
holds the host-side work (sizes, allocation, grid and block, arguments) shared with the CPU
emulation, and ``_launch`` runs the compiled kernel on the GPU.

Inputs: CuPy arrays of float32 or float64 (int labels for the loss), any strides (they are
made C-contiguous). Outputs: new CuPy arrays; nothing writes into an input.

Matrix products
    ``matmul(a, b)`` uses cuBLAS (``cupy.matmul``) by default. Our hand-written shared-memory
    kernel ``kernels/gemm.cu`` runs instead when
      * the call passes ``use_tiled=True``, or
      * ``use_tiled`` is left as None and the module switch says "tiled": set it with the
        environment variable ``MINITORCH_GEMM=tiled`` before starting Python, or call
        ``minitorch_alexnet.cuda.ops.set_gemm("tiled")`` (``"cublas"`` switches back).
    As ``functional`` computes convolutions and fully-connected layers with ``matmul``, the
    switch moves the whole conv/linear path onto our kernel.
    TF32: CuPy uses full fp32 in cuBLAS unless ``CUPY_TF32=1`` is set; we never enable it.

CuPy is imported lazily (inside the functions), so importing this module needs no GPU.
"""
import os

from .. import backend
from . import host, loader

_GEMM_CHOICES = ("cublas", "tiled")
_gemm = os.environ.get("MINITORCH_GEMM", "cublas").strip().lower() or "cublas"
if _gemm not in _GEMM_CHOICES:
    raise ValueError(f"MINITORCH_GEMM must be one of {_GEMM_CHOICES}, got {_gemm!r}")


def set_gemm(name):
    """Choose the matrix product used by ``matmul``: ``"cublas"`` (default) or ``"tiled"``."""
    global _gemm
    name = str(name).strip().lower()
    if name not in _GEMM_CHOICES:
        raise ValueError(f"gemm must be one of {_GEMM_CHOICES}, got {name!r}")
    _gemm = name


def get_gemm():
    """The current matrix product: ``"cublas"`` or ``"tiled"``."""
    return _gemm


def _launch(name, grid, block, args):
    """Run kernel ``name`` over ``grid`` blocks of ``block`` threads (CuPy's calling convention)."""
    loader.get_kernel(name)(grid, block, args)


def _cupy():
    """The ``cupy`` module, imported on the first call."""
    return backend.cupy_module()


# ---- the operations (same names and arguments as functional) ---------------------------------

# One function per entry of host.OPERATIONS, each host.<name>(cupy, _launch, ...): im2col,
# col2im, relu_forward, relu_backward, lrn_forward, lrn_backward, max_pool2d_forward,
# max_pool2d_backward, dropout_forward, dropout_backward, softmax_cross_entropy, bias_add,
# bias_grad and gemm_tiled. For example ``ops.relu_forward(x)`` returns ``(y, cache)``.
globals().update(host.bind_operations(_cupy, _launch, __name__))


def matmul(a, b, use_tiled=None):
    """a @ b. cuBLAS by default; our tiled kernel (kernels/gemm.cu) when ``use_tiled`` is True,
    or when it is None and ``set_gemm("tiled")`` / ``MINITORCH_GEMM=tiled`` chose it.

    The tiled kernel handles 2-D and 3-D (batched) operands of one float dtype; anything else
    goes to cuBLAS.
    """
    cupy = _cupy()
    tiled = (_gemm == "tiled") if use_tiled is None else bool(use_tiled)
    if (tiled and a.ndim in (2, 3) and b.ndim in (2, 3) and a.dtype == b.dtype
            and a.dtype in (cupy.float32, cupy.float64)):
        return host.gemm_tiled(cupy, _launch, a, b)
    return cupy.matmul(a, b)
