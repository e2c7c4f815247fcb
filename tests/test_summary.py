"""Lesson 9: counting AlexNet's parameters and multiply-accumulates (``summary.py``).

A convolution's output pixel costs (input maps its filter sees) x KH x KW multiply-accumulates
(MACs) per filter, so a grouped layer (conv2, conv4, conv5) costs half of what it would
ungrouped; a fully connected layer costs inputs x outputs. Worked out by hand for the paper
network (227x227x3, 1000 classes):

    conv1  55*55 * 96  * (3*11*11)    = 105,415,200
    conv2  27*27 * 256 * (48*5*5)     = 223,948,800
    conv3  13*13 * 384 * (256*3*3)    = 149,520,384
    conv4  13*13 * 384 * (192*3*3)    = 112,140,288
    conv5  13*13 * 256 * (192*3*3)    =  74,760,192
    fc6    9216 * 4096                =  37,748,736
    fc7    4096 * 4096                =  16,777,216
    fc8    4096 * 1000                =   4,096,000
    total                               724,406,816  (~724.4 million)

Checked: ``python -m minitorch_alexnet.summary`` prints 60,965,224 parameters and these MACs,
layer by layer and split between the columns (fc8 all in column 1), with the paper's output
shapes; ``layer_rows`` adds up to the model's own parameter count for other presets, inputs
and widths; the command line takes the small preset's options and rejects unknown ones.

Run with ``pytest -m model``.
"""
import subprocess
import sys

import pytest

from minitorch_alexnet.model import AlexNet
from minitorch_alexnet.summary import format_table, layer_rows, main

pytestmark = pytest.mark.model

PAPER_MACS = {
    "conv1": 55 * 55 * 96 * (3 * 11 * 11),
    "conv2": 27 * 27 * 256 * (48 * 5 * 5),
    "conv3": 13 * 13 * 384 * (256 * 3 * 3),
    "conv4": 13 * 13 * 384 * (192 * 3 * 3),
    "conv5": 13 * 13 * 256 * (192 * 3 * 3),
    "fc6": 9216 * 4096,
    "fc7": 4096 * 4096,
    "fc8": 4096 * 1000,
}
PAPER_PARAMS = {   # weights + biases
    "conv1": 96 * 3 * 11 * 11 + 96,
    "conv2": 256 * 48 * 5 * 5 + 256,
    "conv3": 384 * 256 * 3 * 3 + 384,
    "conv4": 384 * 192 * 3 * 3 + 384,
    "conv5": 256 * 192 * 3 * 3 + 256,
    "fc6": 9216 * 4096 + 4096,
    "fc7": 4096 * 4096 + 4096,
    "fc8": 4096 * 1000 + 1000,
}
PAPER_OUTPUTS = {
    "conv1 + ReLU": "96x55x55", "conv2 + ReLU": "256x27x27", "conv3 + ReLU": "384x13x13",
    "conv4 + ReLU": "384x13x13", "conv5 + ReLU": "256x13x13", "fc6 + ReLU + dropout": "4096",
    "fc7 + ReLU + dropout": "4096", "fc8": "1000",
}


@pytest.fixture(scope="module")
def paper_output():
    """What ``python -m minitorch_alexnet.summary`` prints (builds the full network, ~4 s)."""
    done = subprocess.run([sys.executable, "-m", "minitorch_alexnet.summary"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def parse_rows(text):
    """Rows of the table: (label, output, params col1, params col2, MACs col1, MACs col2)."""
    rows = []
    for line in text.splitlines()[2:]:
        label, fields = line[:26].strip(), line[26:].split()
        if label in ("", "total") or len(fields) != 5:
            continue
        output, *numbers = fields
        rows.append((label, output, *(int(n.replace(",", "")) for n in numbers)))
    return rows


def test_hand_arithmetic():
    assert sum(PAPER_MACS.values()) == 724_406_816
    assert sum(PAPER_PARAMS.values()) == 60_965_224


def test_command_line_paper_totals(paper_output):
    assert "60,965,224" in paper_output
    assert "724,406,816" in paper_output
    assert "724.4 M" in paper_output
    total = next(line for line in paper_output.splitlines() if line.startswith("total"))
    assert total.split()[1:] == ["60,965,224", "724,406,816"]


def test_command_line_paper_rows(paper_output):
    rows = parse_rows(paper_output)
    outputs = {label: output for label, output, *_ in rows}
    assert outputs["input"] == "3x227x227"
    for label, output in PAPER_OUTPUTS.items():
        assert outputs[label] == output, label
    for label, output, p1, p2, m1, m2 in rows:
        layer = label.split()[0]
        if layer not in PAPER_MACS:                     # input, LRN and pooling: free
            assert (p1, p2, m1, m2) == (0, 0, 0, 0), label
            continue
        assert p1 + p2 == PAPER_PARAMS[layer], label
        assert m1 + m2 == PAPER_MACS[layer], label
        if layer == "fc8":
            assert (p2, m2) == (0, 0)                   # fc8 is not split: column 1 holds it
        else:
            assert (p1, m1) == (p2, m2), label          # the columns are halves
    assert [label for label, *_ in rows].count("LRN") == 2      # after conv1 and conv2
    pools = [output for label, output, *_ in rows if "max-pool" in label]
    assert pools == ["96x27x27", "256x13x13", "256x6x6"]


@pytest.mark.parametrize("kwargs", [
    dict(num_classes=10, preset="small"),
    dict(num_classes=10, preset="small", in_channels=1, input_size=28, width=0.5),
    dict(num_classes=5, preset="paper", width=0.0625),
])
def test_layer_rows_add_up_to_the_model(kwargs):
    model = AlexNet(**kwargs)
    rows = layer_rows(model)
    assert sum(p1 + p2 for _, _, (p1, p2), _ in rows) == model.num_parameters()
    assert rows[0][1] == (model.in_channels, model.input_size, model.input_size)
    assert rows[-1][1] == (model.num_classes,)
    state = model.state_dict()
    macs = {label.split()[0]: m1 + m2 for label, _, _, (m1, m2) in rows}
    pool5 = [shape for label, shape, _, _ in rows if "max-pool" in label][-1]
    assert pool5 == model.feature_shape
    assert macs["fc6"] == state["fc6.weight"].size
    # conv3 sees both columns: each filter reads all of conv2's maps.
    conv3 = next(shape for label, shape, _, _ in rows if label.startswith("conv3"))
    assert macs["conv3"] == conv3[1] * conv3[2] * state["conv3.weight"].size
    text = format_table(model)
    assert f"{model.num_parameters():,} parameters" in text


def test_command_line_small_preset(capsys):
    assert main(["--preset", "small", "--num-classes", "10", "--in-channels", "1",
                 "--input-size", "28", "--width", "0.5"]) == 0
    out = capsys.readouterr().out
    model = AlexNet(num_classes=10, preset="small", in_channels=1, input_size=28, width=0.5)
    assert "input=1x28x28" in out
    assert f"{model.num_parameters():,} parameters" in out


def test_command_line_rejects_unknown_preset(capsys):
    with pytest.raises(SystemExit) as error:
        main(["--preset", "vgg"])
    assert error.value.code == 2
    assert "vgg" in capsys.readouterr().err


def test_command_line_names_an_input_too_small_for_the_preset(capsys):
    with pytest.raises(SystemExit) as error:
        main(["--input-size", "28"])                 # the paper's layers need far more than 28
    assert error.value.code == 2
    assert "a 28x28 input is too small for these layers: conv2's pool" in capsys.readouterr().err
