"""Max-pooling, overlapping when stride < size (AlexNet: size 3, stride 2; section 3.4).

Forward: y[n, c, oh, ow] = max_{i, j < size} x_pad[n, c, oh*stride + i, ow*stride + j], where
padding is -inf so that it is never chosen. OH = (H + 2*pad - size)//stride + 1.

Backward: the maximum is the only input of a window that affects its output, so the window's
gradient goes to it alone; an input that is the maximum of several overlapping windows
receives the sum of their gradients.

Ties: when several inputs of a window share the maximum, the FIRST in row-major window order
(smallest i, then smallest j) takes the whole gradient. The CUDA kernel uses the same rule.

The argmax is kept as one flat index per output, the position of the window's maximum in
x_pad seen as a 1-d array::

    argmax[n, c, oh, ow] = ((n*C + c)*H_pad + oh*stride + i*)*W_pad + ow*stride + j*

so that backward is a single scatter-add: ``dx_pad.flat[argmax] += dy`` (``np.add.at`` adds
every repeated index, which is exactly the sum over overlapping windows).

How the CPU computes the forward pass (the speed tricks, each equal to the formula above)
-------------------------------------------------------------------------------------------
1. **Separable maximum.** The max over a size x size window is the max over its rows of the
   max over each row's columns: first ``row_max[.., r, ow] = max_j x_pad[.., r, ow*stride + j]``
   for every input row r, then ``y[.., oh, ow] = max_i row_max[.., oh*stride + i, ow]``. That
   is 2*size comparisons per output instead of size*size. The tie rule survives: taking the
   first maximal j in each row, then the first row i that reaches the overall maximum, gives
   the smallest i and, within that row, the smallest j: the first maximum in row-major order.
2. **Phases, so that every comparison runs over one contiguous array.** The columns read at
   offset j, ``ow*stride + j`` for ow = 0, 1, ..., are every stride-th column starting at j.
   They all lie in one of ``stride`` "phases", phase q = columns q, q + stride, q + 2*stride,
   ...: offset j reads phase ``j % stride`` from its column ``j // stride`` on. So the input is
   copied once into its phases (each a contiguous array of ``wide`` columns), and offset j's
   candidates are the flat phase array shifted by ``j // stride``. A flat shift also pairs the
   last columns of one row with the start of the next; those outputs land in the ``wide -
   OW`` extra columns of each row, which are never read as results. NumPy then compares long
   contiguous runs instead of short strided rows, several times faster. The rows are handled
   the same way with row phases.
3. **A few images at a time.** The work is split into blocks of whole (n, c) planes small
   enough for the processor's cache, and the blocks run on a small thread pool (NumPy releases
   the GIL inside its loops).
"""
import numpy as np

from ..backend import is_cuda
from ..caches import PoolCache
from ..checks import check_float_array, check_upstream, output_size
from ._dispatch import cuda_ops
from ._parallel import blocks_of_planes, run_blocks

BLOCK_BYTES = 2 * 2**20         # input bytes per block (measured: 2 MiB beat 0.5 and 64 MiB)


def max_pool2d_forward(x, size=3, stride=2, pad=0):
    """x (N, C, H, W) -> ``(y, cache)``, y (N, C, OH, OW); the cache records the argmax."""
    check_float_array("x", x, ndim=4)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if pad > size // 2:
        raise ValueError(f"pad must be at most size//2 = {size // 2} (a window of padding only "
                         f"has no maximum), got pad={pad}")
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, size, stride, pad), output_size(w, size, stride, pad)  # OH, OW
    if is_cuda(x):
        return cuda_ops().max_pool2d_forward(x, size, stride, pad)
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf) if pad else x
    planes = np.ascontiguousarray(x_padded).reshape(n * c, h + 2 * pad, w + 2 * pad)
    y = np.empty((n * c, out_h, out_w), dtype=x.dtype)
    argmax = np.empty((n * c, out_h, out_w), dtype=np.intp)   # flat index into x_pad

    def pool_block(first, last):
        _pool_planes(planes[first:last], size, stride, y[first:last], argmax[first:last])
        argmax[first:last] += first * planes.shape[1] * planes.shape[2]   # the planes before

    run_blocks(pool_block, blocks_of_planes(n * c, planes[0].nbytes, BLOCK_BYTES))
    cache = PoolCache(x_shape=x.shape, argmax=argmax.reshape(n, c, out_h, out_w), size=size,
                      stride=stride, pad=pad, dtype=x.dtype)
    return y.reshape(n, c, out_h, out_w), cache


def max_pool2d_backward(dy, cache):
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each window's gradient goes to its argmax."""
    check_float_array("dy", dy, ndim=4)
    if is_cuda(dy):
        return cuda_ops().max_pool2d_backward(dy, cache)
    check_upstream(dy, cache.argmax.shape, cache.dtype, like=cache.argmax)
    n, c, h, w = cache.x_shape
    pad = cache.pad
    dx_padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dy.dtype)
    # dx_pad[argmax[o]] += dy[o] for every output o; np.add.at adds repeated indices one by
    # one (plain fancy-index assignment would keep only the last of them).
    np.add.at(dx_padded.reshape(-1), cache.argmax.reshape(-1), dy.reshape(-1))
    if pad:
        return np.ascontiguousarray(dx_padded[:, :, pad:pad + h, pad:pad + w])
    return dx_padded


# ---- the CPU forward pass, on a block of planes ---------------------------------------------------

def _pool_planes(planes, size, stride, y, argmax):
    """Max-pool planes (P, H, W), already padded, into y (P, OH, OW); write into argmax the
    flat index of each maximum within ``planes``. Steps 1 and 2 of the module docstring."""
    count, h, w = planes.shape
    out_h, out_w = y.shape[1:]
    offset_dtype = np.uint8 if size <= 255 else np.int32      # holds window offsets 0..size-1
    # Step 1, along each row: for every window position ow, the max of its size columns and
    # the first column j* that holds it. Each row of the result has `wide` entries.
    column_phases, wide = _phases(planes.reshape(count * h, w), 1, size, stride, out_w, -np.inf)
    row_max = np.empty(column_phases[0].size, dtype=planes.dtype)      # (P, H, wide)
    best_j = np.empty(column_phases[0].size, dtype=offset_dtype)
    _first_maximum(_shifted(column_phases, size, stride, 1), row_max, best_j)
    # Step 2, down the columns of row_max: the max over the window's size rows, the first row
    # i* that holds it, and the j* found in that row.
    row_max_phases, tall = _phases(row_max.reshape(count, h, wide), 1, size, stride, out_h, -np.inf)
    best_j_phases, _ = _phases(best_j.reshape(count, h, wide), 1, size, stride, out_h, 0)
    window_max = np.empty(row_max_phases[0].size, dtype=planes.dtype)  # (P, tall, wide)
    best_i = np.empty(row_max_phases[0].size, dtype=offset_dtype)
    _first_maximum(_shifted(row_max_phases, size, stride, wide), window_max, best_i)
    # best_j is split and shifted exactly like row_max, so its candidate i at an output is the
    # j* of window row i; the winner's j* is candidate i* of them.
    winner_j = _pick(best_i, _shifted(best_j_phases, size, stride, wide))

    def real(grid):
        """The OH x OW real outputs of each plane's (tall, wide) grid."""
        return grid.reshape(count, tall, wide)[:, :out_h, :out_w]

    y[...] = real(window_max)
    # argmax = (plane*H + oh*stride + i*)*W + ow*stride + j*, built up in place (H and W are
    # the padded sizes: the planes arrive padded)
    argmax[...] = real(best_i)
    argmax += (stride * np.arange(out_h, dtype=np.intp))[:, None]       # + oh*stride
    argmax += (h * np.arange(count, dtype=np.intp))[:, None, None]      # + plane*H
    argmax *= w
    argmax += real(winner_j)                                            # + j*
    argmax += stride * np.arange(out_w, dtype=np.intp)                  # + ow*stride


def _phases(a, axis, size, stride, out_count, fill):
    """The phases of ``a`` along ``axis``: phase q holds entries q, q + stride, q + 2*stride,
    ..., cut (or filled with ``fill``) to ``out_count + (size-1)//stride`` entries, as many
    as the window offsets of out_count outputs reach. Returns (flat phases, that length)."""
    length = out_count + (size - 1) // stride
    phases = []
    for q in range(min(stride, size)):
        taken = [slice(None)] * a.ndim
        taken[axis] = slice(q, None, stride)
        source = a[tuple(taken)]
        available = min(source.shape[axis], length)
        shape = list(a.shape)
        shape[axis] = length
        phase = np.empty(shape, dtype=a.dtype)
        head, tail = [slice(None)] * a.ndim, [slice(None)] * a.ndim
        head[axis], tail[axis] = slice(0, available), slice(available, None)
        phase[tuple(head)] = source[tuple(head)]
        phase[tuple(tail)] = fill              # read only by outputs that are thrown away
        phases.append(phase.reshape(-1))
    return phases, length


def _shifted(phases, size, stride, step):
    """The candidates of window offsets k = 0 .. size-1: offset k reads phase k % stride from
    its entry k // stride on, that is ``(k // stride) * step`` entries further in the flat
    phase (step = 1 along a row, ``wide`` down a column). All of one length."""
    longest_shift = (size - 1) // stride * step
    length = phases[0].size - longest_shift
    return [phases[k % stride][(k // stride) * step:(k // stride) * step + length]
            for k in range(size)]


def _first_maximum(candidates, best, which):
    """best = max over k of candidates[k]; which = the first k whose candidate equals best.
    1-d arrays; best and which may be longer than the candidates (their tail gets filler).

    Branch-free on purpose: a masked copy (``np.copyto(.., where=better)``) of a random mask
    runs 10 to 20 times slower than a maximum or a comparison, so ``which`` is counted
    instead: the first k that reaches the maximum has exactly k candidates before it that do
    not, so which = sum over k < size-1 of [candidates 0..k all fall short].
    """
    n = candidates[0].size
    best[n:], which[n:] = -np.inf, 0
    best, which = best[:n], which[:n]
    np.copyto(best, candidates[0])
    for candidate in candidates[1:]:
        np.maximum(best, candidate, out=best)
    all_short = np.empty(n, dtype=bool)         # [candidates 0..k all below the maximum]
    short = np.empty(n, dtype=bool)
    which.fill(0)
    for k, candidate in enumerate(candidates[:-1]):
        np.not_equal(candidate, best, out=short if k else all_short)
        if k:
            all_short &= short
        which += all_short                    # True counts 1


def _pick(which, options):
    """out[e] = options[which[e]][e] for integer arrays, without a masked copy:
    the sum over k of options[k] * [which == k] (one term is not zero)."""
    n = options[0].size
    out = np.zeros(which.size, dtype=options[0].dtype)
    chosen, term = np.empty(n, dtype=bool), np.empty(n, dtype=options[0].dtype)
    for k, option in enumerate(options):
        np.equal(which[:n], k, out=chosen)
        np.multiply(option, chosen, out=term)
        out[:n] += term
    return out
