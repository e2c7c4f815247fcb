"""``python -m minitorch_alexnet.bench input`` keeps working: tiny batches, one round, every
figure printed and positive. Not a timed test (nothing is compared with the 0.9 target)."""
import argparse
import math
import re

import pytest

from minitorch_alexnet.bench import input as bench_input

pytestmark = [pytest.mark.bench, pytest.mark.data]

LINES = {
    "(a) loader alone, whole batch": 2,       # batches/s, images/s
    "(a) loader alone, image by image": 2,
    "(b) bare training step": 2,              # steps/s, images/s
    "(c) trainer loop (loader + step)": 2,
    "(c) / (b) =": 2,                        # the ratio, the target
}


def figures(line):
    return [float(token) for token in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", line)]


def test_input_benchmark_prints_positive_figures(capsys):
    parser = bench_input.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--batch", "4", "--steps", "1", "--rounds", "1",
                              "--loader-batches", "3", "--workers", "1"])
    assert bench_input.run_input(args) == 0
    out = capsys.readouterr().out
    assert "trainer's loader: whole batch, 1 thread(s)" in out
    for start, count in LINES.items():
        line = next((row for row in out.splitlines() if row.startswith(start)), None)
        assert line is not None, f"no line starting {start!r} in:\n{out}"
        values = figures(line[len(start):])
        assert len(values) == count, line
        assert all(math.isfinite(v) and v > 0 for v in values), line
    ratio_line = next(row for row in out.splitlines() if row.startswith("(c) / (b)"))
    assert re.search(r"target >= 0\.9: (met|NOT met)\)", ratio_line)


def test_input_benchmark_rejects_non_positive_sizes(capsys):
    with pytest.raises(SystemExit):
        bench_input.main(["--steps", "0"])
    assert "--steps, --rounds and --loader-batches must be positive" in capsys.readouterr().err
    parser = bench_input.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--loader-batches", "0"])
    with pytest.raises(ValueError, match="must be positive"):
        bench_input.run_input(args)
