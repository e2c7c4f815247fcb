"""Run under ``mpiexec -n N`` (or alone) by tests/test_distributed.py: a tiny training run in
N processes whose parameters are compared across the processes after every step.

    python tests/mpi_driver.py RUN_DIR DTYPE [train flags ...]

After every SGD step each process hashes its parameters; the hashes are gathered and must be
equal (bit-identical weights on every rank), else the job aborts with status 3. Rank 0 then
writes RUN_DIR/steps_checked.txt: the number of steps checked and the communicator's class.
"""
import hashlib
import os
import sys

import numpy as np

from minitorch_alexnet import train
from minitorch_alexnet.trainer import Trainer


def parameter_hash(model):
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode() + np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def main():
    run_dir, dtype, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
    step = Trainer.train_step
    checked = []

    def step_and_compare(self, batch, lr):
        result = step(self, batch, lr)
        if self.comm.size > 1:
            hashes = self.comm.comm.allgather(parameter_hash(self.model))
            if len(set(hashes)) != 1:
                print(f"parameters differ between ranks after step {self.global_step + 1}",
                      file=sys.stderr, flush=True)
                self.comm.abort(3)
        checked.append(type(self.comm).__name__)
        return result

    Trainer.train_step = step_and_compare
    status = train.main([*flags, "--dtype", dtype, "--run-dir", run_dir])
    if status == 0 and not int(os.environ.get("PMI_RANK", "0")):
        with open(os.path.join(run_dir, "steps_checked.txt"), "w") as handle:
            handle.write(f"{len(checked)} {checked[-1] if checked else ''}")
    return status


if __name__ == "__main__":
    sys.exit(main())
