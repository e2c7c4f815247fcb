"""``python -m minitorch_alexnet.experiments NAME``: see ``experiments/__init__.py``.

Exit status: 0 done; 2 unusable arguments or data (one line says which); 130 stopped by
Ctrl-C (the running run saved a checkpoint; the same command continues)."""
import argparse
import os
import sys
import time

from ..backend import keep_freed_memory
from ..checkpoint import CheckpointError
from ..data import DATASETS, DataError
from . import COMMON, EXPERIMENTS, QUICK
from .report import commit_of_package, plot, table, write_json
from .runner import Stopped, run_experiment

FLAGS = ("dataset", "data_dir", "epochs", "width", "limit_train", "limit_val", "batch_size",
         "device", "workers")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m minitorch_alexnet.experiments",
        description="Re-run one of the AlexNet paper's comparisons: train its variants with the "
                    "same data and seeds, print the paper's claim above our table, write "
                    "NAME.json and NAME.png.")
    p.add_argument("name", nargs="?", choices=sorted(EXPERIMENTS) + ["all"],
                   help="the experiment ('all': every one in turn)")
    p.add_argument("--list", action="store_true", help="list the experiments and their claims")
    p.add_argument("--dataset", choices=DATASETS,
                   help="default: fashion-mnist, or builtin for relu-vs-tanh and pca-colour")
    p.add_argument("--data-dir", help="where the data set is (see python -m minitorch_alexnet.train)")
    p.add_argument("--seeds", type=int, help="seeds 0 .. N-1 (default: 3; 2 with --quick)")
    p.add_argument("--epochs", type=int, help="default: 8 on fashion-mnist (dropout: 30), 10 on builtin")
    p.add_argument("--width", type=float,
                   help="the small preset's width (default: 0.25 on fashion-mnist, 0.5 on builtin)")
    p.add_argument("--limit-train", type=int,
                   help="train on the first N images (default on fashion-mnist: 10000; dropout: 1000)")
    p.add_argument("--limit-val", type=int, help="test on the first N held-out images (fashion-mnist: 5000)")
    p.add_argument("--batch-size", type=int, help="default: the trainer's, 64")
    p.add_argument("--quick", action="store_true",
                   help="256 pictures, 2 epochs, width 0.125: checks that it runs (seconds), "
                        "measures nothing")
    p.add_argument("--out", default=os.path.join("runs", "experiments"),
                   help="results go to OUT/NAME (default: runs/experiments)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, default=2, help="threads decoding and augmenting images")
    return p


def settings_for(experiment, args):
    """The TrainConfig settings of the experiment's runs: the common defaults, the
    experiment's own, --quick's, then the flags given."""
    settings = dict(COMMON, **experiment.settings)
    if args.quick:
        settings.update(QUICK)
    settings.update({name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None})
    settings["fc_width"] = settings["width"]       # the network the experiments measured
    if experiment.colour and settings["dataset"] == "fashion-mnist":
        raise ValueError(f"{experiment.name} needs colour images; fashion-mnist is grey "
                         f"(try --dataset builtin, cifar10 or folder)")
    return settings


def describe(settings, seeds):
    images = settings.get("limit_train") or "all"
    return (f"{settings['dataset']} ({images} training images), small preset at width "
            f"{settings['width']:g}, {settings['epochs']} epochs, seeds "
            f"{', '.join(map(str, seeds))}")


def run_one(experiment, args, commit):
    seeds = range(args.seeds or (2 if args.quick else 3))
    settings = settings_for(experiment, args)
    out = os.path.join(args.out, experiment.name)
    print(f"{experiment.name}: {describe(settings, seeds)}; runs in {out}", flush=True)
    started = time.perf_counter()
    runs = run_experiment(experiment, settings, seeds, out, say=lambda line: print(line, flush=True))
    text = table(experiment, runs, describe(settings, seeds))
    print("\n" + text + "\n")
    json_path, png_path = (os.path.join(out, f"{experiment.name}.{ext}") for ext in ("json", "png"))
    write_json(json_path, experiment, runs, settings, seeds, time.perf_counter() - started, text,
               commit)
    plot(png_path, experiment, runs)
    print(f"wrote {json_path} and {png_path} ({time.perf_counter() - started:.0f} s)")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list or not args.name:
        for experiment in EXPERIMENTS.values():
            print(f"{experiment.name:14s} {experiment.claim} ({experiment.source})")
        return 0
    keep_freed_memory()
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    commit = commit_of_package()
    try:
        for name in names:
            run_one(EXPERIMENTS[name], args, commit)
    except Stopped as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return 130
    except (DataError, CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
