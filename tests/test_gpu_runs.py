"""The GPU path of the programs (pytest marker ``gpu``): ``train --device cuda``, ``--columns
cuda:0,cuda:1``, resuming a GPU run on the CPU and back, ``evaluate`` and ``predict`` on a GPU.

Each command's ``main(argv)`` runs in this process, on the real CuPy when it sees a GPU and
otherwise on the CuPy stand-in (tests/fake_cupy, installed by tests/conftest.py), whose arrays
remember their device and refuse host arrays and arrays of another device: a host/device
mix-up anywhere on the way (model, columns, optimizer, checkpoint, evaluation) fails here.
Tiny runs: width 1/8 of the small preset, 48 training and 16 validation images.

Checked: a run on ``cuda`` (and on ``cuda:1``, where nothing may land on device 0) ends with
the weights and metrics of the same run on the CPU; two columns on cuda:0 and cuda:1 give the
values and gradients of one device, step after step, and the same run; a GPU run resumed on the
CPU and then on the GPU again ends where an uninterrupted run ends; ``evaluate`` and
``predict`` on a GPU print what they print on the CPU. Runs needing two GPUs are skipped on a
machine with one.
"""
import contextlib
import io
import re

import numpy as np
import pytest

import helpers_train as h
from minitorch_alexnet import backend
from minitorch_alexnet import evaluate as evaluate_cli
from minitorch_alexnet import functional as F
from minitorch_alexnet import predict as predict_cli
from minitorch_alexnet import train
from minitorch_alexnet.model import AlexNet
from minitorch_alexnet.optim import SGD

pytestmark = [
    pytest.mark.gpu,
    # strings: evaluated at each test's setup, when conftest.py has installed the stand-in
    pytest.mark.skipif("not backend.cuda_available()", reason="needs CuPy and a CUDA device"),
]
TWO_GPUS = pytest.mark.skipif("not backend.cuda_available() or backend.cupy_module().cuda.runtime.getDeviceCount() < 2",
                              reason="needs two GPUs")

# Kernels and the CPU path add in other orders: float32 runs of a few steps agree this closely.
RTOL, ATOL = 1e-3, 1e-5


def run_main(module, argv):
    """``module.main(argv)`` with its output captured: ``(status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = module.main([str(arg) for arg in argv])
    return status, out.getvalue(), err.getvalue()


def trained(run_dir, epochs=1, extra=()):
    """Train a tiny run (3 steps of 16 images an epoch); fail with its error output unless it
    ends well."""
    status, out, err = run_main(train, h.tiny_args(run_dir, train=48, val=16, epochs=epochs,
                                                   extra=list(extra)))
    assert status == 0, err
    return out


def assert_close_runs(run_a, run_b, rtol=RTOL, atol=ATOL):
    """Same metrics (timings aside) and final weights, to float32 rounding of a few steps."""
    rows_a, rows_b = h.deterministic_metrics(run_a), h.deterministic_metrics(run_b)
    assert len(rows_a) == len(rows_b)
    for a, b in zip(rows_a, rows_b):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=rtol, abs=atol), key
    weights_a, weights_b = h.final_weights(run_a), h.final_weights(run_b)
    assert sorted(weights_a) == sorted(weights_b)
    for name in weights_a:
        np.testing.assert_allclose(weights_a[name], weights_b[name], rtol=rtol, atol=atol, err_msg=name)


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cpu") / "run"
    trained(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cuda") / "run"
    out = trained(run_dir, extra=["--device", "cuda"])
    return run_dir, out


# ---- training on one GPU ----------------------------------------------------------------------------

def test_train_on_cuda_matches_the_cpu(cuda_run, cpu_run):
    run_dir, out = cuda_run
    assert "device cuda" in out and "final validation accuracy" in out
    assert_close_runs(run_dir, cpu_run)


@TWO_GPUS
def test_train_on_the_second_gpu(tmp_path, cpu_run):
    """Everything must happen on cuda:1: an array made on device 0 by mistake fails the run."""
    trained(tmp_path / "run", extra=["--device", "cuda:1"])
    assert_close_runs(tmp_path / "run", cpu_run)


# ---- two columns on two GPUs ------------------------------------------------------------------------

def forward_backward(model, x, labels):
    """Logits, loss, d(input) and every gradient of one training step, as NumPy."""
    with backend.device_context(model.devices[0]):
        logits = model.forward(backend.to_device(x, model.devices[0]), train=True)
        loss, dlogits = F.softmax_cross_entropy(logits, backend.to_device(labels, model.devices[0]))
        dx = model.backward(dlogits)
        return dict(logits=backend.to_numpy(logits), loss=float(loss), dx=backend.to_numpy(dx),
                    **{f"grad {k}": v for k, v in model.grad_dict().items()})


@TWO_GPUS
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_two_columns_on_two_gpus_equal_one_gpu(dtype):
    tolerance = 1e-10 if dtype == np.float64 else 1e-5
    kwargs = dict(num_classes=10, preset="small", width=0.125, in_channels=1, input_size=28,
                  dtype=dtype, seed=3)
    one, two = AlexNet(devices="cuda:0", **kwargs), AlexNet(devices=("cuda:0", "cuda:1"), **kwargs)
    for name, column, param, _ in two.parameters():            # each column on its own GPU
        assert backend.device_of(param) == ("cuda:1" if column == 1 else "cuda:0"), (name, column)
    opt_one, opt_two = SGD(one, lr=0.05), SGD(two, lr=0.05)
    rng = np.random.default_rng(0)
    for step in range(2):
        x = rng.standard_normal((3, 1, 28, 28)).astype(dtype)
        labels = rng.integers(0, 10, size=3)
        want, got = forward_backward(one, x, labels), forward_backward(two, x, labels)
        for key, value in want.items():
            scale = max(float(np.max(np.abs(value))), 1e-30)
            assert float(np.max(np.abs(got[key] - value))) / scale <= tolerance, (step, key)
        opt_one.step()
        opt_two.step()
    for key, value in one.state_dict().items():
        np.testing.assert_allclose(two.state_dict()[key], value, rtol=tolerance * 10, atol=0, err_msg=key)


@TWO_GPUS
def test_train_on_two_gpu_columns_equals_one_gpu(tmp_path, cuda_run):
    run_dir, _ = cuda_run
    out = trained(tmp_path / "run", extra=["--columns", "cuda:0,cuda:1"])
    assert "columns on cuda:0 and cuda:1" in out
    assert_close_runs(tmp_path / "run", run_dir, rtol=1e-4, atol=1e-6)


def test_a_gpu_run_that_blows_up_names_the_layer(tmp_path):
    """The search for the first nan (nonfinite.py) runs on the GPU, with two columns where
    there are two GPUs."""
    devices = (["--columns", "cuda:0,cuda:1"] if backend.cupy_module().cuda.runtime.getDeviceCount() > 1
               else ["--device", "cuda"])
    with np.errstate(all="ignore"):
        status, _, err = run_main(train, h.tiny_args(tmp_path / "run", train=48, val=16, extra=[
            "--lr", "1e8", *devices]))
    assert status == 1, err
    assert err.startswith("error: non-finite") and "Try a lower --lr" in err
    assert re.search(r"the (forward|backward) pass of (conv[1-5]|fc[678]) is the first to produce", err), err


# ---- checkpoints move between devices ---------------------------------------------------------------

def test_resume_a_gpu_run_on_the_cpu_and_back(tmp_path):
    """Epoch 1 on the GPU, epoch 2 on the CPU, epoch 3 on the GPU (two columns where there are
    two GPUs): the same end as three epochs on the GPU without a stop."""
    whole, pieces = tmp_path / "whole", tmp_path / "pieces"
    steady = ["--schedule", "step"]                # the cosine schedule would span --epochs
    trained(whole, epochs=3, extra=["--device", "cuda", *steady])
    trained(pieces, epochs=1, extra=["--device", "cuda", *steady])
    status, out, err = run_main(train, ["--resume", pieces, "--epochs", 2, "--device", "cpu", "--no-progress"])
    assert status == 0, err
    assert "resuming" in out and "device cpu" in out
    last = (["--columns", "cuda:0,cuda:1"] if backend.cupy_module().cuda.runtime.getDeviceCount() > 1
            else ["--device", "cuda"])
    status, out, err = run_main(train, ["--resume", pieces, "--epochs", 3, *last, "--no-progress"])
    assert status == 0, err
    assert [row["epoch"] for row in h.read_metrics(pieces)] == [1, 2, 3]
    assert_close_runs(pieces, whole)


# ---- evaluate and predict on a GPU ------------------------------------------------------------------

@pytest.mark.parametrize("ten_crop", [False, True], ids=["centre", "ten-crop"])
def test_evaluate_on_cuda_prints_what_the_cpu_prints(cuda_run, tmp_path, ten_crop):
    run_dir, _ = cuda_run
    outputs = {}
    devices = ["cpu", "cuda"] + (["cuda:1"] if backend.cupy_module().cuda.runtime.getDeviceCount() > 1 else [])
    for device in devices:
        argv = [run_dir, "--device", device, "--workers", 1, "--limit-val", 16,
                "--confusion", tmp_path / f"confusion-{device}.png"] + (["--ten-crop"] if ten_crop else [])
        status, out, err = run_main(evaluate_cli, argv)
        assert status == 0, err
        assert (tmp_path / f"confusion-{device}.png").is_file()
        outputs[device] = out.replace(str(tmp_path / f"confusion-{device}.png"), "PATH")
    for device in devices[1:]:
        for got, want in zip(outputs[device].splitlines(), outputs["cpu"].splitlines()):
            if got.startswith("mean loss"):                    # four decimals of a float32 sum
                assert float(got.split()[-1]) == pytest.approx(float(want.split()[-1]), abs=2e-4)
            else:
                assert got == want


def test_predict_on_cuda_prints_what_the_cpu_prints(cuda_run, tmp_path):
    run_dir, _ = cuda_run
    picture = h.write_image(str(tmp_path / "picture.png"), size=40)
    results = {}
    for device in ("cpu", "cuda"):
        for views in ([], ["--ten-crop"]):
            status, out, err = run_main(predict_cli, [run_dir, picture, "--device", device, *views])
            assert status == 0, err
            lines = out.splitlines()
            assert lines[0] == f"{picture}:" and len(lines) == 6
            results[device, bool(views)] = [(line.split(maxsplit=1)[1], float(line.split()[0].rstrip("%")))
                                             for line in lines[1:]]
    for views in (False, True):
        gpu, cpu = results["cuda", views], results["cpu", views]
        assert [name for name, _ in gpu] == [name for name, _ in cpu]
        assert [p for _, p in gpu] == pytest.approx([p for _, p in cpu], abs=0.011)   # 2 decimals


# ---- the benchmarks' GPU path -----------------------------------------------------------------------

def test_model_benchmark_runs_on_cuda():
    """One column on cuda:0 and two columns (on cuda:0 and cuda:1 where there are two GPUs)."""
    from minitorch_alexnet import bench
    status, out, err = run_main(bench, ["model", "--preset", "small", "--batch", 2, "--steps", 1,
                                        "--rounds", 1, "--no-torch", "--device", "cuda"])
    assert status == 0, err
    assert "ours, one column" in out and "ours, two columns" in out and "cuda:0" in out
