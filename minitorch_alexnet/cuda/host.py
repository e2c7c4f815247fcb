"""The host side of every kernel: output sizes, allocation, launch shape and argument list.

A CUDA kernel is only half of an operation: the CPU ("host") must compute the output shape,
allocate the output, choose how many blocks of how many threads to launch and pass the
arguments in the order of the kernel's C signature. This module writes that half ONCE for both
places our kernels run:

* on the GPU, ``ops.py`` calls these functions with ``xp = cupy`` and a ``launch`` that calls
  the ``cupy.RawKernel``;
* on the CPU, ``emulate.py`` calls them with ``xp = numpy`` and a ``launch`` that runs the same
  kernel compiled by g++ through ctypes.

So the emulation runs exactly the grid, block and arguments that the GPU runs. Both modules
build their functions from one table, ``OPERATIONS`` at the end of this file, with
``bind_operations``: adding a kernel to both is one line there.

The forward passes return the same named caches as the CPU path (``minitorch_alexnet.caches``:
``PoolCache``, ``LRNCache``, ``DropoutCache``); where a field holds another form on the GPU
(max-pool's argmax, LRN's y), the class's docstring says so.

``launch(name, grid, block, args)`` follows CuPy's ``RawKernel.__call__``: ``grid`` and
``block`` are 3-tuples, ``args`` a tuple of arrays (passed as pointers to their data) and NumPy
scalars (``numpy.int32`` for ``int``, the array's float type for ``float``/``double``).

Every input is made C-contiguous first (``xp.ascontiguousarray``): kernels index raw memory
and assume row-major layout. Nothing here writes into an input array.
"""
import inspect

import numpy as np

from ..caches import DropoutCache, LRNCache, PoolCache
# The one helper for conv/pool output sizes, (size + 2*pad - window)//stride + 1, and the
# check of a backward pass's dy: the same module as the CPU path's (``functional``) checks.
from ..checks import check_upstream, output_size

BLOCK_SIZE = 256                 # threads per block of every one-dimensional launch
GEMM_TILE = 64                   # rows/columns of C per block of the tiled GEMM (gemm.cu)
GEMM_THREADS = (16, 16, 1)       # threads per block of the tiled GEMM
_INT32_MAX = 2**31 - 1


# ---- helpers ----------------------------------------------------------------------------------

def kernel_name(base, dtype):
    """``"im2col"`` and float32 -> ``"im2col_f32"``; float64 -> ``"im2col_f64"``."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return base + "_f32"
    if dtype == np.float64:
        return base + "_f64"
    raise TypeError(f"our CUDA kernels take float32 or float64 arrays, got {dtype}")


def grid_1d(total, block_size=BLOCK_SIZE):
    """Launch shape for one thread per element: (ceil(total / block_size),) blocks.

    The last block may be partly past the end; the kernels check ``flat >= total``.
    """
    blocks = max(1, (total + block_size - 1) // block_size)
    return (blocks, 1, 1), (block_size, 1, 1)


def i32(value):
    """A C ``int`` argument."""
    return np.int32(value)


def _check_int32(*sizes):
    """Kernels index with 32-bit ints: refuse arrays with 2**31 elements or more."""
    for size in sizes:
        if size > _INT32_MAX:
            raise ValueError(f"array of {size} elements is too large for 32-bit kernel indices")


# ---- im2col / col2im (kernels/im2col.cu) ------------------------------------------------------

def im2col(xp, launch, x, kh, kw, stride, pad):
    """x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW); see im2col.cu for the index map."""
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    OH, OW = output_size(H, kh, stride, pad), output_size(W, kw, stride, pad)
    cols = xp.empty((C * kh * kw, N * OH * OW), dtype=x.dtype)
    _check_int32(cols.size, x.size)
    grid, block = grid_1d(cols.size)
    launch(kernel_name("im2col", x.dtype), grid, block,
           (x, cols, i32(N), i32(C), i32(H), i32(W), i32(kh), i32(kw), i32(stride), i32(pad),
            i32(OH), i32(OW)))
    return cols


def col2im(xp, launch, cols, x_shape, kh, kw, stride, pad):
    """cols (C*KH*KW, N*OH*OW) -> dx of shape x_shape (N, C, H, W), gather form."""
    cols = xp.ascontiguousarray(cols)
    N, C, H, W = (int(s) for s in x_shape)
    OH, OW = output_size(H, kh, stride, pad), output_size(W, kw, stride, pad)
    if cols.shape != (C * kh * kw, N * OH * OW):
        raise ValueError(f"cols has shape {cols.shape}, expected {(C * kh * kw, N * OH * OW)}")
    dx = xp.empty((N, C, H, W), dtype=cols.dtype)
    _check_int32(cols.size, dx.size)
    grid, block = grid_1d(dx.size)
    launch(kernel_name("col2im", cols.dtype), grid, block,
           (cols, dx, i32(N), i32(C), i32(H), i32(W), i32(kh), i32(kw), i32(stride), i32(pad),
            i32(OH), i32(OW)))
    return dx


# ---- ReLU, dropout, bias (kernels/elementwise.cu) ---------------------------------------------

def relu_forward(xp, launch, x):
    """y = max(x, 0); the cache is y (y > 0 exactly where x > 0)."""
    x = xp.ascontiguousarray(x)
    y = xp.empty_like(x)
    _check_int32(x.size)
    grid, block = grid_1d(x.size)
    launch(kernel_name("relu_forward", x.dtype), grid, block, (x, y, i32(x.size)))
    return y, y


def relu_backward(xp, launch, dy, cache):
    """dx = dy where the forward input was > 0, else 0."""
    y = cache
    check_upstream(dy, y.shape, y.dtype, like=y)
    dy = xp.ascontiguousarray(dy)
    dx = xp.empty_like(dy)
    grid, block = grid_1d(dy.size)
    launch(kernel_name("relu_backward", dy.dtype), grid, block, (dy, y, dx, i32(dy.size)))
    return dx


def dropout_mask(shape, p, rng):
    """The keep-mask, drawn on the host exactly as the CPU path draws it (same rng, same numbers).

    ``rng`` is a ``numpy.random.Generator``, a ``functional.dropout.KeyedUniforms`` (anything
    with a ``random(shape)`` method) or a seed for ``numpy.random.default_rng``.
    ``p`` is the probability of DROPPING a unit.
    """
    rng = rng if hasattr(rng, "random") else np.random.default_rng(rng)
    return rng.random(shape) >= p


def dropout_forward(xp, launch, x, p, training, rng):
    """Inverted dropout: y = x * keep / (1 - p) in training, y = x otherwise.

    Cache: a ``DropoutCache`` whose mask is ``keep`` as uint8 on the device. As on the CPU
    path, ``training=False`` or ``p == 0`` returns a copy of x and draws no random numbers
    (so a shared Generator advances identically on both devices), with mask None.
    """
    if not training or p == 0:
        return x.copy(), DropoutCache(mask=None, scale=1.0)
    keep_host = dropout_mask(x.shape, p, rng)
    x = xp.ascontiguousarray(x)
    keep = xp.asarray(keep_host.astype(np.uint8))       # upload the mask (1 byte per element)
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)          # p == 1 drops everything
    y = xp.empty_like(x)
    _check_int32(x.size)
    grid, block = grid_1d(x.size)
    launch(kernel_name("dropout_apply", x.dtype), grid, block,
           (x, keep, y, x.dtype.type(scale), i32(x.size)))
    return y, DropoutCache(mask=keep, scale=scale)


def dropout_backward(xp, launch, dy, cache):
    """dx = dy * keep / (1 - p), the same mask and scale as the forward pass (a copy of dy when
    the forward pass was the identity)."""
    keep = cache.mask                                    # uint8, 1 where the unit was kept
    if keep is None:
        return dy.copy()
    check_upstream(dy, keep.shape, like=keep)
    dy = xp.ascontiguousarray(dy)
    dx = xp.empty_like(dy)
    grid, block = grid_1d(dy.size)
    launch(kernel_name("dropout_apply", dy.dtype), grid, block,
           (dy, keep, dx, dy.dtype.type(cache.scale), i32(dy.size)))
    return dx


def _features_and_rest(shape):
    """(N, F, ...) -> (N, F, S) with S the product of the trailing sizes (1 if none)."""
    N, F = int(shape[0]), int(shape[1])
    S = 1
    for size in shape[2:]:
        S *= int(size)
    return N, F, S


def bias_add(xp, launch, y, b):
    """y (N, F, ...) + b (F,) along axis 1, as a new array."""
    y = xp.ascontiguousarray(y)
    b = xp.ascontiguousarray(b, dtype=y.dtype)
    N, F, S = _features_and_rest(y.shape)
    if b.shape != (F,):
        raise ValueError(f"bias has shape {b.shape}, expected ({F},)")
    out = xp.empty_like(y)
    _check_int32(y.size)
    grid, block = grid_1d(y.size)
    launch(kernel_name("bias_add", y.dtype), grid, block, (y, b, out, i32(F), i32(S), i32(y.size)))
    return out


def bias_grad(xp, launch, dy):
    """db[f] = sum of dy (N, F, ...) over every axis but 1, in two passes (see elementwise.cu)."""
    dy = xp.ascontiguousarray(dy)
    N, F, S = _features_and_rest(dy.shape)
    _check_int32(dy.size)
    partial = xp.empty((N, F), dtype=dy.dtype)
    grid, block = grid_1d(N * F)
    launch(kernel_name("bias_grad_partial", dy.dtype), grid, block,
           (dy, partial, i32(S), i32(N * F)))
    db = xp.empty((F,), dtype=dy.dtype)
    grid, block = grid_1d(F)
    launch(kernel_name("bias_grad_final", dy.dtype), grid, block, (partial, db, i32(N), i32(F)))
    return db


# ---- LRN (kernels/lrn.cu) ---------------------------------------------------------------------

def lrn_forward(xp, launch, x, size, alpha, beta, k):
    """b = a * s^(-beta), s = k + alpha * window sum of a^2; an ``LRNCache`` with x, s and y."""
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    y = xp.empty_like(x)
    s = xp.empty_like(x)                                 # the kernel's "scale" argument
    _check_int32(x.size)
    grid, block = grid_1d(x.size)
    real = x.dtype.type
    launch(kernel_name("lrn_forward", x.dtype), grid, block,
           (x, y, s, i32(N), i32(C), i32(H), i32(W), i32(size), real(alpha), real(beta),
            real(k)))
    return y, LRNCache(x=x, s=s, s_pow=None, y=y, size=size, alpha=alpha, beta=beta)


def lrn_backward(xp, launch, dy, cache):
    """dx from the formula in lrn.cu, one thread per input element."""
    x = cache.x
    check_upstream(dy, x.shape, x.dtype, like=x)
    dy = xp.ascontiguousarray(dy)
    N, C, H, W = x.shape
    dx = xp.empty_like(x)
    grid, block = grid_1d(x.size)
    real = x.dtype.type
    launch(kernel_name("lrn_backward", x.dtype), grid, block,
           (dy, x, cache.y, cache.s, dx, i32(N), i32(C), i32(H), i32(W), i32(cache.size),
            real(cache.alpha), real(cache.beta)))
    return dx


# ---- max pooling (kernels/pool.cu) ------------------------------------------------------------

def max_pool2d_forward(xp, launch, x, size, stride, pad):
    """y (N, C, OH, OW) and a ``PoolCache`` whose argmax is the pixel h*W + w of each window's
    maximum inside its plane (-1 for a window of padding only)."""
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    OH, OW = output_size(H, size, stride, pad), output_size(W, size, stride, pad)
    y = xp.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = xp.empty((N, C, OH, OW), dtype=np.int32)   # h*W + w inside the plane, -1 if none
    _check_int32(x.size)
    grid, block = grid_1d(y.size)
    launch(kernel_name("max_pool_forward", x.dtype), grid, block,
           (x, y, argmax, i32(N), i32(C), i32(H), i32(W), i32(size), i32(stride), i32(pad),
            i32(OH), i32(OW)))
    return y, PoolCache(x_shape=tuple(x.shape), argmax=argmax, size=size, stride=stride, pad=pad,
                        dtype=x.dtype)


def max_pool2d_backward(xp, launch, dy, cache):
    """dx (N, C, H, W): each input pixel gathers the dy of the windows it won."""
    argmax = cache.argmax
    check_upstream(dy, argmax.shape, cache.dtype, like=argmax)
    N, C, H, W = cache.x_shape
    dy = xp.ascontiguousarray(dy)
    OH, OW = argmax.shape[2], argmax.shape[3]
    dx = xp.empty(cache.x_shape, dtype=dy.dtype)
    grid, block = grid_1d(dx.size)
    launch(kernel_name("max_pool_backward", dy.dtype), grid, block,
           (dy, argmax, dx, i32(N), i32(C), i32(H), i32(W), i32(cache.size), i32(cache.stride),
            i32(cache.pad), i32(OH), i32(OW)))
    return dx


# ---- softmax cross-entropy (kernels/softmax.cu) -----------------------------------------------

def softmax_cross_entropy(xp, launch, logits, labels):
    """Mean cross-entropy over the batch (0-d array of logits' dtype) and dlogits (N, C)."""
    logits = xp.ascontiguousarray(logits)
    labels = xp.ascontiguousarray(xp.asarray(labels), dtype=np.int32)   # labels may be NumPy
    N, C = logits.shape
    _check_int32(logits.size)
    row_loss = xp.empty((N,), dtype=logits.dtype)
    row_lse = xp.empty((N,), dtype=logits.dtype)
    grid, block = grid_1d(N)
    launch(kernel_name("softmax_xent_rows", logits.dtype), grid, block,
           (logits, labels, row_loss, row_lse, i32(N), i32(C)))
    dlogits = xp.empty_like(logits)
    grid, block = grid_1d(logits.size)
    launch(kernel_name("softmax_xent_grad", logits.dtype), grid, block,
           (logits, labels, row_lse, dlogits, i32(N), i32(C)))
    loss = xp.asarray(row_loss.sum() / N, dtype=logits.dtype)   # mean over the batch, 0-d
    return loss, dlogits


# ---- tiled GEMM (kernels/gemm.cu) -------------------------------------------------------------

def gemm_tiled(xp, launch, a, b):
    """a @ b with our shared-memory kernel. 2-D @ 2-D, or batched 3-D where a 2-D operand is
    reused for every batch entry (stride 0)."""
    if a.dtype != b.dtype:
        raise TypeError(f"tiled GEMM needs equal dtypes, got {a.dtype} and {b.dtype}")
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise ValueError(f"tiled GEMM takes 2-D or 3-D operands, got {a.shape} @ {b.shape}")
    a = xp.ascontiguousarray(a)
    b = xp.ascontiguousarray(b)
    M, K = a.shape[-2:]
    K2, N = b.shape[-2:]
    if K != K2:
        raise ValueError(f"inner sizes differ: {a.shape} @ {b.shape}")
    batch_a = a.shape[0] if a.ndim == 3 else 1
    batch_b = b.shape[0] if b.ndim == 3 else 1
    if batch_a != batch_b and 1 not in (batch_a, batch_b):
        raise ValueError(f"batch sizes differ: {a.shape} @ {b.shape}")
    batch = max(batch_a, batch_b)
    out_shape = (batch, M, N) if (a.ndim == 3 or b.ndim == 3) else (M, N)
    c = xp.empty(out_shape, dtype=a.dtype)
    if c.size == 0:
        return c                              # nothing to compute (and no empty grid to launch)
    _check_int32(a.size, b.size, c.size)
    # distance between consecutive matrices of a batch; 0 repeats a single matrix
    stride_a = M * K if batch_a > 1 else 0
    stride_b = K * N if batch_b > 1 else 0
    grid = ((N + GEMM_TILE - 1) // GEMM_TILE, (M + GEMM_TILE - 1) // GEMM_TILE, batch)
    launch(kernel_name("gemm_tiled", a.dtype), grid, GEMM_THREADS,
           (a, b, c, i32(M), i32(N), i32(K), i32(stride_a), i32(stride_b), i32(M * N)))
    return c


# ---- the one table that ops.py (GPU) and emulate.py (CPU) are built from ----------------------

# Every operation offered on both, by name. A new kernel needs its host function above and one
# line here; ops.py and emulate.py then both gain the operation, with the same name.
OPERATIONS = {
    "im2col": im2col,
    "col2im": col2im,
    "relu_forward": relu_forward,
    "relu_backward": relu_backward,
    "lrn_forward": lrn_forward,
    "lrn_backward": lrn_backward,
    "max_pool2d_forward": max_pool2d_forward,
    "max_pool2d_backward": max_pool2d_backward,
    "dropout_forward": dropout_forward,
    "dropout_backward": dropout_backward,
    "softmax_cross_entropy": softmax_cross_entropy,
    "bias_add": bias_add,
    "bias_grad": bias_grad,
    "gemm_tiled": gemm_tiled,
}


def bind_operations(array_module, launch, module_name):
    """The operations of OPERATIONS for one place to run: ``{name: function}`` where
    ``function(*args)`` is ``host.<name>(array_module(), launch, *args)``, so it takes the same
    arguments as ``functional``'s function of that name.

    ``array_module`` is a function returning ``numpy`` or ``cupy``, called at each call (so
    that ops.py imports CuPy only when an operation first runs). ``module_name`` is the module
    the functions appear to belong to (for ``help()`` and error messages)."""
    return {name: _bound(name, host_function, array_module, launch, module_name)
            for name, host_function in OPERATIONS.items()}


def _bound(name, host_function, array_module, launch, module_name):
    """One operation of ``bind_operations``: the host function with xp and launch filled in."""
    def operation(*args, **kwargs):
        return host_function(array_module(), launch, *args, **kwargs)

    operation.__name__ = operation.__qualname__ = name
    operation.__module__ = module_name
    operation.__doc__ = host_function.__doc__
    # help() shows the real arguments: the host function's, without xp and launch
    parameters = list(inspect.signature(host_function).parameters.values())[2:]
    operation.__signature__ = inspect.Signature(parameters)
    return operation
