"""A stand-in for ``cupy.cuda.nccl`` (TESTS ONLY), for data-parallel runs under mpiexec.

The stand-in's device arrays are host memory, so a "device pointer" is a host address: this
module sums (``allReduce``) and broadcasts (``bcast``) the ``count`` numbers at that address
over MPI, with the argument order and constants of CuPy's NCCL binding. Like NCCL it works in
place on raw pointers, needs a unique id shared by every rank, and checks its arguments.
"""
import ctypes
import os

import numpy as np

NCCL_SUM = 0
NCCL_FLOAT32, NCCL_FLOAT64 = 7, 8           # ncclFloat32, ncclFloat64
_TYPES = {NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64}
calls = []                                   # (operation, count, datatype): what a test can read


def get_unique_id():
    return tuple(int(b) for b in os.urandom(128))


class NcclCommunicator:
    def __init__(self, ndev, commId, rank):
        from mpi4py import MPI
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        if (ndev, rank) != (self.comm.Get_size(), self.comm.Get_rank()):
            raise ValueError(f"NcclCommunicator({ndev}, ..., {rank}) in a job of "
                             f"{self.comm.Get_size()} processes, this one rank {self.comm.Get_rank()}")
        if len(set(self.comm.allgather(tuple(commId)))) != 1:
            raise ValueError("the ranks passed different unique ids")

    def _view(self, pointer, count, datatype):
        dtype = np.dtype(_TYPES[datatype])
        memory = (ctypes.c_char * (count * dtype.itemsize)).from_address(pointer)
        return np.frombuffer(memory, dtype=dtype, count=count)

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        if op != NCCL_SUM or sendbuf != recvbuf:
            raise ValueError("the stand-in sums in place only")
        calls.append(("allReduce", count, datatype))
        self.comm.Allreduce(self.MPI.IN_PLACE, self._view(recvbuf, count, datatype), op=self.MPI.SUM)

    def bcast(self, buff, count, datatype, root, stream):
        calls.append(("bcast", count, datatype))
        self.comm.Bcast(self._view(buff, count, datatype), root=root)
