"""``python -m minitorch_alexnet.bench`` keeps working: tiny batches, one repeat, every layer
named in the table and no NaN or infinite timing. Not a timed test."""
import math
import os
import re

from minitorch_alexnet import bench

LAYERS = ["conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2", "conv3", "relu3",
          "conv4", "relu4", "conv5", "relu5", "pool5", "fc6", "relu6", "dropout6", "fc7", "relu7",
          "dropout7", "fc8", "softmax-xent"]


def numbers(text):
    return [float(token) for token in re.findall(r"(?<![\w.])-?\d+\.\d+(?![\w.])", text)]


def test_layers_table_names_every_layer(capsys, monkeypatch):
    monkeypatch.setattr(bench, "GEMM_SHAPE", (256, 256, 256))     # keep the reference product quick
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
    monkeypatch.setattr(bench, "GEMM_SHAPE", (128, 128, 128))
    rows, rates = bench.layer_benchmark(batch=1, repeat=1, rounds=3)
    convs = [row for row in rows if row["kind"] == "conv"]
    assert [row["name"] for row in convs] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    for row in convs:
        assert len(row["round_ratios"]) == 3 and len(row["round_shares"]) == 3
        assert all(0 < share < 1 for share in row["round_shares"])
        assert min(row["round_shares"]) <= row["unfold_share"] <= max(row["round_shares"])
        assert len(row["round_probes"]) == 3


def test_cross_core_write_ratio_is_positive_or_unmeasurable(monkeypatch):
    monkeypatch.setattr(bench, "PROBE_BYTES", 2**16)
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    ratio = bench.cross_core_write_ratio(repeat=2)
    assert ratio is None or (math.isfinite(ratio) and ratio > 0)
    if cores is not None:                      # the probe pins the main thread, then lets go
        assert os.sched_getaffinity(0) == cores


def test_model_table_has_both_column_layouts(capsys):
    assert bench.main(["model", "--preset", "small", "--batch", "4", "--steps", "1", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "ours, one column" in out and "ours, two columns" in out
    rows = [line for line in out.splitlines() if line.startswith("ours, ")]
    assert len(rows) == 2
    for row in rows:
        values = numbers(row)
        assert values and all(math.isfinite(v) and v >= 0 for v in values)
