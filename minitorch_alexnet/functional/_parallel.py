"""Running a memory-bound layer a block of images at a time, on every core.

The layer math never depends on this module: a layer that uses it computes the same formula
on each block of (n, c) planes (or of images) that it would compute on the whole batch, and
the blocks do not overlap, so the result is the same as one call on the whole array.

Two reasons to split. Cache: a block small enough to stay in the processor's cache between
the several passes a layer makes over it is read from memory once instead of once per pass.
Cores: NumPy releases the GIL inside its loops, so blocks given to a pool of threads run on
all cores at once, as the matrix products (BLAS) already do.
"""
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

BLOCK_BYTES = 1 * 2**20        # input bytes per block: a few passes over it stay in cache
FORCED_BLOCK_BYTES = None      # tests set it to split even small arrays into many blocks
_pool = None


def worker_count():
    """Threads for the layers: the cores this process may use (MINITORCH_THREADS overrides)."""
    wanted = os.environ.get("MINITORCH_THREADS")
    if wanted:
        return max(1, int(wanted))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def blocks_of_planes(count, plane_bytes, block_bytes=None):
    """Split ``count`` planes into consecutive ``(first, last)`` ranges of about
    ``block_bytes`` each, and at least one range per worker when there are enough planes."""
    block_bytes = FORCED_BLOCK_BYTES or block_bytes or BLOCK_BYTES
    per_block = max(1, block_bytes // max(1, plane_bytes))
    per_block = min(per_block, max(1, -(-count // worker_count())))
    return [(first, min(first + per_block, count)) for first in range(0, count, per_block)]


SMALL_BYTES = 1 * 2**20        # below this a one-pass layer runs in the calling thread


def one_block_per_worker(count, total_bytes):
    """Split ``count`` items (``total_bytes`` in all) into one consecutive range per worker:
    for a layer that passes over its data once (ReLU, a bias), where cache blocks gain nothing
    and each block costs a hand-over to a thread. Under SMALL_BYTES one range: the hand-over
    (tens of microseconds) would cost more than the second core saves."""
    if total_bytes < SMALL_BYTES and not FORCED_BLOCK_BYTES:
        return [(0, count)]
    # Each item counted as 1 byte with room for all ``count`` in a block: the cache limit
    # never binds, and blocks_of_planes' cap of ceil(count / workers) items per block is
    # what splits the range, one block per worker.
    return blocks_of_planes(count, 1, block_bytes=count)


def run_blocks(function, blocks):
    """Call ``function(first, last)`` for every block, on the thread pool when there are
    several blocks and workers; wait for all and re-raise the first error."""
    global _pool
    workers = worker_count()
    if len(blocks) == 1 or workers == 1:
        for first, last in blocks:
            function(first, last)
        return
    if _pool is None or _pool._max_workers != workers:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layers")
    # Each block runs in a copy of the caller's context, so that settings kept in context
    # variables (NumPy's np.errstate, for one) hold in the worker threads as in the caller.
    futures = [_pool.submit(contextvars.copy_context().run, function, first, last)
               for first, last in blocks]
    for future in futures:
        future.result()
