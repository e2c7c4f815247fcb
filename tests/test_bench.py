"""``python -m minitorch_alexnet.bench`` keeps working: tiny batches, one repeat, every layer
named in the table and no NaN or infinite timing. Not a timed test."""
import math
import re

from minitorch_alexnet import bench

LAYERS = ["conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2", "conv3", "relu3",
          "conv4", "relu4", "conv5", "relu5", "pool5", "fc6", "relu6", "dropout6", "fc7", "relu7",
          "dropout7", "fc8", "softmax-xent"]


def numbers(text):
    return [float(token) for token in re.findall(r"(?<![\w.])-?\d+\.\d+(?![\w.])", text)]


def test_layers_table_names_every_layer(capsys, monkeypatch):
    monkeypatch.setattr(bench, "GEMM_SHAPE", (256, 256, 256))     # keep the reference product quick
    assert bench.main(["layers", "--batch", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("layer "):]
    for name in LAYERS:
        assert re.search(rf"^{re.escape(name)}\s", table, re.MULTILINE), name
    assert "nan" not in out.lower() and "inf " not in out.lower()
    assert numbers(table) and all(math.isfinite(v) for v in numbers(table))
    assert "BLAS" in out and "OPENBLAS_CORETYPE" in out


def test_model_table_has_both_column_layouts(capsys):
    assert bench.main(["model", "--preset", "small", "--batch", "4", "--steps", "1", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "ours, one column" in out and "ours, two columns" in out
    rows = [line for line in out.splitlines() if line.startswith("ours, ")]
    assert len(rows) == 2
    for row in rows:
        values = numbers(row)
        assert values and all(math.isfinite(v) and v >= 0 for v in values)
