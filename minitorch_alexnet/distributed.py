"""Data parallelism across processes: N copies of the model, each on a slice of every batch.

    mpiexec -n 4 python -m minitorch_alexnet.train ...

starts 4 processes (ranks). Each holds the whole model and the same weights. Every global
batch of B images is cut into 4 contiguous slices (``DataLoader(part=(rank, size))``); rank r
runs forward and backward on its n_r images; the gradients are summed across the ranks; every
rank applies the same SGD update to the same weights, so the weights stay equal.

Why the sum is the one-process gradient. The loss of a step is the mean over the batch,

    L = (1/B) sum_i loss_i,     B = n_0 + n_1 + ... (the images that were read),

and softmax cross-entropy on rank r's slice gives the mean over its n_r images. Scaling its
dlogits by n_r / B before backward makes rank r's gradient g_r = (1/B) sum_{i in r} dloss_i/dw,
and sum_r g_r = dL/dw: the one-process gradient, up to the order of float additions.

Everything random is a function of (seed, epoch, image index): the order, the augmentation
(``data/loader.py``) and the dropout masks (``AlexNet.forward(dropout_keys=...)``), so which
rank computes an image changes nothing, and the number of ranks does not enter the result.

Three communicators, one interface (rank, size, local_rank, ``allreduce_sum``,
``broadcast``, ``sum_numbers``, ``broadcast_object``, ``barrier``, ``abort``):

- ``SingleProcess``: one process, no MPI; every operation leaves its buffer as it is.
- ``MPICommunicator``: MPI through mpi4py (``pip install ".[mpi]"``). NumPy buffers go to MPI
  as they are; CuPy buffers are copied through the host.
- ``NCCLCommunicator``: GPU buffers summed by NCCL (``cupy.cuda.nccl``), each rank on
  ``cuda:<local rank>``; MPI starts it (NCCL's unique id goes from rank 0 to the others over
  MPI) and carries the host-side numbers.

``communicator()`` picks one from the environment: a process started by ``mpiexec`` with more
than one process gets MPI; anything else gets ``SingleProcess`` and mpi4py is never imported.
``for_device`` swaps in NCCL when the gradients live on a GPU.
"""
import os

import numpy as np

from .backend import device_scope, get_array_module, is_cuda

# Variables by which launchers tell a process how many processes were started.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE")
BUCKET_BYTES = 25 * 2**20          # gradients are summed in flat buckets of about this size


def launched_processes():
    """How many processes the launcher started (1 when not started by mpiexec)."""
    for name in SIZE_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


class SingleProcess:
    """The communicator of a run in one process: nothing to sum with."""
    rank, size, local_rank = 0, 1, 0

    def allreduce_sum(self, buffer):
        """Sum ``buffer`` over the ranks, in place (one rank: unchanged)."""
        return buffer

    def broadcast(self, buffer, root=0):
        """Overwrite ``buffer`` with root's, in place (one rank: unchanged)."""
        return buffer

    def sum_numbers(self, numbers):
        """A few Python numbers summed over the ranks (float64)."""
        return [float(n) for n in numbers]

    def broadcast_object(self, value, root=0):
        """Root's ``value`` (a small picklable object) on every rank."""
        return value

    def barrier(self):
        pass

    def abort(self, status):
        raise SystemExit(status)

    def describe(self):
        return "1 process"


class MPICommunicator(SingleProcess):
    """MPI's COMM_WORLD through mpi4py. Sums and broadcasts run in place on contiguous
    NumPy arrays; a CuPy array is copied to the host, summed there, and copied back."""

    def __init__(self, mpi=None):
        if mpi is None:
            mpi = import_mpi()
        self.MPI = mpi
        self.comm = mpi.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        # The ranks on this machine: the GPU of rank r is cuda:<its rank among them>.
        self.local_rank = self.comm.Split_type(mpi.COMM_TYPE_SHARED).Get_rank()

    def allreduce_sum(self, buffer):
        return _on_host(buffer, lambda host: self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM))

    def broadcast(self, buffer, root=0):
        return _on_host(buffer, lambda host: self.comm.Bcast(host, root=root))

    def sum_numbers(self, numbers):
        values = np.asarray(numbers, dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, values, op=self.MPI.SUM)
        return values.tolist()

    def broadcast_object(self, value, root=0):
        return self.comm.bcast(value, root=root)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, status):
        """End every process of the job now (mpiexec stops them all), with ``status``."""
        self.comm.Abort(status)

    def describe(self):
        return f"{self.size} processes (MPI)"


class NCCLCommunicator(MPICommunicator):
    """Sums and broadcasts GPU buffers with NCCL on the current CUDA stream; host buffers and
    the numbers go over MPI."""

    def __init__(self, mpi=None, nccl=None):
        super().__init__(mpi)
        if nccl is None:
            from cupy.cuda import nccl
        self.nccl = nccl
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        unique_id = self.comm.bcast(unique_id, root=0)     # NCCL's rendezvous, over MPI
        self.nccl_comm = nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self.types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def _stream(self):
        from .backend import cupy_module
        return cupy_module().cuda.get_current_stream().ptr

    def allreduce_sum(self, buffer):
        if not is_cuda(buffer):
            return super().allreduce_sum(buffer)
        pointer = _contiguous(buffer).data.ptr
        self.nccl_comm.allReduce(pointer, pointer, buffer.size, self.types[buffer.dtype],
                                 self.nccl.NCCL_SUM, self._stream())
        return buffer

    def broadcast(self, buffer, root=0):
        if not is_cuda(buffer):
            return super().broadcast(buffer, root)
        self.nccl_comm.bcast(_contiguous(buffer).data.ptr, buffer.size, self.types[buffer.dtype],
                             root, self._stream())
        return buffer

    def describe(self):
        return f"{self.size} processes (NCCL for the GPUs, MPI for the rest)"


def _on_host(buffer, operation):
    """Run the in-place MPI ``operation`` on ``buffer``: a NumPy array as it is, a CuPy array
    through a host copy (MPI without GPU support reads host memory only)."""
    if not is_cuda(buffer):
        operation(_contiguous(buffer))
        return buffer
    host = buffer.get()
    operation(host)
    buffer.set(host)
    return buffer


def _contiguous(buffer):
    """A buffer that MPI or NCCL may write into: in-place operations need one block."""
    if not buffer.flags.c_contiguous:
        raise ValueError("a buffer summed or broadcast in place must be C-contiguous")
    return buffer


def import_mpi():
    """mpi4py's MPI module, or an error that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError(
            f"this process was started by mpiexec with {launched_processes()} processes, but "
            f"mpi4py cannot be imported ({error}); install it with: pip install '.[mpi]' "
            "(mpi4py and the MPICH wheel)") from None
    return MPI


def communicator():
    """The communicator for this process: MPI when mpiexec started more than one process,
    else ``SingleProcess`` (and mpi4py is not imported)."""
    if launched_processes() <= 1:
        return SingleProcess()
    return MPICommunicator()


def for_device(comm, device):
    """The communicator that sums gradients living on ``device``: NCCL between GPUs (when
    CuPy has it), else ``comm`` itself."""
    if comm.size == 1 or not str(device).startswith("cuda") or isinstance(comm, NCCLCommunicator):
        return comm
    from .backend import cupy_module, device_context
    try:
        from cupy.cuda import nccl
    except ImportError:
        return comm                          # MPI through the host: slower, still correct
    if not getattr(cupy_module().cuda, "nccl_enabled", True):   # CuPy found no NCCL library
        return comm
    with device_context(device):
        return NCCLCommunicator(comm.MPI, nccl)


# ---- what the trainer sums and shares ----------------------------------------------------------------

class GradientSum:
    """Sums every gradient of a model across the ranks, in place.

    The gradients, in the fixed order of ``model.parameters()``, are packed into flat buckets
    of about ``bucket_bytes`` (one per device and dtype run), each summed with one
    ``allreduce_sum``: a few large messages instead of 16 small ones. A gradient larger than
    a bucket is summed where it lies, without a copy.
    """

    def __init__(self, comm, bucket_bytes=BUCKET_BYTES):
        self.comm, self.bucket_bytes = comm, bucket_bytes
        self._buffers = {}

    def buckets(self, grads):
        """Consecutive runs of ``grads`` on one device with one dtype, at most bucket_bytes
        each (a larger gradient alone)."""
        runs, current, size = [], [], 0
        for grad in grads:
            same_kind = current and (_kind(current[0]) == _kind(grad))
            if current and (not same_kind or size + grad.nbytes > self.bucket_bytes):
                runs.append(current)
                current, size = [], 0
            current.append(grad)
            size += grad.nbytes
        return runs + ([current] if current else [])

    def __call__(self, model):
        if self.comm.size == 1:
            return
        grads = [grad for _, _, _, grad in model.parameters()]
        for number, bucket in enumerate(self.buckets(grads)):
            with device_scope(bucket[0]):
                if len(bucket) == 1 and bucket[0].flags.c_contiguous:
                    self.comm.allreduce_sum(bucket[0])
                    continue
                flat = self._flat(number, bucket)
                self.comm.allreduce_sum(flat)
                start = 0
                for grad in bucket:                     # back into the gradients' own arrays
                    grad[...] = flat[start:start + grad.size].reshape(grad.shape)
                    start += grad.size

    def _flat(self, number, bucket):
        """Bucket ``number``'s gradients copied into one flat buffer (kept between steps)."""
        xp = get_array_module(bucket[0])
        total = sum(g.size for g in bucket)
        flat = self._buffers.get(number)
        if flat is None or flat.size != total or _kind(flat) != _kind(bucket[0]):
            flat = self._buffers[number] = xp.empty(total, dtype=bucket[0].dtype)
        xp.concatenate([g.reshape(-1) for g in bucket], out=flat)
        return flat


def _kind(array):
    """(device, dtype): arrays that may share one flat buffer."""
    return (str(getattr(array, "device", "cpu")), array.dtype)


def broadcast_training_state(comm, model, optimizer):
    """Rank 0's weights and velocities on every rank (in place), so that all ranks start
    from the same state whatever each one read or drew."""
    if comm.size == 1:
        return
    for _, _, param, _ in model.parameters():
        with device_scope(param):
            comm.broadcast(param)
    for key in sorted(optimizer.velocity):
        velocity = optimizer.velocity[key]
        with device_scope(velocity):
            comm.broadcast(velocity)


def zero_gradients(model):
    """Gradients of zero for every parameter: the share of a rank whose slice of a batch was
    empty (all its images unreadable), which still takes part in the sum."""
    for blocks in model.blocks.values():
        for block in blocks:
            block.layers[0].zero_grad()
