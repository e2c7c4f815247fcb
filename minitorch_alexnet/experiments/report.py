"""An experiment's results: the table printed under the paper's claim, ``NAME.json`` and
``NAME.png``."""
import json
import os
import subprocess

import numpy as np

from ..checkpoint import write_text_atomically
from ..plots import pyplot, save_figure
from . import TARGET_TRAIN_ERROR

COLUMNS = (("test_error", "test error", "%"), ("test_top5_error", "top-5", "%"),
           ("train_error", "train error", "%"),
           ("epochs_to_25", f"epochs to {100 * TARGET_TRAIN_ERROR:.0f}% train err", ""),
           ("train_seconds", "train time", " s"))


def spread(values):
    """Mean, standard deviation (over seeds, n - 1 in the denominator; 0 for one seed), min and
    max of the values that exist (a run that never reached 25% has None), and how many."""
    present = np.array([v for v in values if v is not None], dtype=float)
    if not len(present):
        return {"mean": None, "std": None, "min": None, "max": None, "count": 0}
    std = float(present.std(ddof=1)) if len(present) > 1 else 0.0
    return {"mean": float(present.mean()), "std": std, "min": float(present.min()),
            "max": float(present.max()), "count": int(len(present))}


def summarise(runs):
    """{variant: {number: spread over seeds}} for each column of the table."""
    return {label: {key: spread([run[key] for run in numbers]) for key, _, _ in COLUMNS}
            for label, numbers in runs.items()}


def cell(stats, unit, runs):
    if stats["mean"] is None:
        return "never"
    scale = 100 if unit == "%" else 1
    digits = 0 if unit == " s" else 1
    text = f"{scale * stats['mean']:.{digits}f} ± {scale * stats['std']:.{digits}f}{unit}"
    return text + (f" ({stats['count']}/{runs} seeds)" if stats["count"] < runs else "")


def paired_differences(runs):
    """Each variant against the first, seed by seed: the mean and spread of the difference in
    test error (points), and the ratio of the epochs to 25% training error."""
    labels = list(runs)
    first = runs[labels[0]]
    lines = []
    for label in labels[1:]:
        gaps = [b["test_error"] - a["test_error"] for a, b in zip(first, runs[label])]
        stats = spread(gaps)
        line = (f"{label} minus {labels[0]}: test error {100 * stats['mean']:+.1f} ± "
                f"{100 * stats['std']:.1f} points")
        ratios = [b["epochs_to_25"] / a["epochs_to_25"] for a, b in zip(first, runs[label])
                  if a["epochs_to_25"] and b["epochs_to_25"]]
        if ratios:
            line += f"; epochs to 25% training error x{np.mean(ratios):.2f}"
        lines.append(line)
    return lines


def table(experiment, runs, describe_settings):
    """The printed result: the paper's claim, what was run, one line per variant, the paired
    differences."""
    summary = summarise(runs)
    n_runs = max(len(numbers) for numbers in runs.values())
    rows = [[label] + [cell(summary[label][key], unit, n_runs) for key, _, unit in COLUMNS]
            for label in runs]
    header = ["variant"] + [title for _, title, _ in COLUMNS]
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    line = lambda row: "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip()
    return "\n".join([f"the paper ({experiment.source}): {experiment.claim}",
                      f"here: {describe_settings}", line(header)] + [line(r) for r in rows]
                     + paired_differences(runs))


def commit_of_package():
    """The git commit the package runs from (None outside a git checkout)."""
    try:
        folder = os.path.dirname(os.path.abspath(__file__))
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder,
                                capture_output=True, text=True, timeout=10)
        return result.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_json(path, experiment, runs, settings, seeds, wall_seconds, text, commit):
    """Everything about the experiment in one file; ``commit``: the code that trained (read
    when the command started, as later commits in the same checkout would not have run)."""
    record = {"experiment": experiment.name, "claim": experiment.claim, "source": experiment.source,
              "settings": settings, "seeds": list(seeds), "wall_seconds": wall_seconds,
              "commit": commit, "table": text, "summary": summarise(runs),
              "runs": runs}
    write_text_atomically(path, json.dumps(record, indent=1))


def plot(path, experiment, runs):
    """Error curves (training and test error against epochs, each seed faint, the mean bold),
    or for ten-crop each seed's test error one way and the other, joined by a line."""
    plt = pyplot()
    if experiment.ten_crop:         # one model per seed, tested two ways: a line per seed
        figure, axes = plt.subplots(figsize=(5, 4))
        errors = np.array([[100 * run["test_error"] for run in numbers] for numbers in runs.values()])
        for seed, column in enumerate(errors.T):
            axes.plot(range(len(runs)), column, "o-", color="gray", alpha=0.6,
                      label="one seed" if seed == 0 else None)
        axes.plot(range(len(runs)), errors.mean(axis=1), "s-", color="C0", lw=2, label="mean")
        axes.set_xticks(range(len(runs)), labels=list(runs))
        axes.set_xlim(-0.5, len(runs) - 0.5)
        axes.set(ylabel="test error (%)", title=f"{experiment.name}: each seed's model, tested two ways")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        save_figure(plt, figure, path)
        return
    figure, panels = plt.subplots(1, 2, figsize=(11, 4))
    for colour, (label, numbers) in enumerate(runs.items()):
        for axes, key in zip(panels, ("train_error", "test_error")):
            curves = np.array([run["curves"][key] for run in numbers]) * 100
            epochs = np.arange(1, curves.shape[1] + 1)
            for curve in curves:
                axes.plot(epochs, curve, color=f"C{colour}", alpha=0.25)
            axes.plot(epochs, curves.mean(axis=0), color=f"C{colour}", lw=2, label=label)
    if experiment.name == "relu-vs-tanh":
        panels[0].axhline(100 * TARGET_TRAIN_ERROR, color="gray", ls="--", lw=1)
    for axes, title in zip(panels, ("training error", "test error")):
        axes.set(xlabel="epoch", ylabel=f"{title} (%)", title=f"{experiment.name}: {title}")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    save_figure(plt, figure, path)
