"""Our CUDA kernels on a real GPU (pytest marker ``gpu``), through CuPy.

Without a GPU they run on the CuPy stand-in (``tests/fake_cupy``: NumPy arrays that remember
their device, our kernels through the CPU emulation; tests/conftest.py installs it), and are
skipped, with the reason shown, only under ``--cupy real``. Checks:
every kernel against the NumPy references (float32 tolerance, and float64), odd sizes that do
not fill a block, non-contiguous inputs, float64 gradients of every layer on the GPU against
the CPU implementation, centred differences on the GPU, the tiled GEMM against cuBLAS (and that
the switch really launches it), the loader (compile once, errors name file and line) and a small run of the benchmark.

Run them:  python -m pytest -m gpu             (--cupy real: never the stand-in)
"""
import numpy as np
import pytest

import reference as ref
from minitorch_alexnet import backend

pytestmark = [
    pytest.mark.gpu,
    # a string: evaluated at each test's setup, when conftest.py has installed the stand-in
    pytest.mark.skipif("not backend.cuda_available()",
                       reason="needs CuPy and a CUDA device (pip install .[cuda12] or .[cuda13] on a GPU machine)"),
]

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def cp():
    return backend.cupy_module()


@pytest.fixture(scope="module")
def ops():
    from minitorch_alexnet.cuda import ops
    return ops


@pytest.fixture(scope="module")
def F():
    from minitorch_alexnet import functional
    return functional


def random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def host(array):
    return backend.to_numpy(array)


# ---- every kernel against the references ---------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [((2, 3, 7, 5), 3, 3, 2, 1), ((1, 3, 23, 23), 11, 11, 4, 0),
                                  ((3, 2, 6, 6), 3, 3, 1, 2)])
def test_im2col_col2im(cp, ops, case, dtype):
    shape, kh, kw, stride, pad = case
    x = random(shape, dtype)
    cols = ops.im2col(cp.asarray(x), kh, kw, stride, pad)
    np.testing.assert_array_equal(host(cols), ref.im2col(x, kh, kw, stride, pad))
    g = random(cols.shape, dtype, seed=1)
    dx = ops.col2im(cp.asarray(g), shape, kh, kw, stride, pad)
    ref.assert_close(host(dx), ref.col2im(g, shape, kh, kw, stride, pad), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [((2, 3, 7, 7), 3, 2, 0), ((1, 2, 8, 5), 3, 2, 1), ((2, 5, 13, 13), 3, 2, 0)])
def test_max_pool(cp, ops, case, dtype):
    shape, size, stride, pad = case
    x = ref.distinct_values(shape, dtype, np.random.default_rng(2))
    y, cache = ops.max_pool2d_forward(cp.asarray(x), size, stride, pad)
    y_ref, argmax = ref.max_pool2d_argmax(x, size, stride, pad)
    np.testing.assert_array_equal(host(y), y_ref)
    dy = random(y.shape, dtype, seed=3)
    dx = ops.max_pool2d_backward(cp.asarray(dy), cache)
    ref.assert_close(host(dx), ref.scatter_to_argmax(dy, argmax, shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [((2, 7, 3, 5), 5, 1e-4, 0.75, 2.0), ((1, 6, 4, 3), 5, 0.5, 0.75, 2.0),
                                  ((2, 5, 3, 3), 4, 0.3, 0.6, 1.0)])
def test_lrn(cp, ops, case, dtype):
    shape, size, alpha, beta, k = case
    x = random(shape, dtype)
    y, cache = ops.lrn_forward(cp.asarray(x), size, alpha, beta, k)
    ref.assert_close(host(y), ref.lrn(x.astype(np.float64), size, alpha, beta, k), dtype)
    dy = random(shape, dtype, seed=4)
    dx = ops.lrn_backward(cp.asarray(dy), cache)
    ref.assert_close(host(dx), ref.lrn_backward(dy, x, size, alpha, beta, k), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 7, 11), (257,), (1,)])
def test_relu(cp, ops, shape, dtype):
    x = random(shape, dtype)
    x.reshape(-1)[::3] = 0.0
    y, cache = ops.relu_forward(cp.asarray(x))
    np.testing.assert_array_equal(host(y), np.maximum(x, 0))
    dy = random(shape, dtype, seed=5)
    np.testing.assert_array_equal(host(ops.relu_backward(cp.asarray(dy), cache)), np.where(x > 0, dy, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.5, 1.0])
def test_dropout(cp, ops, F, p, dtype):
    x = random((3, 333), dtype)
    y, cache = ops.dropout_forward(cp.asarray(x), p, True, 7)
    y_cpu, mask_cpu = F.dropout_forward(x, p, True, 7)            # the same seed: the same mask
    ref.assert_close(host(y), y_cpu, dtype)
    dy = random(x.shape, dtype, seed=6)
    ref.assert_close(host(ops.dropout_backward(cp.asarray(dy), cache)), F.dropout_backward(dy, mask_cpu), dtype)
    y_eval, cache = ops.dropout_forward(cp.asarray(x), p, False, 7)
    np.testing.assert_array_equal(host(y_eval), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 10), (3, 1000), (300, 3)])
def test_softmax_cross_entropy(cp, ops, shape, dtype):
    logits = random(shape, dtype) * 5
    logits[0, 0] += 1000
    labels = np.random.default_rng(8).integers(0, shape[1], size=shape[0])
    loss, dlogits = ops.softmax_cross_entropy(cp.asarray(logits), cp.asarray(labels))
    loss_ref, dlogits_ref = ref.softmax_cross_entropy(logits, labels)
    assert isinstance(loss, cp.ndarray) and loss.shape == () and loss.dtype == dtype
    ref.assert_close(host(loss), loss_ref, dtype)
    ref.assert_close(host(dlogits), dlogits_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 5, 3, 7), (3, 4)])
def test_bias_add_and_grad(cp, ops, shape, dtype):
    y, b = random(shape, dtype), random((shape[1],), dtype, seed=9)
    expected = y + b.reshape((1, -1) + (1,) * (len(shape) - 2))
    ref.assert_close(host(ops.bias_add(cp.asarray(y), cp.asarray(b))), expected, dtype)
    ref.assert_close(host(ops.bias_grad(cp.asarray(y))), ref.bias_grad(y), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a_shape, b_shape", [((37, 45), (45, 70)), ((200, 300), (300, 130)),
                                              ((3, 20, 17), (3, 17, 9)), ((10, 33), (2, 33, 65))])
def test_tiled_gemm_matches_cublas(cp, ops, a_shape, b_shape, dtype):
    a, b = cp.asarray(random(a_shape, dtype)), cp.asarray(random(b_shape, dtype, seed=10))
    expected = np.matmul(host(a).astype(np.float64), host(b).astype(np.float64))
    ref.assert_close(host(ops.matmul(a, b, use_tiled=True)), expected, dtype)
    ref.assert_close(host(ops.matmul(a, b, use_tiled=False)), expected, dtype)


def test_gemm_switch_runs_conv_on_the_tiled_kernel(cp, ops, F, monkeypatch):
    """cuBLAS and our kernel give the same numbers, so the output alone cannot show which ran:
    count the launches of gemm.cu's kernel (every launch looks its kernel up in the loader)."""
    from minitorch_alexnet.cuda import loader
    launched = []
    real_get_kernel = loader.get_kernel

    def counting_get_kernel(name):
        launched.append(name)
        return real_get_kernel(name)

    monkeypatch.setattr(loader, "get_kernel", counting_get_kernel)
    monkeypatch.setattr(ops, "_gemm", ops.get_gemm())             # restored after the test
    x, w, b = random((2, 4, 9, 9), np.float32), random((6, 2, 3, 3), np.float32, 1), random((6,), np.float32, 2)
    expected, _ = F.conv2d_forward(x, w, b, stride=1, pad=1, groups=2)
    gpu_args = (cp.asarray(x), cp.asarray(w), cp.asarray(b))
    ops.set_gemm("cublas")
    F.conv2d_forward(*gpu_args, stride=1, pad=1, groups=2)
    assert "gemm_tiled_f32" not in launched
    ops.set_gemm("tiled")
    y, _ = F.conv2d_forward(*gpu_args, stride=1, pad=1, groups=2)
    assert launched.count("gemm_tiled_f32") == 2                  # one product per group
    ref.assert_close(host(y), expected, np.float32)


# ---- non-contiguous inputs ------------------------------------------------------------------------

def test_non_contiguous_inputs(cp, ops):
    x = cp.asarray(random((9, 7, 3, 2), np.float32)).transpose(3, 2, 0, 1)   # (2, 3, 9, 7) view
    assert not x.flags.c_contiguous
    x_host = host(x)
    np.testing.assert_array_equal(host(ops.im2col(x, 3, 3, 2, 1)), ref.im2col(x_host, 3, 3, 2, 1))
    np.testing.assert_array_equal(host(ops.relu_forward(x)[0]), np.maximum(x_host, 0))
    lrn_ref = ref.lrn(x_host.astype(np.float64), 3, 0.5, 0.75, 2.0)
    ref.assert_close(host(ops.lrn_forward(x, 3, 0.5, 0.75, 2.0)[0]), lrn_ref, np.float32)
    np.testing.assert_array_equal(host(ops.max_pool2d_forward(x, 3, 2, 0)[0]), ref.max_pool2d(x_host, 3, 2, 0))
    logits = cp.asarray(random((10, 4), np.float32)).T                       # (4, 10) view
    labels = cp.asarray(np.array([1, 0, 9, 3]))
    loss, _ = ops.softmax_cross_entropy(logits, labels)
    ref.assert_close(host(loss), ref.softmax_cross_entropy(host(logits), host(labels))[0], np.float32)
    a = cp.asarray(random((40, 30), np.float32)).T
    ref.assert_close(host(ops.matmul(a, a.T, use_tiled=True)), host(a).astype(np.float64) @ host(a).T, np.float32)


# ---- float64 gradients on the GPU -------------------------------------------------------------

def _to_gpu(cp, arrays):
    return [cp.asarray(a) for a in arrays]


def test_conv_gradients_match_cpu_float64(cp, F):
    x, w, b = random((2, 4, 9, 9), np.float64), random((6, 2, 3, 3), np.float64, 1), random((6,), np.float64, 2)
    y_cpu, cache_cpu = F.conv2d_forward(x, w, b, stride=2, pad=1, groups=2)
    y_gpu, cache_gpu = F.conv2d_forward(*_to_gpu(cp, (x, w, b)), stride=2, pad=1, groups=2)
    ref.assert_close(host(y_gpu), y_cpu, np.float64)
    dy = random(y_cpu.shape, np.float64, 3)
    for got, want in zip(F.conv2d_backward(cp.asarray(dy), cache_gpu), F.conv2d_backward(dy, cache_cpu)):
        ref.assert_close(host(got), want, np.float64)


def test_linear_gradients_match_cpu_float64(cp, F):
    x, w, b = random((3, 2, 5), np.float64), random((7, 10), np.float64, 1), random((7,), np.float64, 2)
    y_cpu, cache_cpu = F.linear_forward(x, w, b)
    y_gpu, cache_gpu = F.linear_forward(*_to_gpu(cp, (x, w, b)))
    ref.assert_close(host(y_gpu), y_cpu, np.float64)
    dy = random(y_cpu.shape, np.float64, 3)
    for got, want in zip(F.linear_backward(cp.asarray(dy), cache_gpu), F.linear_backward(dy, cache_cpu)):
        ref.assert_close(host(got), want, np.float64)


@pytest.mark.parametrize("layer", ["relu", "lrn", "lrn_large_alpha", "pool", "dropout"])
def test_layer_gradients_match_cpu_float64(cp, F, layer):
    rng = np.random.default_rng(11)
    x = ref.distinct_values((2, 6, 7, 7), np.float64, rng) * 3
    forward, backward = {
        "relu": (lambda a: F.relu_forward(a), F.relu_backward),
        "lrn": (lambda a: F.lrn_forward(a, size=5, alpha=1e-4, beta=0.75, k=2.0), F.lrn_backward),
        "lrn_large_alpha": (lambda a: F.lrn_forward(a, size=5, alpha=0.5, beta=0.75, k=2.0), F.lrn_backward),
        "pool": (lambda a: F.max_pool2d_forward(a, size=3, stride=2, pad=0), F.max_pool2d_backward),
        "dropout": (lambda a: F.dropout_forward(a, p=0.5, training=True, rng=5), F.dropout_backward),
    }[layer]
    y_cpu, cache_cpu = forward(x)
    y_gpu, cache_gpu = forward(cp.asarray(x))
    ref.assert_close(host(y_gpu), y_cpu, np.float64)
    dy = random(y_cpu.shape, np.float64, 12)
    ref.assert_close(host(backward(cp.asarray(dy), cache_gpu)), backward(dy, cache_cpu), np.float64)


def test_loss_gradient_matches_cpu_float64(cp, F):
    logits = random((5, 11), np.float64)
    labels = np.array([0, 3, 10, 2, 2])
    loss_cpu, d_cpu = F.softmax_cross_entropy(logits, labels)
    loss_gpu, d_gpu = F.softmax_cross_entropy(cp.asarray(logits), cp.asarray(labels))
    ref.assert_close(host(loss_gpu), loss_cpu, np.float64)
    ref.assert_close(host(d_gpu), d_cpu, np.float64)


def _directional_check(cp, forward, backward, x, seed):
    """<backward(g), v> against (L(x + eps v) - L(x - eps v)) / 2 eps, L = sum(forward(x) * g)."""
    y, cache = forward(x)
    g = cp.asarray(random(y.shape, np.float64, seed))
    v = cp.asarray(random(x.shape, np.float64, seed + 1))
    v /= cp.linalg.norm(v)
    eps = 1e-6
    numeric = float(cp.sum((forward(x + eps * v)[0] - forward(x - eps * v)[0]) * g)) / (2 * eps)
    analytic = float(cp.sum(backward(g, cache) * v))
    assert abs(analytic - numeric) <= 1e-6 * max(abs(analytic), abs(numeric), 1e-12)


def test_centred_difference_on_gpu(cp, F):
    """Gradient checks that never leave the GPU: LRN (large alpha), max-pool, conv input."""
    x = cp.asarray(ref.distinct_values((2, 6, 7, 7), np.float64, np.random.default_rng(13)) * 3)
    _directional_check(cp, lambda a: F.lrn_forward(a, size=5, alpha=0.5, beta=0.75, k=2.0), F.lrn_backward, x, 20)
    _directional_check(cp, lambda a: F.max_pool2d_forward(a, size=3, stride=2, pad=0), F.max_pool2d_backward, x, 22)
    w = cp.asarray(random((4, 3, 3, 3), np.float64, 14))
    b = cp.asarray(random((4,), np.float64, 15))
    _directional_check(cp, lambda a: F.conv2d_forward(a, w, b, stride=1, pad=1, groups=2),
                       lambda g, cache: F.conv2d_backward(g, cache)[0], x, 24)


# ---- loader ---------------------------------------------------------------------------------------

def test_each_file_compiles_once(cp):
    from minitorch_alexnet.cuda import loader
    assert loader.get_module("im2col.cu") is loader.get_module("im2col.cu")
    assert loader.get_kernel("im2col_f32") is loader.get_kernel("im2col_f32")


def test_nvrtc_error_names_file_and_line(cp):
    from minitorch_alexnet.cuda import loader
    original = (loader.kernels_dir() / "lrn.cu").read_text(encoding="utf-8")
    target = "const T s = k + alpha * sum_sq;"
    line_number = original[:original.index(target)].count("\n") + 1
    broken = loader.expanded_source("lrn.cu").replace(target, "const T s = k + alpha * not_defined;", 1)
    with pytest.raises(loader.KernelCompileError, match=rf"^lrn\.cu:{line_number}: error"):
        loader.compile_source("lrn.cu", broken)


# ---- benchmark smoke test -------------------------------------------------------------------

def test_benchmark_runs(cp):
    from minitorch_alexnet.cuda import bench
    result = bench.gpu_layer_benchmark(batch=2, repeat=1, warmup=1, include_torch=False, gemm_sizes=((64, 64, 64),))
    names = [row["layer"] for row in result["layers"]]
    assert "conv1" in names and "fc8" in names and "lrn1" in names
    assert all(row["forward_ms"] > 0 for row in result["layers"])
    assert "TF32 off" in bench.format_gpu_benchmark(result)
