"""``python -m minitorch_alexnet.bench`` keeps working: tiny batches, one repeat, every layer
named in the table and no NaN or infinite timing. Not a timed test."""
import math
import os
import re
import sys

import numpy as np
import pytest

from minitorch_alexnet import bench, functional
from minitorch_alexnet.bench import layer_timing, machine
from minitorch_alexnet.model import AlexNet

pytestmark = pytest.mark.bench

MEMORY_BOUND_KINDS = {"bias", "relu", "lrn", "pool", "dropout", "loss"}

LAYERS = ["conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2", "conv3", "relu3",
          "conv4", "relu4", "conv5", "relu5", "pool5", "fc6", "relu6", "dropout6", "fc7", "relu7",
          "dropout7", "fc8", "softmax-xent"]


def numbers(text):
    return [float(token) for token in re.findall(r"(?<![\w.])-?\d+\.\d+(?![\w.])", text)]


@pytest.fixture(autouse=True)
def quick_references(monkeypatch):
    """Small reference measurements: a 256^3 matrix product and a 1 MiB copy (tests that want
    other sizes patch them again)."""
    monkeypatch.setattr(machine, "GEMM_SHAPE", (256, 256, 256))
    monkeypatch.setattr(machine, "COPY_BYTES", 2**20)


def test_layers_table_names_every_layer(capsys, monkeypatch):
    monkeypatch.setattr(machine, "GEMM_SHAPE", (256, 256, 256))   # keep the reference product quick
    assert bench.main(["layers", "--batch", "2", "--repeat", "1", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("layer "):]
    for name in LAYERS:
        assert re.search(rf"^{re.escape(name)}\s", table, re.MULTILINE), name
    assert "nan" not in out.lower() and "inf " not in out.lower()
    assert numbers(table) and all(math.isfinite(v) for v in numbers(table))
    assert "BLAS" in out and "OPENBLAS_CORETYPE" in out
    # every convolution in the targets table, with its lowest and highest round (two rounds)
    targets = out[out.index("targets:"):]
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        line = re.search(rf"^{name}\s.*$", targets, re.MULTILINE).group(0)
        low, high = (float(v) for v in re.search(r"(\d+\.\d+)-(\d+\.\d+)\s", line).groups())
        assert 0 < low <= high


def test_layer_benchmark_keeps_one_ratio_and_share_per_round(monkeypatch):
    monkeypatch.setattr(machine, "GEMM_SHAPE", (128, 128, 128))
    rows, rates, _ = bench.layer_benchmark(batch=1, repeat=1, rounds=3)
    convs = [row for row in rows if row["kind"] == "conv"]
    assert [row["name"] for row in convs] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    for row in convs:
        assert len(row["round_ratios"]) == 3 and len(row["round_shares"]) == 3
        assert all(0 < share < 1 for share in row["round_shares"])
        assert min(row["round_shares"]) <= row["unfold_share"] <= max(row["round_shares"])
        assert len(row["round_probes"]) == 3


TWO_CORES = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


@pytest.mark.skipif(not TWO_CORES, reason="needs sched_setaffinity and two usable cores")
def test_cross_core_write_ratio_with_two_cores_is_positive(monkeypatch):
    monkeypatch.setattr(machine, "PROBE_BYTES", 2**16)
    cores = os.sched_getaffinity(0)
    ratio = bench.cross_core_write_ratio(repeat=2)
    assert ratio is not None and math.isfinite(ratio) and ratio > 0
    assert os.sched_getaffinity(0) == cores    # the probe pins the main thread, then lets go


def test_cross_core_write_ratio_is_unmeasurable_on_one_core(monkeypatch):
    monkeypatch.setattr(machine, "PROBE_BYTES", 2**16)
    pinned = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: pinned.append(cpus), raising=False)
    assert bench.cross_core_write_ratio(repeat=2) is None
    assert pinned == []                        # nothing was pinned
    monkeypatch.delattr(os, "sched_setaffinity")   # a system without it (macOS): also None
    assert bench.cross_core_write_ratio(repeat=2) is None


def test_model_table_has_both_column_layouts(capsys):
    assert bench.main(["model", "--preset", "small", "--batch", "4", "--steps", "1", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "ours, one column" in out and "ours, two columns" in out
    rows = [line for line in out.splitlines() if line.startswith("ours, ")]
    assert len(rows) == 2
    for row in rows:
        values = numbers(row)
        assert values and all(math.isfinite(v) and v >= 0 for v in values)


# ---- the memory-bound layers, the copy bandwidth, PyTorch and the small preset ---------------------

def test_copy_bandwidth_is_positive():
    rates = bench.copy_bandwidth_samples(repeat=3)
    assert len(rates) == 3 and all(math.isfinite(r) and r > 0 for r in rates)


def test_minimum_bytes_counts_what_the_docstring_says():
    itemsize = 4
    x = 2 * 3 * 5 * 5 * itemsize                      # bytes of a (2, 3, 5, 5) float32 input
    pooled = 2 * 3 * 2 * 2                            # outputs of a 3/2 pool over 5x5
    assert bench.minimum_bytes("relu", (2, 3, 5, 5), (2, 3, 5, 5), itemsize) == (2 * x, 3 * x)
    assert bench.minimum_bytes("lrn", (2, 3, 5, 5), (2, 3, 5, 5), itemsize) == (2 * x, 3 * x)
    pool = x + pooled * itemsize + pooled * 8         # x, y and one int64 index per output
    assert bench.minimum_bytes("pool", (2, 3, 5, 5), (2, 3, 2, 2), itemsize) == (pool, pool)
    dropout = 2 * 40 * itemsize + 40                  # x and y, one mask byte per unit
    assert bench.minimum_bytes("dropout", (4, 10), (4, 10), itemsize) == (dropout, dropout)
    assert bench.minimum_bytes("loss", (4, 10), (), itemsize) == (2 * 40 * itemsize + 4 * 8, 0)
    assert bench.minimum_bytes("bias", (2, 3, 5, 5), (2, 3, 5, 5), itemsize) == (2 * x + 12, x + 12)
    assert bench.minimum_bytes("conv", (2, 3, 5, 5), (2, 3, 5, 5), itemsize) == (None, None)


def test_every_memory_bound_row_has_bytes_and_rates():
    rows, _, memory = bench.layer_benchmark(batch=2, repeat=1, rounds=1, preset="small")
    assert len(memory["copy_start"]) == len(memory["copy_end"]) == bench.COPY_REPEAT
    assert memory["copy_gbps"] > 0 and all(r > 0 for r in memory["copy_start"] + memory["copy_end"])
    assert {row["kind"] for row in rows} == MEMORY_BOUND_KINDS | {"conv", "fc"}
    for row in rows:
        if row["kind"] in ("conv", "fc"):
            assert "gbps" not in row and "forward_bytes" not in row, row["name"]
            continue
        assert row["forward_bytes"] > 0 and row["forward_gbps"] > 0, row["name"]
        assert row["gbps"] > 0 and row["copy_ratio"] == pytest.approx(row["gbps"] / memory["copy_gbps"])
        if row["kind"] == "loss":                     # its gradient comes with the forward call
            assert row["backward_bytes"] == 0 and row["backward_gbps"] is None
        else:
            assert row["backward_bytes"] > 0 and row["backward_gbps"] > 0, row["name"]
        assert "torch_ratio" not in row               # no torch module given: no PyTorch column


def memory_table(out):
    """The memory-bound table's rows: name -> the numbers on its line."""
    section = out[out.index("memory-bound layers"):out.index("targets:")]
    return {line.split()[0]: line.split()[1:] for line in section.splitlines()[2:] if line.strip()}


def test_torch_columns_appear_when_torch_imports(capsys):
    torch = pytest.importorskip("torch")
    assert bench.main(["layers", "--preset", "small", "--batch", "2", "--repeat", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads" in out
    header = next(line for line in out.splitlines() if line.startswith("layer "))
    assert re.search(r"torch fwd\s+torch bwd\s+ours/torch$", header)
    table = out[out.index(header):out.index("memory-bound layers")]
    rows = [line for line in table.splitlines()[1:] if line and not line.startswith("total")]
    assert len(rows) == len(bench.layer_plan("small", 2))
    for line in rows:
        torch_fwd, torch_bwd, ratio = (float(v) for v in line.split()[-3:])
        assert torch_fwd >= 0 and torch_bwd >= 0 and ratio > 0 and math.isfinite(ratio), line
    total = next(line for line in table.splitlines() if line.startswith("total"))
    assert re.search(r"PyTorch \d+\.\d \+ \d+\.\d ms => \d+\.\d images/s, ours/torch \d+\.\d\d$", total)


def test_without_torch_the_table_says_it_was_not_measured(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # makes ``import torch`` raise ImportError
    assert bench.import_torch() is None
    assert bench.main(["layers", "--preset", "small", "--batch", "2", "--repeat", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "PyTorch: not measured (not importable here)" in out
    assert "torch fwd" not in out and "ours/torch" not in out
    # the memory-bound table is still there, every row with positive bytes and rates
    rows = memory_table(out)
    kinds = {kind for _, kind, _, _ in bench.layer_plan("small", 2)}
    names = [name for name, kind, _, _ in bench.layer_plan("small", 2) if kind in MEMORY_BOUND_KINDS]
    assert kinds == MEMORY_BOUND_KINDS | {"conv", "fc"} and sorted(rows) == sorted(names)
    for name, cells in rows.items():
        fwd_mb, bwd_mb, fwd_rate, bwd_rate, copy_ratio = cells[-5:]
        assert float(fwd_mb) > 0 and float(fwd_rate) > 0 and float(copy_ratio) > 0, name
        if name != "softmax-xent":
            assert float(bwd_mb) > 0 and float(bwd_rate) > 0, name
    assert re.search(r"copy bandwidth .*: (\d+\.\d) GB/s at the start, (\d+\.\d) GB/s at the end", out)


def record_model_layers(monkeypatch):
    """Wrap the functional calls model.py makes, so a forward pass lists (kind, input shape)."""
    calls = []
    for kind, name in (("conv", "conv2d_forward"), ("relu", "relu_forward"), ("lrn", "lrn_forward"),
                       ("pool", "max_pool2d_forward"), ("fc", "linear_forward"),
                       ("dropout", "dropout_forward")):
        def wrapper(x, *args, _kind=kind, _function=getattr(functional, name), **kwargs):
            calls.append((_kind, tuple(x.shape)))
            return _function(x, *args, **kwargs)
        monkeypatch.setattr(functional, name, wrapper)
    return calls


def test_small_preset_plan_follows_the_small_model(monkeypatch):
    batch = 3
    model = AlexNet(10, preset="small")
    calls = record_model_layers(monkeypatch)
    images = np.random.default_rng(0).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    logits = model.forward(images, train=True)
    monkeypatch.undo()
    plan = bench.layer_plan("small", batch)
    assert [name for name, kind, _, _ in plan if kind != "bias"] == LAYERS
    assert [name for name, kind, _, _ in plan if kind == "bias"] == [f"conv{i}.bias" for i in range(1, 6)]
    expected = [(kind, shape, settings) for _, kind, shape, settings in plan if kind not in ("bias", "loss")]
    assert [kind for kind, _, _ in expected] == [kind for kind, _ in calls]
    for (kind, shape, settings), (_, model_shape) in zip(expected, calls):
        if kind == "lrn":      # within each column, as the model does: (N, C, H, W) -> (2N, C/2, H, W)
            x = bench.layer_inputs("lrn", shape, settings, np.random.default_rng(0), np.float32)["x"]
            assert x.shape == model_shape == (2 * batch, shape[1] // 2) + shape[2:]
        elif kind == "dropout":                       # the model views its units column by column
            assert math.prod(model_shape) == math.prod(shape)
        elif kind == "fc":                            # fc6 is given conv5's maps unflattened
            assert model_shape[0] == shape[0] and math.prod(model_shape) == math.prod(shape)
        else:
            assert model_shape == shape, kind
    assert plan[-1][2] == logits.shape == (batch, 10)
    convs = [settings for _, kind, _, settings in plan if kind == "conv"]
    assert [c["filters"] for c in convs] == [layer.maps for layer in model.layers[:5]]
    assert [c["groups"] for c in convs] == [1, 2, 1, 2, 2]


def test_small_preset_keeps_the_convolution_columns(capsys):
    assert bench.main(["layers", "--preset", "small", "--batch", "2", "--repeat", "1", "--rounds", "1",
                       "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "(small preset)" in out and "PyTorch: not measured (--no-torch)" in out
    targets = out[out.index("targets:"):]
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        line = re.search(rf"^{name}\s.*$", targets, re.MULTILINE).group(0)
        gflops, nearby, ratio = (float(v) for v in line.split()[1:4])
        assert gflops > 0 and nearby > 0
        # x GEMM is the ratio of the two rates (printed to 0.1: allow for their rounding)
        assert (gflops - 0.05) / (nearby + 0.05) - 0.005 <= ratio <= (gflops + 0.05) / (nearby - 0.05) + 0.005
        assert re.search(r"\d+\.\d%", line)            # the unfolding share


def test_layers_batch_defaults_to_the_presets(monkeypatch):
    seen = []

    class Stop(Exception):
        pass

    def record(batch, repeat, rounds, preset, torch):
        seen.append((preset, batch))
        raise Stop

    monkeypatch.setattr(layer_timing, "layer_benchmark", record)
    for preset in ("paper", "small"):
        with pytest.raises(Stop):
            bench.main(["layers", "--preset", preset, "--no-torch"])
    with pytest.raises(Stop):
        bench.main(["layers", "--preset", "small", "--batch", "5", "--no-torch"])
    assert seen == [("paper", 32), ("small", 64), ("small", 5)]


def test_model_steps_are_timed_in_turns():
    # every round runs each network's steps in turn, so a change in the machine hits all alike
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ("ours", "theirs")}
    samples = bench.time_in_rounds(steps, per_round=2, rounds=3)
    assert calls == ["ours"] * 2 + ["theirs"] * 2 + (["ours"] * 2 + ["theirs"] * 2) * 3
    assert {name: len(times) for name, times in samples.items()} == {"ours": 6, "theirs": 6}


def test_model_ratio_is_their_step_time_over_ours(capsys):
    samples = {"ours, one column": [0.1, 0.1, 0.2, 0.2], "PyTorch, grouped convs": [0.3, 0.3, 0.2, 0.2]}
    bench.print_model_ratio(samples, per_round=2, device="cpu", version="PyTorch x")
    out = capsys.readouterr().out
    # medians 0.15 and 0.25: 1.67 over all; rounds 3.00 and 1.00
    assert "throughput: 1.67 (target >= 1.30: met); rounds 1.00-3.00" in out


def test_scaling_model_and_command(capsys):
    """The ring-allreduce model: 2 (N-1)/N S / W; N_half = 1 + T W / (2 S), where computing
    T / N equals the allreduce; and the command prints it for a given step time."""
    from minitorch_alexnet.bench import scaling
    from minitorch_alexnet.bench.cli import main as bench_main
    assert scaling.allreduce_seconds(250e6, 2, 1.25e9) == pytest.approx(0.2)
    assert scaling.allreduce_seconds(250e6, 8, 1.25e9) == pytest.approx(0.35)
    n_half = scaling.half_efficiency_processes(2.0, 250e6, 1.25e9)
    assert n_half == pytest.approx(6.0)
    assert 2.0 / n_half == pytest.approx(scaling.allreduce_seconds(250e6, n_half, 1.25e9))
    assert scaling.speedup(2.0, 250e6, 6, 1.25e9) == pytest.approx(3.0)
    assert bench_main(["scaling", "--preset", "paper", "--step-ms", "2000"]) == 0
    out = capsys.readouterr().out
    assert "60,965,224 parameters, allreduced 243.9 MB per step" in out
    assert "10 Gb/s Ethernet" in out and "NVLink" in out and "(given)" in out
