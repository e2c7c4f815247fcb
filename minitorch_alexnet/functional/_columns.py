"""Running a grouped convolution's groups side by side on the CPU's cores.

AlexNet's two columns are two groups of conv2, conv4 and conv5: independent convolutions, each
with its own input channels, filters and outputs. The paper ran them on two GPUs. On a CPU with
two cores, ``for_each_group`` runs them on the two cores: one Python thread per group, each with
a one-thread BLAS (NumPy's copies and BLAS release the GIL, so the threads really run at once).

Why not one group after the other with a two-thread BLAS? Because of where the data lives. A
group unfolds a chunk of images into a workspace, then multiplies: with a two-thread BLAS the
second core reads half of the workspace, and the next unfolding writes it again. A core can only
write a cache line after the other core's copy is invalidated, which is cheap when the two cores
share a cache and slow when they do not, as a virtual machine's two cores sometimes do
(``python -m minitorch_alexnet.bench layers`` measures it). With one thread per group, every
workspace is written and read by one core only. Measured on the 2-core machine, conv2's forward
pass: 89-102 ms side by side, against 97-101 ms one group after the other when the cores shared
a cache and 152-164 ms when they did not.

The groups write disjoint slices of the outputs and return their own weight gradients, so the
result is the same, to the bit, as running them one after the other. Each runs in a copy of the
caller's context (``np.errstate`` holds there too). The BLAS thread count
comes back when the groups are done. This needs ``threadpoolctl`` to set the BLAS thread count;
without it, or when the BLAS runs fewer threads than there are groups (``OPENBLAS_NUM_THREADS=1``
asks for one core), or when another thread is already inside ``for_each_group``, the groups run
one after the other.
"""
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

_pools = {}                      # worker count -> ThreadPoolExecutor, made on first use
_blas = None                     # threadpoolctl's controller of the loaded BLAS; False if none
_side_by_side = threading.Lock() # one caller at a time changes the BLAS thread count


def _blas_controller():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController().select(user_api="blas")
        except ImportError:
            _blas = False
        if _blas is not False and not _blas.lib_controllers:
            _blas = False
    return _blas


def blas_threads():
    """How many threads the BLAS behind NumPy runs now (1 if it cannot be told)."""
    blas = _blas_controller()
    if not blas:
        return 1
    return max(library.num_threads for library in blas.lib_controllers)


def for_each_group(work, groups, on_gpu=False):
    """``[work(g) for g in range(groups)]``, in that order; on the CPU the groups run side by
    side, as many at a time as the BLAS has threads, the BLAS threads shared out among them."""
    threads = 1 if on_gpu or groups < 2 else min(groups, blas_threads())
    if threads < 2 or not _side_by_side.acquire(blocking=False):
        return [work(g) for g in range(groups)]
    try:
        with _blas.limit(limits=max(1, blas_threads() // threads)):
            pool = _pools.get(threads) or _pools.setdefault(
                threads, ThreadPoolExecutor(threads, thread_name_prefix="conv-group"))
            # Each group runs in a copy of the caller's context, so that settings kept in
            # context variables, such as np.errstate, hold on the pool's threads too.
            contexts = [contextvars.copy_context() for _ in range(groups)]
            return list(pool.map(lambda g: contexts[g].run(work, g), range(groups)))
    finally:
        _side_by_side.release()
