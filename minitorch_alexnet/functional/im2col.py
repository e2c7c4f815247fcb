"""im2col and col2im: turning a convolution into one matrix product.

A convolution slides a (C, KH, KW) window over the zero-padded input. ``im2col`` copies every
window into one column of a matrix, so the convolution becomes ``weights @ cols``.

Layout (shared with the CUDA kernel in ``kernels/im2col.cu``)::

    cols has shape (C*KH*KW, N*OH*OW)
    row    r = (c*KH + i)*KW + j         which input channel c and kernel offset (i, j)
    column q = (n*OH + oh)*OW + ow       which image n and output pixel (oh, ow)
    cols[r, q] = x_padded[n, c, oh*stride + i, ow*stride + j]

Rows of one channel are consecutive, so the rows of channel group g (channels
g*C/groups ... (g+1)*C/groups - 1) form one contiguous block: a grouped convolution is one
matrix product per block.

``col2im`` is the adjoint (the transpose) of ``im2col``: every entry of cols is added back to
the input pixel it was copied from, so an input pixel covered by several windows receives the
sum of their gradients. Entries that were copied from the zero padding are dropped.

The CPU code loops over the KH*KW kernel offsets (i, j) only; for one offset, the pixels
``x_padded[:, :, i + stride*oh, j + stride*ow]`` for all (oh, ow) form a strided slice
``i : i + stride*OH : stride`` of the padded image, which NumPy copies in one step.

Speed: the padded copy of x is laid out (C, N, H+2*pad, W+2*pad), channel first like the rows
of cols. Then the slice for offset (i, j) and the block of cols it fills,
``cols[c, i, j, n, oh, ow]``, run through (c, n, oh, ow) in the same order, and NumPy copies
row after row instead of jumping between images. ``col2im`` sums into the same layout and
transposes back to (N, C, H, W) once at the end.

``im2row`` and ``row2im``: the same matrix, transposed, with the channels last
---------------------------------------------------------------------------------
The CPU convolution unfolds with ``im2row`` instead. It builds the transpose of cols, one row
per output pixel, and orders each row's entries (i, j, c) instead of (c, i, j)::

    rows has shape (N*OH*OW, KH*KW*C)
    row    q = (n*OH + oh)*OW + ow        which image n and output pixel (oh, ow), as above
    column r = (i*KW + j)*C + c           kernel offset (i, j), then input channel c
    rows[q, r] = x_padded[n, oh*stride + i, ow*stride + j, c]      (x_padded channels last)

Why: NumPy pays a fixed cost for every contiguous run it copies. In cols a run is one row of
one window, OW values (13 for conv5). With the input padded channels last, (N, H+2p, W+2p, C),
a row of ``rows`` is read as KH runs of KW*C consecutive values (576 for one of conv5's
groups) and written front to back. For one chunk of conv5 that copy is 3 to 5 times faster
than im2col's (measured in cache); inside the layer, where reading and writing memory adds
its share, conv5's unfolding takes half the time it did with im2col. The weights are
flattened in the same (i, j, c) order, so ``W @ rows.T`` is the same product as ``W @ cols``.

Both run a block of images on each core (``_parallel.run_blocks``): the rows of image n come
from image n alone, and image n's gradient from its own rows alone, so the blocks never touch
the same numbers and the result is the same as one call on the whole batch.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..backend import is_cuda
from ..checks import output_size
from ._dispatch import cuda_ops
from ._parallel import one_block_per_worker, run_blocks


def pad_channels_first(x, pad):
    """x (N, C, H, W) -> zero-padded copy of shape (C, N, H + 2*pad, W + 2*pad)."""
    n, c, h, w = x.shape
    x_padded = np.zeros((c, n, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
    x_padded[:, :, pad:pad + h, pad:pad + w] = x.transpose(1, 0, 2, 3)
    return x_padded


def im2col(x, kh, kw, stride, pad, out=None):
    """x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW), layout in the module docstring. On the CPU
    ``out``, a C-contiguous array with as many entries, receives cols."""
    if is_cuda(x):
        return cuda_ops().im2col(x, kh, kw, stride, pad)
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    x_padded = pad_channels_first(x, pad)                 # (C, N, H + 2*pad, W + 2*pad)
    shape = (c, kh, kw, n, out_h, out_w)
    cols = np.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    for i in range(kh):
        for j in range(kw):
            # Input rows read by output rows oh = 0..OH-1 at kernel row i: i, i+stride, ...
            cols[:, i, j] = x_padded[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride]
    return cols.reshape(c * kh * kw, n * out_h * out_w)


def col2im(cols, x_shape, kh, kw, stride, pad):
    """cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W): the adjoint of ``im2col``."""
    if is_cuda(cols):
        return cuda_ops().col2im(cols, x_shape, kh, kw, stride, pad)
    n, c, h, w = x_shape
    out_h, out_w = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    dx_padded = np.zeros((c, n, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)   # channel first
    cols = cols.reshape(c, kh, kw, n, out_h, out_w)
    for i in range(kh):
        for j in range(kw):
            # The same strided slice im2col read from; += sums overlapping windows.
            dx_padded[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride] += cols[:, i, j]
    # (C, N, H, W) without the padding -> (N, C, H, W)
    return np.ascontiguousarray(dx_padded[:, :, pad:pad + h, pad:pad + w].transpose(1, 0, 2, 3))


def pad_channels_last(x, pad):
    """x (N, C, H, W) -> zero-padded copy of shape (N, H + 2*pad, W + 2*pad, C)."""
    n, c, h, w = x.shape
    x_padded = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=x.dtype)
    x_padded[:, pad:pad + h, pad:pad + w, :] = x.transpose(0, 2, 3, 1)
    return x_padded


def im2row(x, kh, kw, stride, pad, out=None):
    """x (N, C, H, W) -> rows (N*OH*OW, KH*KW*C), layout in the module docstring (CPU only).
    ``out``, a C-contiguous array with as many entries, receives rows."""
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    x_padded = pad_channels_last(x, pad)                  # (N, H + 2*pad, W + 2*pad, C)
    # A view, no copy: windows[n, top, left, c, i, j] = x_padded[n, top + i, left + j, c] for
    # every window position (top, left); keeping every stride-th position leaves the windows
    # of the output pixels, top = oh*stride, left = ow*stride.
    windows = sliding_window_view(x_padded, (kh, kw), axis=(1, 2))
    windows = windows[:, :out_h * stride:stride, :out_w * stride:stride]    # (N, OH, OW, C, KH, KW)
    # One copy into (n, oh, ow, i, j, c) order: row q, column (i*KW + j)*C + c.
    shape = (n, out_h, out_w, kh, kw, c)
    rows = np.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)

    def copy_images(first, last):      # images are independent: a block of them per core
        rows[first:last] = windows[first:last].transpose(0, 1, 2, 4, 5, 3)

    run_blocks(copy_images, one_block_per_worker(n, rows.nbytes))
    return rows.reshape(n * out_h * out_w, kh * kw * c)


def row2im(rows, x_shape, kh, kw, stride, pad):
    """rows (N*OH*OW, KH*KW*C) -> dx (N, C, H, W): the adjoint of ``im2row`` (CPU only).

    Entry (q, (i, j, c)) of rows goes back to x_padded[n, oh*stride + i, ow*stride + j, c].
    The row offset i and the column offset j add up independently, so the sum is done in two
    steps, each a loop of strided slices:

    1. over i: ``folded_rows[n, oh*stride + i, ow, (j, c)] += rows[(n, oh, ow), (i, j, c)]``. The
       (j, c) entries of a window row are KW*C consecutive values in both arrays, so NumPy adds
       runs of KW*C values.
    2. over j: ``dx_padded[n, y, ow*stride + j, c] += folded_rows[n, y, ow, (j, c)]``, runs of C.

    NumPy pays a fixed cost per run it adds. Adding each (i, j) offset on its own is KH*KW
    loops of OH*OW runs of C values; here step 1 is KH loops of OH*OW runs of KW*C, step 2 KW
    loops of (H + 2*pad)*OW runs of C. For a chunk of conv2 (5x5 kernel, 48 channels per group)
    that takes 0.75 ms instead of 1.25; for conv3..conv5 (3x3, 192 or 256 channels) about as
    long as before.
    """
    n, c, h, w = x_shape
    out_h, out_w = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    height, width = h + 2 * pad, w + 2 * pad
    window_rows = rows.reshape(n, out_h, out_w, kh, kw * c)      # [n, oh, ow, i, (j, c)]
    dx = np.empty((n, c, h, w), dtype=rows.dtype)

    def fold_images(first, last):      # each image's gradient comes from its own rows only
        m = last - first
        folded_rows = np.zeros((m, height, out_w, kw * c), dtype=rows.dtype)  # [n, y, ow, (j, c)]
        for i in range(kh):
            # Window row i of output row oh lies on padded row oh*stride + i.
            folded_rows[:, i:i + stride * out_h:stride] += window_rows[first:last, :, :, i]
        folded_rows = folded_rows.reshape(m, height, out_w, kw, c)             # [n, y, ow, j, c]
        dx_padded = np.zeros((m, height, width, c), dtype=rows.dtype)              # channels last
        for j in range(kw):
            # Column j of output column ow's window lies on padded column ow*stride + j; +=
            # sums overlapping windows.
            dx_padded[:, :, j:j + stride * out_w:stride] += folded_rows[:, :, :, j]
        # (m, H, W, C) without the padding -> (m, C, H, W)
        dx[first:last] = dx_padded[:, pad:pad + h, pad:pad + w].transpose(0, 3, 1, 2)

    run_blocks(fold_images, one_block_per_worker(n, rows.nbytes))
    return dx
