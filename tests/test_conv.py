"""Lesson 1: convolution by im2col (``functional/conv.py``, ``functional/im2col.py``).

What is checked, and why:

1. ``im2col`` puts x_pad[n, c, oh*stride + i, ow*stride + j] at row (c*KH + i)*KW + j and
   column (n*OH + oh)*OW + ow: compared entry for entry with a six-loop version.
2. ``col2im`` is the adjoint (transpose) of ``im2col``: for every x and cols,
   <im2col(x), cols> = <x, col2im(cols)>. This is exactly the property backward needs.
   The same two checks for the CPU's channels-last ``im2row`` and ``row2im``.
3. The forward pass equals the naive loop convolution of ``tests/reference.py`` for random
   batch, channels, sizes, kernels, strides, pads and groups (hypothesis draws them), with
   each of the two unfoldings.
4. The backward pass (dx, dw, db) agrees with centred differences (float64, relative error
   below 1e-6), on random shapes and on AlexNet's own layer configurations, with each
   unfolding.
5. dtypes are kept, arguments are never written into, and bad arguments raise a ValueError
   naming the argument.

Run this lesson alone with ``pytest -m conv``.
"""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alexnet import functional as F
from minitorch_alexnet.functional import conv as conv_module
from minitorch_alexnet.functional.im2col import im2row, row2im
from minitorch_alexnet.gradcheck import check_layer

import reference as ref
from blocks import one_item_per_block

pytestmark = pytest.mark.conv

DTYPES = [np.float32, np.float64]
LAYOUTS = ["cols", "rows"]      # the CPU's two unfoldings: im2col and im2row


def forced_layout(layout):
    """Make the CPU convolution unfold with ``layout`` whatever the shapes (it picks by shape)."""
    return mock.patch.object(conv_module, "unfold_layout", lambda *args: layout)


@st.composite
def conv_cases(draw):
    """A random convolution: batch 1-3, channels and filters 1-6 (multiples of groups),
    height and width 1-9, kernel 1-5 (fitting the padded input), stride 1-3, pad 0-2."""
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 6 // groups))
    filters = groups * draw(st.integers(1, 6 // groups))
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    kh = draw(st.integers(1, min(5, h + 2 * pad)))   # the kernel must fit the padded input
    kw = draw(st.integers(1, min(5, w + 2 * pad)))
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(n=n, c=channels, f=filters, h=h, w=w, kh=kh, kw=kw,
                stride=stride, pad=pad, groups=groups, seed=seed)


def make_inputs(case, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(dtype)
    w = rng.standard_normal((case["f"], case["c"] // case["groups"], case["kh"], case["kw"])).astype(dtype)
    b = rng.standard_normal(case["f"]).astype(dtype)
    return x, w, b


def options(case):
    return dict(stride=case["stride"], pad=case["pad"], groups=case["groups"])


# AlexNet's convolutions at reduced channel counts and sizes: (name, N, C, H, F, K, stride, pad, groups)
ALEXNET_CONVS = [
    ("conv1 11/4/0", 1, 3, 19, 4, 11, 4, 0, 1),
    ("conv2 5/1/2 groups=2", 1, 4, 7, 4, 5, 1, 2, 2),
    ("conv3 3/1/1", 2, 4, 5, 6, 3, 1, 1, 1),
    ("conv4/5 3/1/1 groups=2", 2, 4, 5, 6, 3, 1, 1, 2),
]


def alexnet_case(n, c, h, f, k, stride, pad, groups):
    return dict(n=n, c=c, f=f, h=h, w=h, kh=k, kw=k, stride=stride, pad=pad, groups=groups, seed=0)


# --- im2col and col2im --------------------------------------------------------------------

@given(conv_cases())
def test_im2col_matches_naive_loops(case):
    x, _, _ = make_inputs(case)
    args = (case["kh"], case["kw"], case["stride"], case["pad"])
    np.testing.assert_array_equal(F.im2col(x, *args), ref.im2col(x, *args))


@given(conv_cases())
def test_col2im_is_the_adjoint_of_im2col(case):
    # <im2col(x), c> sums x_pad[...] * c[...] over every copy; <x, col2im(c)> sums the same
    # products grouped by input pixel. They are equal for every x and c exactly when col2im
    # is the transpose of im2col.
    x, _, _ = make_inputs(case)
    args = (case["kh"], case["kw"], case["stride"], case["pad"])
    cols = F.im2col(x, *args)
    c = np.random.default_rng(case["seed"] + 1).standard_normal(cols.shape)
    back = F.col2im(c, x.shape, *args)
    assert back.shape == x.shape
    lhs, rhs = np.sum(cols * c), np.sum(x * back)
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, np.sum(np.abs(cols * c)))


@given(conv_cases())
def test_im2row_matches_naive_loops(case):
    x, _, _ = make_inputs(case)
    args = (case["kh"], case["kw"], case["stride"], case["pad"])
    np.testing.assert_array_equal(im2row(x, *args), ref.im2row(x, *args))


def rows_and_their_fold(case):
    """x, the unfolding arguments, im2row(x), a random r of its shape and row2im(r)."""
    x, _, _ = make_inputs(case)
    args = (case["kh"], case["kw"], case["stride"], case["pad"])
    rows = im2row(x, *args)
    r = np.random.default_rng(case["seed"] + 1).standard_normal(rows.shape)
    return x, args, rows, r, row2im(r, x.shape, *args)


@given(conv_cases())
def test_row2im_is_the_adjoint_of_im2row(case):
    x, args, rows, r, back = rows_and_their_fold(case)
    assert back.shape == x.shape
    lhs, rhs = np.sum(rows * r), np.sum(x * back)
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, np.sum(np.abs(rows * r)))


@given(conv_cases())
def test_im2row_and_row2im_split_by_images_equal_one_block(case):
    # im2row and row2im hand a block of images to each core; images never mix, so the
    # split results must equal the one-block results bit for bit
    x, args, rows, r, back = rows_and_their_fold(case)
    with one_item_per_block():
        np.testing.assert_array_equal(im2row(x, *args), rows)
        np.testing.assert_array_equal(row2im(r, x.shape, *args), back)


def test_unfold_layout_picks_the_longer_copies():
    # im2col copies runs of OW values, im2row runs of C/groups: conv1 (3 channels, 55 columns)
    # unfolds by im2col, conv2 (48 channels per group, 27 columns) and conv5 (192, 13) by im2row.
    x = np.zeros((1, 1, 1, 1), np.float32)
    assert conv_module.unfold_layout(x, 3, 55) == "cols"
    assert conv_module.unfold_layout(x, 48, 27) == "rows"
    assert conv_module.unfold_layout(x, 192, 13) == "rows"
    # The small preset (32x32 input): conv1 (3 channels, 32 columns) by im2col; conv2 (32
    # channels per group, 15 columns) and conv3..conv5 (96 to 128, 7 columns) by im2row,
    # which measured 2x faster for conv2 (both layouts timed on these shapes).
    assert conv_module.unfold_layout(x, 3, 32) == "cols"
    assert [conv_module.unfold_layout(x, c, w) for c, w in ((32, 15), (128, 7), (96, 7))] == ["rows"] * 3


def test_plan_keeps_the_cols_or_unfolds_into_one_workspace(monkeypatch):
    monkeypatch.setenv("MINITORCH_THREADS", "1")               # the one-thread sizes
    x, w = np.zeros((5, 4, 9, 9)), np.zeros((6, 2, 3, 3))      # K = 2*3*3 = 18 rows per group
    plan = conv_module.plan_convolution(x, w, 2, 9, 9)
    assert plan.keep_cols and plan.workspace is None and plan.bias_per_chunk
    monkeypatch.setattr(conv_module, "KEEP_COLS_BYTES", 0)
    plan = conv_module.plan_convolution(x, w, 2, 9, 9)
    assert not plan.keep_cols and plan.workspace.shape == (18 * plan.chunk * 9 * 9,)


def test_a_process_with_several_threads_unfolds_larger_chunks_and_keeps_them(monkeypatch):
    # The default run's conv2 at batch 64 (width 0.5: 16 channels per group, 5x5, 15x15
    # outputs): its cols, 2 groups x 400 rows x 64*225 columns of float32 = 46 MB, are kept with
    # two threads and unfolded again with one; a chunk holds 2 MB or 8 MB of one group's cols.
    x, w = np.zeros((64, 32, 15, 15), np.float32), np.zeros((64, 16, 5, 5), np.float32)
    per_image = 400 * 225 * 4
    monkeypatch.setenv("MINITORCH_THREADS", "1")
    one = conv_module.plan_convolution(x, w, 2, 15, 15, pad=2)
    assert not one.keep_cols and one.chunk == conv_module.CHUNK_BYTES // per_image == 5
    monkeypatch.setenv("MINITORCH_THREADS", "2")
    two = conv_module.plan_convolution(x, w, 2, 15, 15, pad=2)
    assert two.keep_cols and two.workspace is None
    assert two.chunk == conv_module.THREADED_CHUNK_BYTES // per_image == 23


def test_col2im_sums_overlapping_windows():
    # A 3x3 image, 2x2 kernel, stride 1: the centre pixel lies in all four
    # windows, the corners in one each; col2im of all-ones cols counts the windows per pixel.
    counts = F.col2im(np.ones((4, 4)), (1, 1, 3, 3), 2, 2, 1, 0)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


# --- forward against the naive loops --------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=conv_cases())
def test_forward_matches_reference(case, dtype, layout):
    x, w, b = make_inputs(case, dtype)
    with forced_layout(layout):
        y, _ = F.conv2d_forward(x, w, b, **options(case))
    assert y.dtype == dtype
    # the reference runs in float64 on the same (possibly float32-rounded) numbers
    expected = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **options(case))
    ref.assert_close(y, expected)


@pytest.mark.parametrize("name, n, c, h, f, k, stride, pad, groups", ALEXNET_CONVS)
def test_alexnet_configurations_match_reference(name, n, c, h, f, k, stride, pad, groups):
    case = alexnet_case(n, c, h, f, k, stride, pad, groups)
    x, w, b = make_inputs(case)
    y, _ = F.conv2d_forward(x, w, b, **options(case))
    ref.assert_close(y, ref.conv2d(x, w, b, **options(case)))


def test_groups_keep_the_columns_apart():
    # AlexNet's two columns: with groups=2 the first half of the filters never sees the second
    # half of the channels, so changing those channels leaves the first outputs untouched.
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((6, 2, 3, 3)), np.zeros(6)
    y, _ = F.conv2d_forward(x, w, b, pad=1, groups=2)
    x2 = x.copy()
    x2[:, 2:] += 1.0
    y2, _ = F.conv2d_forward(x2, w, b, pad=1, groups=2)
    np.testing.assert_array_equal(y[:, :3], y2[:, :3])
    assert not np.allclose(y[:, 3:], y2[:, 3:])


# --- gradients ------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@given(case=conv_cases())
def test_gradients(case, layout):
    x, w, b = make_inputs(case)
    with forced_layout(layout):
        results = check_layer(F.conv2d_forward, F.conv2d_backward, {"x": x, "w": w, "b": b},
                              seed=case["seed"] % 1000, **options(case))
    ref.assert_gradients_pass(results)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name, n, c, h, f, k, stride, pad, groups", ALEXNET_CONVS)
def test_alexnet_configuration_gradients(name, n, c, h, f, k, stride, pad, groups, layout):
    case = alexnet_case(n, c, h, f, k, stride, pad, groups)
    x, w, b = make_inputs(case)
    with forced_layout(layout):
        results = check_layer(F.conv2d_forward, F.conv2d_backward, {"x": x, "w": w, "b": b},
                              **options(case))
    ref.assert_gradients_pass(results)


def stride_one(case):
    """``case`` with stride 1, a square kernel and pad <= KH-1: where dx may be computed as a
    convolution of dy."""
    kernel = min(case["kh"], case["kw"])
    return dict(case, stride=1, kh=kernel, kw=kernel, pad=min(case["pad"], kernel - 1))


@pytest.mark.parametrize("method", ["fold", "convolution"])
@given(case=conv_cases().map(stride_one))
def test_both_ways_to_dx_match_the_naive_loop(case, method):
    # backward's dx by folding dcols back (col2im / row2im) or, for stride 1, by convolving dy
    # with the rotated kernel: each equals the loop that sends every product's gradient home
    x, w, b = make_inputs(case)
    with mock.patch.object(conv_module, "dx_method", lambda *args: method):
        y, cache = F.conv2d_forward(x, w, b, **options(case))
        dy = np.random.default_rng(case["seed"] + 2).standard_normal(y.shape)
        dx, _, _ = F.conv2d_backward(dy, cache)
    ref.assert_close(dx, ref.conv2d_input_gradient(dy, w, x.shape, **options(case)))


def test_dx_method_convolves_where_stride_is_one_and_dy_has_few_channels():
    x = np.zeros((2, 8, 9, 9))
    # conv4, conv5: 3x3 pad 1, stride 1, Fg <= Cg
    assert conv_module.dx_method(x, np.zeros((8, 4, 3, 3)), 2, 1, 1) == "convolution"
    assert conv_module.dx_method(x, np.zeros((6, 8, 3, 3)), 1, 1, 1) == "convolution"
    assert conv_module.dx_method(x, np.zeros((8, 8, 5, 5)), 1, 1, 2) == "convolution"
    assert conv_module.dx_method(x, np.zeros((16, 4, 5, 5)), 2, 1, 2) == "fold"      # Fg > Cg
    assert conv_module.dx_method(x, np.zeros((8, 8, 11, 11)), 1, 4, 0) == "fold"     # stride 4
    assert conv_module.dx_method(x, np.zeros((8, 8, 3, 3)), 1, 1, 3) == "fold"       # pad > KH-1
    assert conv_module.dx_method(x, np.zeros((8, 8, 3, 5)), 1, 1, 1) == "fold"       # not square


# --- dtypes and no writes into arguments ---------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_keeps_dtype_and_never_writes_into_arguments(dtype):
    case = alexnet_case(2, 4, 6, 4, 3, 2, 1, 2)
    x, w, b = make_inputs(case, dtype)
    dy = np.random.default_rng(1).standard_normal((2, 4, 3, 3)).astype(dtype)
    saved = [a.copy() for a in (x, w, b, dy)]
    y, cache = F.conv2d_forward(x, w, b, stride=2, pad=1, groups=2)
    dx, dw, db = F.conv2d_backward(dy, cache)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    for before, after in zip(saved, (x, w, b, dy)):
        np.testing.assert_array_equal(before, after)
    cols = F.im2col(x, 3, 3, 2, 1)
    assert cols.dtype == F.col2im(cols, x.shape, 3, 3, 2, 1).dtype == dtype


def test_batch_of_one_does_not_alias_dy():
    # With N = 1 the transpose inside backward is already contiguous and may be a view of dy:
    # the gradients must still be new arrays.
    x, w, b = make_inputs(alexnet_case(1, 2, 4, 3, 3, 1, 0, 1))
    y, cache = F.conv2d_forward(x, w, b)
    dy = np.ones_like(y)
    dx, dw, db = F.conv2d_backward(dy, cache)
    db[...] = 7.0
    dx[...] = 7.0
    np.testing.assert_array_equal(dy, 1.0)


# --- bad arguments --------------------------------------------------------------------------

def _arrays(x_shape=(1, 4, 5, 5), w_shape=(2, 4, 3, 3), b_shape=(2,), dtype=np.float64):
    return np.zeros(x_shape, dtype), np.zeros(w_shape, dtype), np.zeros(b_shape, dtype)


def test_wrong_ndim_names_x():
    x, w, b = _arrays(x_shape=(4, 5, 5))
    with pytest.raises(ValueError, match=r"x must be 4-d, got shape \(4, 5, 5\)"):
        F.conv2d_forward(x, w, b)


def test_weight_not_matching_channels_names_w_and_both_shapes():
    x, w, b = _arrays(w_shape=(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"w must have shape \(2, 4, 3, 3\), got \(2, 3, 3, 3\)"):
        F.conv2d_forward(x, w, b)


def test_weight_not_matching_groups():
    x, w, b = _arrays(w_shape=(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"w must have shape \(2, 2, 3, 3\), got \(2, 4, 3, 3\)"):
        F.conv2d_forward(x, w, b, groups=2)


def test_bias_length_names_b():
    x, w, b = _arrays(b_shape=(3,))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\), got \(3,\)"):
        F.conv2d_forward(x, w, b)


@pytest.mark.parametrize("groups", [2, 3])
def test_groups_not_dividing_channels(groups):
    x, w, b = _arrays(x_shape=(1, 5, 5, 5), w_shape=(6, 1, 3, 3), b_shape=(6,))
    with pytest.raises(ValueError, match=rf"groups={groups} must divide the input channels \(5\)"):
        F.conv2d_forward(x, w, b, groups=groups)


@pytest.mark.parametrize("groups", [0, -1, 1.5])
def test_groups_must_be_a_positive_integer(groups):
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        F.conv2d_forward(*_arrays(), groups=groups)


@pytest.mark.parametrize("dtype", [np.int64, np.float16])
def test_non_float_input_names_x(dtype):
    x, w, b = _arrays()
    with pytest.raises(ValueError, match=rf"x must have dtype float32 or float64, got {np.dtype(dtype)}"):
        F.conv2d_forward(x.astype(dtype), w, b)


def test_mixed_float32_and_float64_names_w():
    x, w, b = _arrays(dtype=np.float32)
    with pytest.raises(ValueError, match="w must have dtype float32"):
        F.conv2d_forward(x, w.astype(np.float64), b)
    with pytest.raises(ValueError, match="b must have dtype float32"):
        F.conv2d_forward(x, w, b.astype(np.float64))


def test_kernel_that_does_not_fit():
    x, w, b = _arrays(x_shape=(1, 4, 3, 3), w_shape=(2, 4, 5, 5))
    with pytest.raises(ValueError, match="window 5 does not fit in input of size 3 with pad 0"):
        F.conv2d_forward(x, w, b)
    F.conv2d_forward(x, w, b, pad=1)   # with pad 1 the padded input is 5 x 5: it fits


def test_stride_and_pad_checked():
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        F.conv2d_forward(*_arrays(), stride=0)
    with pytest.raises(ValueError, match="pad must be >= 0, got -1"):
        F.conv2d_forward(*_arrays(), pad=-1)


def test_dy_of_wrong_shape_or_dtype_names_dy():
    y, cache = F.conv2d_forward(*_arrays())                 # y is (1, 2, 3, 3)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 2, 3, 3\), got \(1, 2, 4, 4\)"):
        F.conv2d_backward(np.zeros((1, 2, 4, 4)), cache)
    with pytest.raises(ValueError, match="dy must have dtype float64"):
        F.conv2d_backward(y.astype(np.float32), cache)


def test_non_contiguous_inputs_give_the_same_result():
    # A strided view (every other column) and a Fortran-ordered copy hold the same numbers.
    rng = np.random.default_rng(0)
    wide = rng.standard_normal((2, 4, 6, 12))
    x, w, b = wide[:, :, :, ::2], rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    assert not x.flags.c_contiguous
    y, cache = F.conv2d_forward(x, np.asfortranarray(w), b, pad=1, groups=2)
    expected, expected_cache = F.conv2d_forward(np.ascontiguousarray(x), w, b, pad=1, groups=2)
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-13)
    dy = rng.standard_normal((2, 4, 12, 12))[:, :, ::2, ::2]
    for got, want in zip(F.conv2d_backward(dy, cache), F.conv2d_backward(np.ascontiguousarray(dy), expected_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_backward_unfolding_again_equals_keeping_cols(monkeypatch, layout):
    """Backward either reuses the forward pass's cols or unfolds x again (when the cols would
    be too big to keep): both give the same gradients, also over several image chunks."""
    monkeypatch.setattr(conv_module, "unfold_layout", lambda *args: layout)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 9, 9))
    w = rng.standard_normal((6, 2, 3, 3))
    b = rng.standard_normal(6)
    dy = rng.standard_normal((5, 6, 9, 9))
    monkeypatch.setenv("MINITORCH_THREADS", "1")                      # the one-thread sizes
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 2 * 18 * 81 * 8)   # two images per chunk
    kept = F.conv2d_backward(dy, F.conv2d_forward(x, w, b, 1, 1, 2)[1])
    monkeypatch.setattr(conv_module, "KEEP_COLS_BYTES", 0)
    y, cache = F.conv2d_forward(x, w, b, 1, 1, 2)
    assert cache.cols is None                      # nothing kept: backward unfolds again
    again = F.conv2d_backward(dy, cache)
    for a, r in zip(kept, again):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
@given(case=conv_cases())
def test_without_input_gradient_the_weight_gradients_are_unchanged(case, layout):
    # input_grad=False (the first layer: nobody needs the image's gradient) skips dx only
    x, w, b = make_inputs(case, np.float64)
    with forced_layout(layout):
        y, cache = F.conv2d_forward(x, w, b, **options(case))
        dy = np.random.default_rng(3).standard_normal(y.shape)
        dx, dw, db = F.conv2d_backward(dy, cache)
        nothing, dw_only, db_only = F.conv2d_backward(dy, cache, input_grad=False)
    assert nothing is None and dx.shape == x.shape
    np.testing.assert_array_equal(dw_only, dw)
    np.testing.assert_array_equal(db_only, db)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_add_and_gradient_match_loops_in_blocks(dtype):
    # add_bias and bias_gradient run a block of images per thread; one image per block here
    from blocks import one_item_per_block
    rng = np.random.default_rng(5)
    y = rng.standard_normal((5, 3, 4, 2)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    expected_y, expected_db = y.copy(), np.zeros(3)
    for n, f, i, j in np.ndindex(*y.shape):
        expected_y[n, f, i, j] += b[f]
        expected_db[f] += float(y[n, f, i, j])
    with one_item_per_block():
        db = F.bias_gradient(y)
        returned = F.add_bias(y, b)
    assert returned is y and db.dtype == dtype and db.shape == (3,)
    np.testing.assert_allclose(y, expected_y, rtol=1e-6 if dtype == np.float32 else 1e-15)
    np.testing.assert_allclose(db, expected_db, rtol=1e-5 if dtype == np.float32 else 1e-13)
