"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col.

Forward, for group g with Fg = F/groups filters and Cg = C/groups input channels::

    y[n, f, oh, ow] = b[f] + sum_{c in group(f), i, j} w[f, c', i, j] * x_pad[n, c, oh*s + i, ow*s + j]

where c' = c - g*Cg is the channel's index inside its group. A grouped convolution is
``groups`` independent convolutions: group g convolves the channels g*Cg .. (g+1)*Cg-1 of x
with the filters g*Fg .. (g+1)*Fg-1 of w. For one group, with ``cols = im2col(x_g)`` of shape
(Cg*KH*KW, N*OH*OW) and the group's weights flattened to a (Fg, Cg*KH*KW) matrix ``W_g``::

    Y_g = W_g @ cols                       (Fg, N*OH*OW), then + b, then reshaped to NCHW

Backward: a matrix product ``Y = W @ X`` has ``dW = dY @ X.T`` and ``dX = W.T @ dY``, so::

    dW_g  = dY_g @ cols.T                  (Fg, Cg*KH*KW)  -> reshaped to (Fg, Cg, KH, KW)
    dcols = W_g.T @ dY_g                   (Cg*KH*KW, N*OH*OW)
    dx_g  = col2im(dcols)                  each window's gradient summed back onto the input
    db[f] = sum_{n, oh, ow} dy[n, f, oh, ow]

groups=2 is AlexNet's two columns on one device: filters 0..F/2-1 see only channels
0..C/2-1, the others only the second half.

Speed on the CPU. ``cols`` repeats every input pixel KH*KW times: for conv2 at batch 32 it is
224 MB. Writing it to memory and reading it back costs more than the arithmetic, so the CPU
works on a few images at a time (``images_per_chunk``): a chunk's cols (about CHUNK_BYTES)
stays in the processor's cache between the unfolding and the matrix product that reads it.
Since the columns of cols are (image, pixel) pairs, the images of a chunk are a block of
columns and each product splits by chunk exactly: dW_g is the sum of the chunks' dY_g @ cols.T.
A process that runs one thread (each process of ``mpiexec -n 2`` on two cores) unfolds each
chunk into one workspace, reused chunk after chunk, in forward and again in backward, instead
of keeping every chunk's cols for backward: kept cols (35 MB for the small preset's conv2 at
batch 64) go out to memory and come back, while unfolding again reads the layer's input, KH*KW
times smaller, into a workspace that is already in cache. Only a layer whose cols fit in one
chunk (KEEP_COLS_BYTES) keeps them. Measured on the 2-core machine (small preset, batch 64 per
process, `mpiexec -n 2`, rounds interleaved): a training step took 104 ms with 2 MB chunks
unfolded again against 116 ms with 8 MB chunks kept; two processes share one 32 MB cache.
A process whose layers run on several threads (one process alone, the default) unfolds 8 MB
chunks and keeps their cols (the THREADED_ sizes): each chunk costs every thread a hand-over,
in the unfolding and in BLAS, so fewer chunks, unfolded once, pay off. The built-in data's
default run (one process, two threads; rounds interleaved, epoch 2 of 2) trained at 270-347
images/s, median 298, with 8 MB chunks kept against 230-322, median 266, with 2 MB chunks
unfolded again (faster in 7 rounds of 8). The GPU computes the whole batch as one chunk.

Which unfolding (``unfold_layout``). The GPU always runs ``im2col`` (kernels/im2col.cu). The
CPU picks, per layer, the layout that NumPy copies in longer contiguous runs (see im2col.py):
``im2col`` copies runs of OW values (one row of a window), ``im2row`` runs of C/groups
channels. conv1 (3 channels, 55 output columns) unfolds by im2col; conv2..conv5 (48 to 256
channels per group, 27 or 13 columns) by im2row. im2row's matrix is the transpose of cols with
K ordered (i, j, c), so the weights are flattened in that order too and ``cols = rows.T`` (a
view) goes into the same products; in backward, dcols is computed as its transpose
dY_g.T @ W_g, which is the (pixel, K) layout that ``row2im`` reads.

dx as a convolution (CPU, stride 1). With stride 1, output pixel (oh, ow) reads x_pad at
(oh + i, ow + j), so input pixel (p, q) of x_pad collects w[f, c, i, j] * dy[n, f, p - i, q - j]
over every offset whose output exists. Pad dy with KH - 1 zero rows and KW - 1 zero columns on
each side (the outputs that do not exist) and turn the kernel by 180 degrees, i' = KH-1-i and
j' = KW-1-j: then dy[p - i, q - j] is dy_pad'[p + i', q + j'] and::

    dx_pad[n, c, p, q] = sum_{f in group(c), i', j'} w[f, c', KH-1-i', KW-1-j'] * dy_pad'[n, f, p + i', q + j']

a stride-1 convolution of dy with the rotated kernel, channels and filters swapped. dx is
dx_pad without its ``pad`` border, so dy is padded by KH-1-pad only (needs pad <= KH-1; the
output then has OH + KH - 1 - 2*pad = H rows). It is computed like the forward pass, im2row of
dy's chunk times one (KH*KW*Fg, Cg) matrix, instead of ``drows = dY_g.T @ W_g`` and row2im:
the same products summed in another order. Unfolding dy copies KH*KW*Fg values per pixel where
row2im adds KH*KW*Cg, so ``dx_method`` picks it where a group has no more filters than
channels (Fg <= Cg: conv4 and conv5 of every preset). Measured on one core, conv2d_backward
with dx took 0.78 to 0.97 of the time by folding on conv4 and conv5 (the Fashion-MNIST
recipe's, the small and the paper preset's shapes); on conv2 and conv3 (Fg = 1.5 or 2 Cg) it
was as fast or slower.

The memory plan in one place. Every choice above that depends on the device or the sizes
(the layout, images per chunk, keeping cols or not, the workspace, where the bias is added, how
dx is computed) is made by ``plan_convolution``, which returns a ``ConvPlan``.
``conv2d_forward`` and ``conv2d_backward`` are the formulas above with one plan lookup each.
For one chunk size, keeping the cols or unfolding again and the workspace give the same
numbers bit for bit; another chunk size sums dW_g's chunks in other groups, and the layout and
the dx method add the same products in another order (float32 results then differ by rounding).
"""
from typing import NamedTuple, Optional

from ..backend import get_array_module, is_cuda
from ..caches import ConvCache
from ..checks import check_float_array, check_same_device, check_shape, output_size
from ._dispatch import cuda_ops, matmul
from .im2col import col2im, im2col, im2row, row2im
from ._parallel import one_block_per_worker, run_blocks, worker_count

CHUNK_BYTES = 2 * 2**20        # about the size of cols for one chunk of images on the CPU
KEEP_COLS_BYTES = CHUNK_BYTES  # keep a layer's cols for backward up to this size (else unfold again)
THREADED_CHUNK_BYTES = 8 * 2**20          # the same two, for a process that runs several
THREADED_KEEP_COLS_BYTES = 128 * 2**20    # threads (module docstring)


def memory_budget():
    """(bytes of one chunk's cols, bytes of a layer's cols kept for backward) on the CPU: the
    THREADED_ sizes when the layers run on several threads (module docstring)."""
    if worker_count() > 1:
        return THREADED_CHUNK_BYTES, THREADED_KEEP_COLS_BYTES
    return CHUNK_BYTES, KEEP_COLS_BYTES


# ---- the memory plan: how the products are laid out and split, never what they compute ----------

class ConvPlan(NamedTuple):
    """How one convolution uses memory (the module docstring says why); the math is the same
    for every plan.

    layout:         "cols" (im2col, K ordered (c, i, j)) or "rows" (im2row, K ordered (i, j, c))
    chunk:          images unfolded at once (all of them on the GPU)
    keep_cols:      forward keeps every chunk's cols for backward (always on the GPU)
    workspace:      flat array that cols which are not kept are unfolded into, chunk after
                    chunk, in forward and again in backward; None when they are kept
    bias_per_chunk: add b to each chunk's product while it is in cache (CPU); else once after
                    all chunks, by the bias_add kernel (GPU)
    dx_method:      "fold" (dcols = W_g.T @ dY_g, then col2im or row2im) or "convolution"
                    (stride 1 on the CPU: dy convolved with the rotated kernel)
    """
    layout: str
    chunk: int
    keep_cols: bool
    workspace: Optional[object]
    bias_per_chunk: bool
    dx_method: str = "fold"


def plan_convolution(x, w, groups, out_h, out_w, keep_cols=None, stride=1, pad=0):
    """The ``ConvPlan`` of convolving x (N, C, H, W) with w (F, C/groups, KH, KW) into
    (N, F, OH, OW). ``keep_cols`` is None in forward (keep the cols unless all of them exceed
    the kept-cols size of ``memory_budget``) and, in backward, whether forward kept them."""
    c_per_group, kh, kw = w.shape[1:]
    k = c_per_group * kh * kw                          # rows of one group's cols
    on_gpu = is_cuda(x)
    chunk = images_per_chunk(x, k, out_h, out_w)
    if keep_cols is None:
        all_cols_bytes = groups * k * x.shape[0] * out_h * out_w * x.dtype.itemsize
        keep_cols = on_gpu or all_cols_bytes <= memory_budget()[1]
    workspace = None
    if not keep_cols:                                  # one group's cols of one chunk
        workspace = get_array_module(x).empty(k * chunk * out_h * out_w, dtype=x.dtype)
    return ConvPlan(layout=unfold_layout(x, c_per_group, out_w), chunk=chunk,
                    keep_cols=keep_cols, workspace=workspace, bias_per_chunk=not on_gpu,
                    dx_method=dx_method(x, w, groups, stride, pad))


def images_per_chunk(x, rows, out_h, out_w):
    """How many images to unfold at once: all of them on the GPU; on the CPU as many as keep
    one group's cols (``rows`` x images*OH*OW) within ``memory_budget``'s chunk, at least one."""
    if is_cuda(x):
        return x.shape[0]
    per_image = rows * out_h * out_w * x.dtype.itemsize
    return max(1, min(x.shape[0], memory_budget()[0] // per_image))


def unfold_layout(x, c_per_group, out_w):
    """``"cols"`` (im2col, K ordered (c, i, j)) or ``"rows"`` (im2row, K ordered (i, j, c)):
    cols on the GPU; on the CPU the layout with the longer copies, runs of OW values for cols
    and of C/groups values for rows."""
    if is_cuda(x) or c_per_group < out_w:
        return "cols"
    return "rows"


def dx_method(x, w, groups, stride, pad):
    """How backward computes dx (module docstring): ``"convolution"`` on the CPU for stride 1,
    square kernels, pad <= KH-1 and no more filters than channels per group; else ``"fold"``."""
    f, c_per_group, kh, kw = w.shape
    if (is_cuda(x) or stride != 1 or kh != kw or pad > kh - 1
            or f // groups > c_per_group):
        return "fold"
    return "convolution"


def weight_matrices(w, groups, layout):
    """W_g of every group as one (groups, Fg, K) array, each row a filter flattened in the K
    order of the layout's unfolded matrix."""
    f, c_per_group, kh, kw = w.shape
    if layout == "rows":
        w = w.transpose(0, 2, 3, 1)                    # (F, KH, KW, Cg): K ordered (i, j, c)
    return w.reshape(groups, f // groups, c_per_group * kh * kw)


def unfold(x, kh, kw, stride, pad, layout, workspace=None):
    """cols (K, images*OH*OW) of x: im2col's, or the transpose (a view) of im2row's rows;
    written into the start of ``workspace`` (a flat CPU array) when one is given."""
    n, c, h, width = x.shape
    out_h, out_w = output_size(h, kh, stride, pad), output_size(width, kw, stride, pad)
    out = None if workspace is None else workspace[:c * kh * kw * n * out_h * out_w]
    if layout == "rows":
        return im2row(x, kh, kw, stride, pad, out=out).T
    return im2col(x, kh, kw, stride, pad, out=out)


def weights_from_matrices(dw_t, w_shape, layout):
    """The inverse of ``weight_matrices`` for the gradient accumulated transposed: dw_t
    (groups, K, Fg) -> dw (F, C/groups, KH, KW), undoing the layout's K order."""
    f, c_per_group, kh, kw = w_shape
    dw = dw_t.transpose(0, 2, 1).reshape(f, c_per_group * kh * kw)   # row f: filter f
    if layout == "rows":
        dw = dw.reshape(f, kh, kw, c_per_group).transpose(0, 3, 1, 2)  # (i, j, c) -> (c, i, j)
    return get_array_module(dw).ascontiguousarray(dw).reshape(w_shape)


def responses(w_g, cols, chunk_shape, layout, b_g=None):
    """Y_g = W_g @ cols (+ b_g, while the product is in cache) of one chunk and group, as an
    (m, Fg, OH, OW) view: these images' maps of these filters.

    For the rows layout the product is computed as its transpose, Y_g.T = rows @ W_g.T, one
    row per pixel: the same sums of the same products. With Fg (32 to 96 filters) far fewer
    than the pixels (thousands per chunk), BLAS runs it this way round 1.1 to 1.5x faster
    (conv2..conv5's shapes on one core), and the reordering to (m, Fg, OH, OW) is a copy of
    the small output only."""
    m, out_h, out_w = chunk_shape
    f_per_group = w_g.shape[0]
    if layout == "rows":
        y_t = matmul(cols.T, w_g.T)                    # (m*OH*OW, Fg) = Y_g.T; cols.T is rows
        if b_g is not None:
            y_t += b_g                                 # b_g[f] on column f
        # (m*OH*OW, Fg) -> (m, OH, OW, Fg) -> (m, Fg, OH, OW)
        return y_t.reshape(m, out_h, out_w, f_per_group).transpose(0, 3, 1, 2)
    y_g = matmul(w_g, cols)                            # (Fg, m*OH*OW)
    if b_g is not None:
        y_g += b_g[:, None]                            # b_g[f] on row f
    # (Fg, m*OH*OW) -> (Fg, m, OH, OW) -> (m, Fg, OH, OW)
    return y_g.reshape(f_per_group, m, out_h, out_w).transpose(1, 0, 2, 3)


def fold(dy_g, w_g, chunk_shape, kh, kw, stride, pad, layout):
    """dx of one chunk of images and one group: dcols = W_g.T @ dY_g, each column's window
    summed back onto the input (col2im). For the rows layout the product is computed as its
    transpose dY_g.T @ W_g, a row per pixel, which is what row2im reads."""
    if layout == "rows":
        drows = matmul(dy_g.T, w_g)                    # (W_g.T @ dY_g).T
        return row2im(drows, chunk_shape, kh, kw, stride, pad)
    dcols = matmul(w_g.T, dy_g)                        # (K, m*OH*OW)
    return col2im(dcols, chunk_shape, kh, kw, stride, pad)


def rotated_weight_matrices(w, groups):
    """The matrices of dx's convolution (stride 1), one (KH*KW*Fg, Cg) per group:
    row (i'*KW + j')*Fg + f, im2row's order for dy's Fg channels, column c holds
    w[f, c, KH-1-i', KW-1-j'], the kernel turned by 180 degrees."""
    f, c_per_group, kh, kw = w.shape
    rotated = w[:, :, ::-1, ::-1].reshape(groups, f // groups, c_per_group, kh, kw)
    # (groups, Fg, Cg, KH, KW) -> (groups, KH, KW, Fg, Cg) -> (groups, KH*KW*Fg, Cg)
    by_rows = get_array_module(w).ascontiguousarray(rotated.transpose(0, 3, 4, 1, 2))
    return by_rows.reshape(groups, kh * kw * (f // groups), c_per_group)


def convolve_back(dy_chunk, w_rotated_g, kh, pad, workspace):
    """dx of one chunk and group for stride 1: dy_chunk (m, Fg, OH, OW), padded by KH-1-pad,
    convolved with the rotated kernel (module docstring) -> (m, Cg, H, W), a view. dy's rows
    are unfolded into the start of ``workspace``, a flat array reused chunk after chunk."""
    m, _, out_h, out_w = dy_chunk.shape
    c_per_group = w_rotated_g.shape[1]
    h, width = out_h + kh - 1 - 2 * pad, out_w + kh - 1 - 2 * pad
    rows = im2row(dy_chunk, kh, kh, 1, kh - 1 - pad,            # (m*H*W, KH*KW*Fg)
                  out=workspace[:m * h * width * w_rotated_g.shape[0]])
    dx_t = matmul(rows, w_rotated_g)                          # (m*H*W, Cg), a row per pixel
    return dx_t.reshape(m, h, width, c_per_group).transpose(0, 3, 1, 2)


def add_bias(y, b):
    """y[n, f] += b[f] for every image n and pixel, in place on y (N, F, OH, OW). The
    convolution itself adds b to each chunk's product while it is in cache; this is the same
    step as one pass of its own, a block of images on each core, which ``bench layers`` times
    as the ``convN.bias`` row."""
    b_column = b.reshape(-1, 1, 1)

    def block(first, last):
        y[first:last] += b_column

    run_blocks(block, one_block_per_worker(y.shape[0], y.nbytes))
    return y


def bias_gradient(dy):
    """db[f] = sum over images n and pixels of dy[n, f]; on the GPU by the bias_grad kernel.

    On the CPU the images are split between the cores; each block sums its pixels (a
    contiguous run per (n, f), which NumPy adds pairwise) and its images; the blocks' partial
    sums are then added in block order, so the result does not depend on which thread
    finished first."""
    if is_cuda(dy):
        return cuda_ops().bias_grad(dy)                # kernels/elementwise.cu
    n, f = dy.shape[:2]
    per_image = dy.reshape(n, f, -1)
    partial = {}                                   # first image of a block -> its (F,) sum

    def block(first, last):
        partial[first] = per_image[first:last].sum(axis=2).sum(axis=0)

    run_blocks(block, one_block_per_worker(n, dy.nbytes))
    firsts = sorted(partial)
    return sum((partial[first] for first in firsts[1:]), partial[firsts[0]])


def _check_arguments(x, w, b, stride, pad, groups):
    """The checks of conv2d_forward; returns (OH, OW)."""
    check_float_array("x", x, ndim=4)
    check_float_array("w", w, ndim=4, dtype=x.dtype)
    check_float_array("b", b, ndim=1, dtype=x.dtype)
    check_same_device(x=x, w=w, b=b)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    n, c, h, width = x.shape
    f, _, kh, kw = w.shape
    if c % groups or f % groups:
        raise ValueError(
            f"groups={groups} must divide the input channels ({c}) and the filters ({f})"
        )
    check_shape("w", w, (f, c // groups, kh, kw))
    check_shape("b", b, (f,))
    return output_size(h, kh, stride, pad), output_size(width, kw, stride, pad)


def conv2d_forward(x, w, b, stride=1, pad=0, groups=1):
    """Convolve x (N, C, H, W) with w (F, C//groups, KH, KW) and add b (F,).

    Returns ``(y, cache)`` with y of shape (N, F, OH, OW), OH = (H + 2*pad - KH)//stride + 1.
    The cache refers to x (no copy): change x in place only after the backward pass.
    """
    out_h, out_w = _check_arguments(x, w, b, stride, pad, groups)     # OH, OW
    n, f = x.shape[0], w.shape[0]
    c_per_group, kh, kw = w.shape[1:]
    f_per_group = f // groups
    plan = plan_convolution(x, w, groups, out_h, out_w, stride=stride, pad=pad)
    w_rows = weight_matrices(w, groups, plan.layout)   # W_g, one (Fg, K) matrix per group
    b_rows = b.reshape(groups, f_per_group)            # b_g, one (Fg,) vector per group
    y = get_array_module(x).empty((n, f, out_h, out_w), dtype=x.dtype)
    kept_cols = []                                     # in (chunk, group) order
    for start in range(0, n, plan.chunk):
        images = slice(start, start + plan.chunk)
        m = min(plan.chunk, n - start)                 # images in this chunk (the last may be short)
        for g in range(groups):
            channels = slice(g * c_per_group, (g + 1) * c_per_group)
            filters = slice(g * f_per_group, (g + 1) * f_per_group)
            cols = unfold(x[images, channels], kh, kw, stride, pad, plan.layout, plan.workspace)
            y[images, filters] = responses(w_rows[g], cols, (m, out_h, out_w), plan.layout,
                                           b_rows[g] if plan.bias_per_chunk else None)
            if plan.keep_cols:
                kept_cols.append(cols)
    if not plan.bias_per_chunk:
        y = cuda_ops().bias_add(y, b)                  # kernels/elementwise.cu: y[n, f] += b[f]
    cache = ConvCache(x=x, w=w, stride=stride, pad=pad, groups=groups, cols=kept_cols or None)
    return y, cache


def conv2d_backward(dy, cache, input_grad=True):
    """Gradients of conv2d: dy (N, F, OH, OW) -> ``(dx, dw, db)`` shaped like x, w, b.

    ``input_grad=False`` skips dx (returned as None): the first layer's input is the image,
    whose gradient training never uses, and dx costs a third of the layer's arithmetic
    (dcols = W_g.T @ dY_g) plus the folding back (col2im)."""
    x, w, groups, stride, pad = cache.x, cache.w, cache.groups, cache.stride, cache.pad
    n, c, h, width = x.shape
    f, c_per_group, kh, kw = w.shape
    check_float_array("dy", dy, ndim=4, dtype=w.dtype)
    out_h, out_w = output_size(h, kh, stride, pad), output_size(width, kw, stride, pad)
    check_shape("dy", dy, (n, f, out_h, out_w))
    check_same_device(dy=dy, w=w)
    xp = get_array_module(dy)
    f_per_group = f // groups
    plan = plan_convolution(x, w, groups, out_h, out_w, keep_cols=cache.cols is not None,
                            stride=stride, pad=pad)
    w_rows = weight_matrices(w, groups, plan.layout)
    by_convolution = input_grad and plan.dx_method == "convolution"
    if by_convolution:        # the rotated kernels, and room for one chunk of dy's rows
        w_rotated = rotated_weight_matrices(w, groups)
        dy_workspace = xp.empty(plan.chunk * h * width * w_rotated.shape[1], dtype=w.dtype)
    # dW_g is accumulated transposed, as cols @ dY_g.T (K, Fg): with the long sum over
    # images*pixels as the inner dimension, BLAS runs this way round much faster than dY_g @ cols.T.
    dw_t = xp.zeros((groups, c_per_group * kh * kw, f_per_group), dtype=w.dtype)
    dx = xp.empty((n, c, h, width), dtype=w.dtype) if input_grad else None
    kept = iter(cache.cols) if plan.keep_cols else None    # same (chunk, group) order
    for start in range(0, n, plan.chunk):
        images = slice(start, start + plan.chunk)
        m = min(plan.chunk, n - start)
        # (m, F, OH, OW) -> (F, m, OH, OW) -> (F, m*OH*OW): the layout of Y in the forward pass.
        dy_rows = xp.ascontiguousarray(dy[images].transpose(1, 0, 2, 3))
        dy_rows = dy_rows.reshape(f, m * out_h * out_w)
        for g in range(groups):
            channels = slice(g * c_per_group, (g + 1) * c_per_group)
            dy_g = dy_rows[g * f_per_group:(g + 1) * f_per_group]          # (Fg, m*OH*OW)
            if kept is not None:
                cols = next(kept)
            else:                                                          # unfold again
                cols = unfold(x[images, channels], kh, kw, stride, pad, plan.layout, plan.workspace)
            dw_t[g] += matmul(cols, dy_g.T)                                # dW_g.T += cols @ dY_g.T
            if by_convolution:
                filters = slice(g * f_per_group, (g + 1) * f_per_group)
                dx[images, channels] = convolve_back(dy[images, filters], w_rotated[g], kh, pad,
                                                     dy_workspace)
            elif input_grad:
                dx[images, channels] = fold(dy_g, w_rows[g], (m, c_per_group, h, width),
                                            kh, kw, stride, pad, plan.layout)
    dw = weights_from_matrices(dw_t, w.shape, plan.layout)
    return dx, dw, bias_gradient(dy)                   # db[f] = sum of dy[:, f]
