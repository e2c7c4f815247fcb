"""``python -m minitorch_alexnet.experiments``: every experiment runs with --quick and prints
its table under the paper's claim and writes its JSON and PNG; the numbers in the table are
the runs' own; a rerun reuses finished runs; the measures against naive computations."""
import json
import math
import os
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitorch_alexnet.experiments import EXPERIMENTS
from minitorch_alexnet.experiments.__main__ import main
from minitorch_alexnet.experiments.report import paired_differences, spread
from minitorch_alexnet.experiments.runner import epochs_to_reach, slug

pytestmark = pytest.mark.experiments
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_names_every_experiment_with_its_claim(capsys):
    status, out, _ = run(capsys, "--list")
    assert status == 0
    for name in ("relu-vs-tanh", "lrn", "overlap-pool", "dropout", "pca-colour", "ten-crop",
                 "two-columns"):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert EXPERIMENTS[name].claim in line and EXPERIMENTS[name].source in line


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_quick_run_prints_the_table_and_writes_its_files(name, tmp_path, capsys):
    experiment = EXPERIMENTS[name]
    status, out, err = run(capsys, name, "--quick", "--out", str(tmp_path))
    assert status == 0, err
    lines = out.splitlines()
    claim = lines.index(f"the paper ({experiment.source}): {experiment.claim}")
    assert lines[claim + 2].startswith("variant") and "test error" in lines[claim + 2]
    rows = {label: lines[claim + 3 + k] for k, (label, _) in enumerate(experiment.variants)}
    folder = tmp_path / name
    record = json.loads((folder / f"{name}.json").read_text())
    assert record["experiment"] == name and record["seeds"] == [0, 1]
    assert record["commit"] is None or re.fullmatch(r"[0-9a-f]{7,40}", record["commit"])
    for label, row in rows.items():
        assert row.startswith(label)
        runs = record["runs"][label]
        assert len(runs) == 2
        mean = 100 * np.mean([r["test_error"] for r in runs])
        assert f"{mean:.1f} ± " in row                     # the table shows the runs' numbers
        for r in runs:
            assert 0 <= r["test_error"] <= 1 and len(r["curves"]["train_error"]) == 2
            assert os.path.exists(os.path.join(r["run_dir"], "checkpoints", "last.npz"))
    png = (folder / f"{name}.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5000


def test_variants_of_one_experiment_differ_only_in_their_setting(tmp_path, capsys):
    """Same seed, same data, same initial weights apart from the variant: the LRN runs'
    configs differ in ``lrn`` alone."""
    assert run(capsys, "lrn", "--quick", "--seeds", "1", "--out", str(tmp_path))[0] == 0
    configs = [json.loads((tmp_path / "lrn" / f"{slug(label)}-seed0" / "config.json").read_text())
               for label, _ in EXPERIMENTS["lrn"].variants]
    different = {k for k in configs[0] if configs[0][k] != configs[1][k]}
    assert different == {"lrn", "run_dir"}


def test_a_rerun_reuses_finished_runs_and_refuses_other_settings(tmp_path, capsys):
    args = ("pca-colour", "--quick", "--seeds", "1", "--out", str(tmp_path))
    assert run(capsys, *args)[0] == 0
    first = json.loads((tmp_path / "pca-colour" / "pca-colour.json").read_text())["runs"]
    status, out, _ = run(capsys, *args)
    assert status == 0
    again = json.loads((tmp_path / "pca-colour" / "pca-colour.json").read_text())["runs"]
    assert again == first                        # read back, not trained again (same seconds)
    status, _, err = run(capsys, *args, "--width", "0.25")
    assert status == 2 and "holds a run with other settings: fc_width 0.125 (now 0.25), width 0.125 (now 0.25)" in err


def test_unknown_data_directory_is_named(tmp_path, capsys):
    status, _, err = run(capsys, "lrn", "--quick", "--dataset", "folder", "--data-dir",
                         str(tmp_path / "nowhere"), "--out", str(tmp_path))
    assert status == 2 and "nowhere" in err


def naive_epochs_to_reach(errors, target, resolution=100000):
    """Walk the piecewise-linear curve through (k + 1, errors[k]) in small steps."""
    if errors and errors[0] <= target:
        return 1.0
    for k in range(1, len(errors)):
        for step in range(1, resolution + 1):
            t = step / resolution
            value = errors[k] if step == resolution else errors[k - 1] + t * (errors[k] - errors[k - 1])
            if value <= target:                 # (at t = 1 the epoch's own error, not a rounded sum)
                return k + t
    return None


@given(st.lists(st.floats(0, 1), min_size=1, max_size=8), st.floats(0.05, 0.95))
def test_epochs_to_reach_against_a_walk_along_the_curve(errors, target):
    fast, slow = epochs_to_reach(errors, target), naive_epochs_to_reach(errors, target)
    assert (fast is None) == (slow is None)
    if fast is not None:
        assert math.isclose(fast, slow, abs_tol=2e-5)


def test_epochs_to_reach_examples():
    assert epochs_to_reach([0.9, 0.5, 0.2]) == pytest.approx(2 + 0.25 / 0.3)   # epochs 2 and 3
    assert epochs_to_reach([0.2, 0.1]) == 1.0
    assert epochs_to_reach([0.9, 0.8]) is None


def test_spread_and_paired_differences_by_hand():
    stats = spread([0.1, 0.3, None])
    assert stats["count"] == 2 and stats["mean"] == pytest.approx(0.2)
    assert stats["std"] == pytest.approx(math.sqrt(((0.1 - 0.2) ** 2 + (0.3 - 0.2) ** 2) / 1))
    runs = {"a": [{"test_error": 0.10, "epochs_to_25": 2.0}, {"test_error": 0.20, "epochs_to_25": 4.0}],
            "b": [{"test_error": 0.15, "epochs_to_25": 6.0}, {"test_error": 0.22, "epochs_to_25": None}]}
    (line,) = paired_differences(runs)
    # seed by seed: +5 and +2 points, mean 3.5, std sqrt(4.5) = 2.1; ratio only where both reached
    assert line == "b minus a: test error +3.5 ± 2.1 points; epochs to 25% training error x3.00"


def test_colour_augmentation_is_refused_on_grey_images(tmp_path, capsys):
    status, _, err = run(capsys, "pca-colour", "--quick", "--dataset", "fashion-mnist",
                         "--out", str(tmp_path))
    assert status == 2 and "pca-colour needs colour images; fashion-mnist is grey" in err
