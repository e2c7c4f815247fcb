"""Our CUDA kernels on CuPy arrays: the GPU twin of ``minitorch_alexnet.functional``.

``functional`` validates shapes and dtypes, and when its input is a CuPy array it calls the
function of the same name here with the same arguments. Each function below is a thin wrapper:
``host.py`` holds the host-side work (sizes, allocation, grid and block, arguments) shared with
the CPU emulation, and ``_launch`` runs the compiled kernel on the GPU.

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
    return backend.cupy_module()


# ---- the operations (same names and arguments as functional) ---------------------------------

def im2col(x, kh, kw, stride, pad):
    """x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW). See kernels/im2col.cu."""
    return host.im2col(_cupy(), _launch, x, kh, kw, stride, pad)


def col2im(cols, x_shape, kh, kw, stride, pad):
    """The adjoint of im2col: cols -> dx of shape x_shape (gather form, no atomics)."""
    return host.col2im(_cupy(), _launch, cols, x_shape, kh, kw, stride, pad)


def relu_forward(x):
    """(y, cache) with y = max(x, 0)."""
    return host.relu_forward(_cupy(), _launch, x)


def relu_backward(dy, cache):
    """dx = dy where x > 0, else 0."""
    return host.relu_backward(_cupy(), _launch, dy, cache)


def lrn_forward(x, size, alpha, beta, k):
    """(y, cache): the paper's LRN across channels (alpha not divided by size)."""
    return host.lrn_forward(_cupy(), _launch, x, size, alpha, beta, k)


def lrn_backward(dy, cache):
    """dx of LRN."""
    return host.lrn_backward(_cupy(), _launch, dy, cache)


def max_pool2d_forward(x, size, stride, pad):
    """(y, cache) of max pooling; the cache holds the argmax (first maximum wins ties)."""
    return host.max_pool2d_forward(_cupy(), _launch, x, size, stride, pad)


def max_pool2d_backward(dy, cache):
    """dx of max pooling (gather form: one thread per input element)."""
    return host.max_pool2d_backward(_cupy(), _launch, dy, cache)


def dropout_forward(x, p, training, rng):
    """(y, cache) of inverted dropout; the mask is drawn on the host like the CPU path."""
    return host.dropout_forward(_cupy(), _launch, x, p, training, rng)


def dropout_backward(dy, cache):
    """dx of dropout (same mask and scale)."""
    return host.dropout_backward(_cupy(), _launch, dy, cache)


def softmax_cross_entropy(logits, labels):
    """(loss, dlogits): mean cross-entropy (0-d CuPy array) and its gradient."""
    cupy = _cupy()
    return host.softmax_cross_entropy(cupy, _launch, logits, cupy.asarray(labels))


def bias_add(y, b):
    """y (N, F, ...) + b[f] along axis 1, as a new array."""
    return host.bias_add(_cupy(), _launch, y, b)


def bias_grad(dy):
    """Sum of dy (N, F, ...) over every axis but 1."""
    return host.bias_grad(_cupy(), _launch, dy)


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
