"""The CUDA kernels, compiled for the CPU (minitorch_alexnet.cuda.emulate), against NumPy.

The same kernels/*.cu sources that run on the GPU are built with g++ and the emulation header,
launched over the same grid and block shape (host.py computes both), and compared with naive
loop references (tests/reference.py) in float32 and float64, including sizes that do
not fill a block of 256 threads and inputs that are not C-contiguous.

Run just these:  python -m pytest -m kernels tests/test_kernels_emulated.py
"""
import os
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from minitorch_alexnet import functional as F
from minitorch_alexnet.cuda import host

pytestmark = pytest.mark.kernels

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def emu():
    """The emulation module with its library built (once per test session)."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler (g++ or $CXX) to build the kernel emulation")
    from minitorch_alexnet.cuda import emulate
    emulate.library()
    return emulate


def random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---- im2col / col2im ---------------------------------------------------------------------------

# (x shape, kh, kw, stride, pad): odd sizes, a pad as large as the kernel, conv1's 11x11 stride 4
IM2COL_CASES = [
    ((2, 3, 7, 5), 3, 3, 2, 1),
    ((1, 1, 5, 5), 5, 5, 1, 0),
    ((3, 2, 6, 6), 3, 3, 1, 2),
    ((1, 3, 23, 23), 11, 11, 4, 0),
    ((2, 4, 5, 7), 3, 2, 3, 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", IM2COL_CASES)
def test_im2col(emu, case, dtype):
    shape, kh, kw, stride, pad = case
    x = random(shape, dtype)
    cols = emu.im2col(x, kh, kw, stride, pad)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, ref.im2col(x, kh, kw, stride, pad))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", IM2COL_CASES)
def test_col2im(emu, case, dtype):
    shape, kh, kw, stride, pad = case
    oh, ow = ref.output_size(shape[2], kh, stride, pad), ref.output_size(shape[3], kw, stride, pad)
    cols = random((shape[1] * kh * kw, shape[0] * oh * ow), dtype, seed=1)
    dx = emu.col2im(cols, shape, kh, kw, stride, pad)
    assert dx.shape == shape and dx.dtype == dtype
    ref.assert_close(dx, ref.col2im(cols, shape, kh, kw, stride, pad), dtype)


@settings(max_examples=25)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       k=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2))
def test_col2im_is_the_adjoint_of_im2col(emu, n, c, h, w, k, stride, pad):
    """<im2col(x), cols> == <x, col2im(cols)> for every shape (float64)."""
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    x = random((n, c, h, w), np.float64, seed=2)
    cols_x = emu.im2col(x, k, k, stride, pad)
    np.testing.assert_array_equal(cols_x, ref.im2col(x, k, k, stride, pad))
    cols = random(cols_x.shape, np.float64, seed=3)
    dx = emu.col2im(cols, x.shape, k, k, stride, pad)
    assert np.isclose(np.sum(cols_x * cols), np.sum(x * dx), rtol=1e-12, atol=1e-12)


def test_im2col_non_contiguous(emu):
    x = random((5, 5, 3, 2), np.float32).transpose(3, 2, 0, 1)     # (2, 3, 5, 5) view
    assert not x.flags.c_contiguous
    np.testing.assert_array_equal(emu.im2col(x, 3, 3, 1, 1), ref.im2col(np.ascontiguousarray(x), 3, 3, 1, 1))


def test_im2col_matches_functional(emu):
    x = random((2, 3, 9, 8), np.float64)
    np.testing.assert_array_equal(emu.im2col(x, 3, 3, 2, 1), F.im2col(x, 3, 3, 2, 1))


# ---- max pooling -------------------------------------------------------------------------------

# (x shape, size, stride, pad): AlexNet's 3/2, odd sizes, padding (counts as -inf)
POOL_CASES = [
    ((2, 3, 7, 7), 3, 2, 0),
    ((1, 2, 8, 5), 3, 2, 1),
    ((2, 1, 5, 6), 2, 2, 0),
    ((1, 3, 13, 13), 3, 2, 0),
    ((1, 2, 4, 4), 3, 1, 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool(emu, case, dtype):
    shape, size, stride, pad = case
    rng = np.random.default_rng(4)
    x = ref.distinct_values(shape, dtype, rng)
    y, cache = emu.max_pool2d_forward(x, size, stride, pad)
    y_ref, argmax_ref = ref.max_pool2d_argmax(x, size, stride, pad)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(cache.argmax, argmax_ref)
    dy = random(y.shape, dtype, seed=5)
    dx = emu.max_pool2d_backward(dy, cache)
    ref.assert_close(dx, ref.scatter_to_argmax(dy, argmax_ref, shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_ties_go_to_the_first_maximum(emu, dtype):
    """A constant input: every window's first in-bounds element wins and gets the gradient."""
    x = np.ones((1, 1, 5, 5), dtype=dtype)
    y, cache = emu.max_pool2d_forward(x, 3, 2, 1)
    _, argmax_ref = ref.max_pool2d_argmax(x, 3, 2, 1)
    np.testing.assert_array_equal(cache.argmax, argmax_ref)
    dx = emu.max_pool2d_backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(dx, ref.scatter_to_argmax(np.ones_like(y), argmax_ref, x.shape))


def test_max_pool_matches_functional(emu):
    x = ref.distinct_values((2, 3, 9, 9), np.float64, np.random.default_rng(6))
    y, cache = emu.max_pool2d_forward(x, 3, 2, 0)
    y_cpu, cache_cpu = F.max_pool2d_forward(x, 3, 2, 0)
    np.testing.assert_array_equal(y, y_cpu)
    dy = random(y.shape, np.float64, seed=7)
    # the same gradients, possibly added up in another order
    ref.assert_close(emu.max_pool2d_backward(dy, cache), F.max_pool2d_backward(dy, cache_cpu), np.float64)


@settings(max_examples=25)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 10), w=st.integers(1, 10),
       size=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 1))
def test_max_pool_shapes(emu, n, c, h, w, size, stride, pad):
    if h + 2 * pad < size or w + 2 * pad < size or pad > size // 2:
        return
    x = ref.distinct_values((n, c, h, w), np.float64, np.random.default_rng(8))
    y, cache = emu.max_pool2d_forward(x, size, stride, pad)
    y_ref, argmax_ref = ref.max_pool2d_argmax(x, size, stride, pad)
    np.testing.assert_array_equal(y, y_ref)
    dy = random(y.shape, np.float64, seed=9)
    ref.assert_close(emu.max_pool2d_backward(dy, cache), ref.scatter_to_argmax(dy, argmax_ref, x.shape), np.float64)


# ---- LRN ---------------------------------------------------------------------------------------

# (x shape, size, alpha, beta, k): the paper's constants, and a large alpha so that a wrong
# window cannot hide behind LRN being nearly the identity; even and odd window sizes.
LRN_CASES = [
    ((2, 7, 3, 5), 5, 1e-4, 0.75, 2.0),
    ((1, 6, 4, 3), 5, 0.5, 0.75, 2.0),
    ((2, 5, 3, 3), 4, 0.3, 0.6, 1.0),
    ((1, 3, 2, 17), 3, 1.0, 1.5, 1.0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LRN_CASES)
def test_lrn(emu, case, dtype):
    shape, size, alpha, beta, k = case
    x = random(shape, dtype)
    y, cache = emu.lrn_forward(x, size, alpha, beta, k)
    y_ref = ref.lrn(x.astype(np.float64), size, alpha, beta, k)
    ref.assert_close(y, y_ref, dtype)
    dy = random(shape, dtype, seed=10)
    ref.assert_close(emu.lrn_backward(dy, cache), ref.lrn_backward(dy, x, size, alpha, beta, k), dtype)


def test_lrn_backward_centred_difference(emu):
    """The emulated backward against a numerical gradient of the emulated forward (float64)."""
    x = random((1, 6, 2, 2), np.float64)
    dy = random(x.shape, np.float64, seed=11)
    args = (5, 0.5, 0.75, 2.0)
    _, cache = emu.lrn_forward(x, *args)
    analytic = emu.lrn_backward(dy, cache)
    numeric = np.zeros_like(x)
    eps = 1e-6
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = np.sum(dy * (emu.lrn_forward(plus, *args)[0] - emu.lrn_forward(minus, *args)[0])) / (2 * eps)
    assert np.max(np.abs(analytic - numeric)) / np.max(np.abs(numeric)) < 1e-7


def test_lrn_matches_functional(emu):
    x = random((2, 8, 3, 3), np.float64)
    y, cache = emu.lrn_forward(x, 5, 0.2, 0.75, 2.0)
    y_cpu, cache_cpu = F.lrn_forward(x, 5, 0.2, 0.75, 2.0)
    ref.assert_close(y, y_cpu, np.float64)
    dy = random(x.shape, np.float64, seed=12)
    ref.assert_close(emu.lrn_backward(dy, cache), F.lrn_backward(dy, cache_cpu), np.float64)


# ---- ReLU, dropout, bias -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 7, 11), (1,), (257,), (2, 300)])
def test_relu(emu, shape, dtype):
    x = random(shape, dtype)
    x.reshape(-1)[::3] = 0.0                       # exact zeros: the gradient there is 0
    y, cache = emu.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    dy = random(shape, dtype, seed=13)
    np.testing.assert_array_equal(emu.relu_backward(dy, cache), np.where(x > 0, dy, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.5, 0.1, 1.0])
def test_dropout(emu, p, dtype):
    x = random((3, 333), dtype)
    y, cache = emu.dropout_forward(x, p, True, 42)
    keep = np.random.default_rng(42).random(x.shape) >= p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    ref.assert_close(y, np.where(keep, x * dtype(scale), 0), dtype)
    dy = random(x.shape, dtype, seed=14)
    ref.assert_close(emu.dropout_backward(dy, cache), np.where(keep, dy * dtype(scale), 0), dtype)


def test_dropout_matches_functional_mask(emu):
    """The same seed gives the same mask as the CPU path; eval mode and p=0 are the identity."""
    x = random((4, 100), np.float32)
    y, _ = emu.dropout_forward(x, 0.5, True, np.random.default_rng(3))
    y_cpu, _ = F.dropout_forward(x, 0.5, True, np.random.default_rng(3))
    np.testing.assert_array_equal(y, y_cpu)
    for training, p in ((False, 0.5), (True, 0.0)):
        y, cache = emu.dropout_forward(x, p, training, 0)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(emu.dropout_backward(x, cache), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 5, 3, 7), (3, 4), (5, 300, 1, 1)])
def test_bias_add_and_grad(emu, shape, dtype):
    y = random(shape, dtype)
    b = random((shape[1],), dtype, seed=15)
    expected = y + b.reshape((1, -1) + (1,) * (len(shape) - 2))
    ref.assert_close(emu.bias_add(y, b), expected, dtype)
    ref.assert_close(emu.bias_grad(y), ref.bias_grad(y), dtype)


# ---- softmax cross-entropy ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 10), (3, 1000), (1, 1), (300, 3)])
def test_softmax_cross_entropy(emu, shape, dtype):
    rng = np.random.default_rng(16)
    logits = random(shape, dtype) * 5
    logits[0, 0] += 1000                         # would overflow exp() without the max shift
    labels = rng.integers(0, shape[1], size=shape[0])
    loss, dlogits = emu.softmax_cross_entropy(logits, labels)
    loss_ref, dlogits_ref = ref.softmax_cross_entropy(logits, labels)
    assert loss.shape == () and loss.dtype == dtype
    ref.assert_close(loss, loss_ref, dtype)
    ref.assert_close(dlogits, dlogits_ref, dtype)


# ---- tiled GEMM (shared memory + __syncthreads, threads run as fibers) ------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a_shape, b_shape", [
    ((37, 45), (45, 70)),          # nothing is a multiple of the 64 x 64 x 16 tile
    ((64, 16), (16, 64)),          # exactly one tile
    ((1, 1), (1, 1)),
    ((3, 20, 17), (3, 17, 9)),     # batched
    ((10, 33), (2, 33, 65)),       # one matrix reused for the whole batch
])
def test_gemm_tiled(emu, a_shape, b_shape, dtype):
    a, b = random(a_shape, dtype), random(b_shape, dtype, seed=17)
    ref.assert_close(emu.gemm_tiled(a, b), np.matmul(a.astype(np.float64), b.astype(np.float64)), dtype)


def test_gemm_tiled_transposed_operands(emu):
    a = random((40, 30), np.float32).T         # non-contiguous views
    b = random((50, 40), np.float32).T
    ref.assert_close(emu.gemm_tiled(a, b), a.astype(np.float64) @ b.astype(np.float64), np.float32)


# ---- the launcher --------------------------------------------------------------------------------

def test_launch_checks_arguments(emu):
    x = np.zeros(4, np.float32)
    grid, block = host.grid_1d(x.size)
    with pytest.raises(TypeError, match="takes 3 arguments"):
        emu.launch("relu_forward_f32", grid, block, (x, x))
    with pytest.raises(TypeError, match="int needs int32"):
        emu.launch("relu_forward_f32", grid, block, (x, x, 4))
    with pytest.raises(TypeError, match="needs float32"):
        emu.launch("relu_forward_f32", grid, block, (x.astype(np.float64), x, np.int32(4)))


def test_grid_covers_every_element():
    for total in (1, 255, 256, 257, 10_000):
        (blocks, _, _), (threads, _, _) = host.grid_1d(total)
        assert blocks * threads >= total > (blocks - 1) * threads


def test_caches_are_the_same_classes_as_the_cpu_path(emu):
    """Each layer's cache is one named tuple (minitorch_alexnet/caches.py) on both paths."""
    x = random((2, 6, 7, 7), np.float64)
    for make in (lambda ops: ops.max_pool2d_forward(x, 3, 2, 0),
                 lambda ops: ops.lrn_forward(x, 5, 1e-4, 0.75, 2.0),
                 lambda ops: ops.dropout_forward(x, 0.5, True, 3),
                 lambda ops: ops.dropout_forward(x, 0.5, False, 3)):
        (_, kernel_cache), (_, cpu_cache) = make(emu), make(F)
        assert type(kernel_cache) is type(cpu_cache)
        assert kernel_cache._fields == cpu_cache._fields


# ---- ops.py itself on the CPU: NumPy stands in for CuPy, the emulation for the GPU ---------------

@pytest.fixture
def ops_on_cpu(emu, monkeypatch):
    """``minitorch_alexnet.cuda.ops`` run on the CPU: ``backend.cupy_module()`` returns NumPy
    and every kernel the loader hands out runs in the emulation. Gives (ops, launched), the
    names of the kernels launched so far."""
    from minitorch_alexnet import backend
    from minitorch_alexnet.cuda import loader, ops
    launched = []

    def emulated_kernel(name):
        def run(grid, block, args):
            launched.append(name)
            emu.launch(name, grid, block, args)
        return run

    monkeypatch.setattr(backend, "cupy_module", lambda: np)
    monkeypatch.setattr(loader, "get_kernel", emulated_kernel)
    monkeypatch.setattr(ops, "_gemm", ops.get_gemm())             # restored after the test
    return ops, launched


def test_gemm_switch_routes_matmul_to_the_tiled_kernel(ops_on_cpu):
    ops, launched = ops_on_cpu
    a, b = random((37, 45), np.float32), random((45, 70), np.float32, seed=18)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    ops.set_gemm("cublas")
    ref.assert_close(ops.matmul(a, b), expected, np.float32)
    assert launched == []                                 # the library product, no kernel of ours
    ops.set_gemm("tiled")
    ref.assert_close(ops.matmul(a, b), expected, np.float32)
    assert launched == ["gemm_tiled_f32"]
    ops.matmul(a, b, use_tiled=False)                     # the call's own choice beats the switch
    assert launched == ["gemm_tiled_f32"]


def test_ops_and_emulation_are_made_from_one_table(ops_on_cpu, emu):
    ops, launched = ops_on_cpu
    for name in host.OPERATIONS:
        assert getattr(ops, name).__name__ == getattr(emu, name).__name__ == name
    x = random((2, 3, 7, 7), np.float64)
    np.testing.assert_array_equal(ops.im2col(x, 3, 3, 2, 1), emu.im2col(x, 3, 3, 2, 1))
    assert launched == ["im2col_f64"]
