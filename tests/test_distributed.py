"""Data-parallel training over MPI (``distributed.py``), driven from pytest on loopback.

Runs ``mpiexec -n 2`` (MPICH's, from ``pip install ".[mpi]"``) on tiny runs of the built-in
data and checks what the issue of data parallelism promises:

- after every step all ranks hold bit-identical parameters (``mpi_driver.py`` hashes them);
- 2 ranks against one process, same global batch and seed: float64 weights equal within
  1e-12 relative, float32 within 1e-5, and the metrics file agrees;
- a 2-rank run resumed on 1 process, and a 1-process run resumed on 2 ranks, end where the
  uninterrupted run ends;
- a killed rank ends the job with a non-zero status within 30 s; the checkpoint is intact.

Without ``mpiexec`` these tests skip, except under ``CI=true``, where they fail: CI installs
the MPI extra, so a missing mpiexec is a broken set-up, not a reason to skip.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet.distributed import GradientSum, SingleProcess, launched_processes

import helpers_train as h

pytestmark = pytest.mark.distributed
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_driver.py")
# A run of 3 + 3 steps (48 images, batch 16, two epochs); the step schedule keeps the learning
# rate constant, so a run resumed with more epochs continues exactly.
FLAGS = ["--preset", "small", "--width", "0.125", "--limit-train", "48", "--limit-val", "20",
         "--batch-size", "16", "--workers", "1", "--no-progress", "--schedule", "step",
         "--checkpoint-minutes", "0"]


def mpiexec():
    """The mpiexec next to this Python (the mpich wheel's), or on PATH; skip (fail in CI)."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mpiexec not found: CI installs it with pip install '.[mpi]'")
        pytest.skip("mpiexec not found (pip install '.[mpi]')")
    return found


def environment():
    env = h.subprocess_env()
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MINITORCH_THREADS="1")
    for name in ("PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        env.pop(name, None)                       # the single-process runs are really single
    return env


def run(command, timeout=240):
    result = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def driver(run_dir, dtype, ranks, epochs=2, extra=()):
    args = [str(run_dir), dtype, *FLAGS, "--epochs", str(epochs), *extra]
    if ranks == 1:
        return run([sys.executable, DRIVER, *args])
    return run([mpiexec(), "-n", str(ranks), sys.executable, DRIVER, *args])


def relative_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def assert_close_runs(run_a, run_b, tolerance):
    weights_a, weights_b = h.final_weights(run_a), h.final_weights(run_b)
    assert sorted(weights_a) == sorted(weights_b)
    errors = {k: relative_error(weights_a[k], weights_b[k]) for k in weights_a}
    assert max(errors.values()) <= tolerance, errors
    rows_a, rows_b = h.deterministic_metrics(run_a), h.deterministic_metrics(run_b)
    assert len(rows_a) == len(rows_b)
    for row_a, row_b in zip(rows_a, rows_b):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            assert row_a[key] == pytest.approx(row_b[key], rel=max(tolerance, 1e-9), abs=1e-12), key


@pytest.mark.parametrize("dtype,tolerance", [("float64", 1e-12), ("float32", 1e-5)])
def test_two_ranks_equal_one_process(tmp_path, dtype, tolerance):
    """Bit-identical parameters on both ranks after every step, and the same weights and
    metrics as one process training on the whole batch."""
    one, two = tmp_path / "one", tmp_path / "two"
    driver(one, dtype, ranks=1)
    result = driver(two, dtype, ranks=2)
    assert (two / "steps_checked.txt").read_text() == "6 MPICommunicator"   # every step compared
    assert result.stdout.count("training AlexNet") == 1           # rank 0 alone speaks
    assert "2 processes (MPI)" in result.stdout
    assert_close_runs(two, one, tolerance)


@pytest.mark.parametrize("first,then", [(2, 1), (1, 2)])
def test_resume_with_another_number_of_processes(tmp_path, first, then):
    """A checkpoint does not record how many processes wrote it: one epoch on ``first``
    processes, the second on ``then``, ends where two epochs on one process end."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    driver(whole, "float32", ranks=1, epochs=2)
    driver(split, "float32", ranks=first, epochs=1)
    driver(split, "float32", ranks=then, epochs=2, extra=["--resume", str(split)])
    assert_close_runs(split, whole, 1e-5)


def test_two_gpu_processes_sum_with_nccl(tmp_path):
    """``--device cuda`` in 2 processes, through the CuPy stand-in and its NCCL stand-in (which
    sums the memory behind device pointers over MPI): each process on its own GPU (cuda:0 and
    cuda:1 of the stand-in), gradients summed by the NCCL communicator, and the weights those
    of one CPU process (float64; the GPU kernels round differently from the CPU code)."""
    one, two = tmp_path / "one", tmp_path / "two"
    driver(one, "float64", ranks=1)
    stand_in = os.path.join(os.path.dirname(DRIVER), "fake_cupy")
    env = environment()
    env["PYTHONPATH"] = stand_in + os.pathsep + env["PYTHONPATH"]
    command = [mpiexec(), "-n", "2", sys.executable, DRIVER, str(two), "float64", *FLAGS,
               "--epochs", "2", "--device", "cuda"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (two / "steps_checked.txt").read_text() == "6 NCCLCommunicator"
    assert "2 processes (NCCL for the GPUs, MPI for the rest)" in result.stdout
    assert_close_runs(two, one, 1e-9)


def rank_pids(launcher_pid, rank):
    """The pids of the python processes of ``rank`` started under the launcher."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                env = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        if env.get(b"PMI_RANK") == str(rank).encode() and env.get(b"MINITORCH_TEST_JOB") == str(launcher_pid).encode():
            found.append(int(entry))
    return found


def test_a_killed_rank_ends_the_job_and_keeps_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    env = environment()
    env["MINITORCH_TEST_JOB"] = str(os.getpid())
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "minitorch_alexnet.train", *FLAGS,
               "--epochs", "200", "--checkpoint-every", "1", "--run-dir", str(run_dir)]
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        last = run_dir / "checkpoints" / ckpt.LAST
        deadline = time.monotonic() + 120
        while not last.exists() and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.2)
        assert last.exists(), "no checkpoint appeared"
        victims = rank_pids(os.getpid(), 1)
        assert victims, "rank 1 not found"
        killed_at = time.monotonic()
        os.kill(victims[0], signal.SIGKILL)
        job.wait(timeout=60)
        took = time.monotonic() - killed_at
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode != 0
    assert took <= 30, f"the job took {took:.1f} s to end after a rank was killed"
    arrays, meta, path = ckpt.load_latest(str(run_dir / "checkpoints"), warn=None)
    assert meta["global_step"] >= 1 and all(np.isfinite(a).all() for a in arrays.values())


def test_unsupported_combination_is_refused_by_every_rank(tmp_path):
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "minitorch_alexnet.train", *FLAGS,
               "--columns", "cpu:0,cpu:1", "--run-dir", str(tmp_path / "run")]
    result = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=120)
    assert result.returncode != 0
    assert "--columns (two columns in each process) is not supported with several processes" in result.stderr


# ---- without MPI -------------------------------------------------------------------------------------

def test_one_process_needs_no_mpi(tmp_path):
    """Outside mpiexec the communicator is SingleProcess and mpi4py is never imported."""
    code = ("import sys; from minitorch_alexnet import distributed, train; "
            "assert type(distributed.communicator()).__name__ == 'SingleProcess'; "
            "assert 'mpi4py' not in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment())
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_launched_processes_reads_the_launchers_variables(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert launched_processes() == 1
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    assert launched_processes() == 3


def test_missing_mpi4py_is_named_with_the_fix(monkeypatch):
    from minitorch_alexnet import distributed
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)             # import fails
    with pytest.raises(RuntimeError, match=r"started by mpiexec with 2 processes.*pip install '\.\[mpi\]'"):
        distributed.communicator()


def test_gradient_buckets_keep_order_and_size():
    grads = [np.zeros(n, np.float32) for n in (10, 20, 300, 5, 5)]
    buckets = GradientSum(SingleProcess(), bucket_bytes=200).buckets(grads)
    assert [[g.size for g in b] for b in buckets] == [[10, 20], [300], [5, 5]]
    mixed = [np.zeros(4, np.float32), np.zeros(4, np.float64), np.zeros(4, np.float64)]
    assert [len(b) for b in GradientSum(SingleProcess(), 10**6).buckets(mixed)] == [1, 2]


class SummingTwin(SingleProcess):
    """A stand-in for two ranks holding the same gradients: the sum doubles every entry."""
    size = 2

    def allreduce_sum(self, buffer):
        buffer *= 2
        return buffer


def test_gradient_sum_writes_every_gradient_back():
    from minitorch_alexnet.model import AlexNet
    from minitorch_alexnet import functional as F
    model = AlexNet(10, "small", width=0.125, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32))
    loss, dlogits = F.softmax_cross_entropy(model.forward(x, train=False), np.array([1, 2, 3]))
    model.backward(dlogits)
    before = model.grad_dict()
    GradientSum(SummingTwin(), bucket_bytes=4096)(model)
    after = model.grad_dict()
    for name in before:
        np.testing.assert_array_equal(after[name], 2 * before[name], err_msg=name)
