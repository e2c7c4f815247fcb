"""Train an experiment's variants over its seeds and measure each run.

One run = one ``Trainer`` (the same loop as ``python -m minitorch_alexnet.train``) in its own
run directory ``OUT/<variant>-seed<k>``, its printout in ``train.log`` there. A run directory
that already holds the finished run is read back instead of trained again; one that holds a
stopped run is continued from its checkpoint (exactly: ``trainer.py`` says why).
"""
import os
import re
import time
from dataclasses import asdict

from ..evaluation import evaluate, evaluation_loader
from ..run_state import holds_a_run, load_run_state
from ..train_config import TrainConfig
from ..trainer import Trainer
from . import TARGET_TRAIN_ERROR

# Settings that do not change what a run computes (a finished run is reused whatever they are).
NOT_COMPARED = ("run_dir", "progress", "workers", "device", "checkpoint_minutes", "extra")


class Stopped(Exception):
    """A run was interrupted (Ctrl-C); its checkpoint is saved and a rerun continues it."""


def slug(label):
    """A variant's label as a folder name: "dropout 0.5 in fc6, fc7" -> "dropout-0-5-in-fc6-fc7"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def run_config(settings, variant_settings, seed, run_dir):
    """The TrainConfig of one run: the experiment's settings, the variant's changes, the seed."""
    values = dict(settings, **variant_settings, seed=seed, run_dir=run_dir, progress=False,
                  checkpoint_minutes=5.0)
    return TrainConfig(**values).resolved()


def check_same_run(saved, config):
    """A run directory reused by a later invocation must hold the same run; name what differs."""
    mine = asdict(config)
    different = {name: (value, mine.get(name)) for name, value in saved.config.items()
                 if name not in NOT_COMPARED and value != mine.get(name)}
    if different:
        shown = ", ".join(f"{name} {old!r} (now {new!r})" for name, (old, new) in different.items())
        raise ValueError(f"{config.run_dir} holds a run with other settings: {shown}; remove it "
                         f"or choose another --out")


def trained(config):
    """A Trainer holding the finished run of ``config``: trained now, continued from its
    checkpoint, or read back. Raises ``Stopped`` if Ctrl-C stopped it."""
    os.makedirs(config.run_dir, exist_ok=True)
    saved = None
    if holds_a_run(config.run_dir):
        saved = load_run_state(config.run_dir, warn=lambda text: None)
        check_same_run(saved, config)
    with open(os.path.join(config.run_dir, "train.log"), "a") as log:
        trainer = Trainer(config, resume_from=saved, out=log)
        if trainer.epoch < config.epochs and trainer.run() != 0:
            raise Stopped(f"stopped in {config.run_dir}; run the same command again to continue")
    return trainer


def epochs_to_reach(errors, target=TARGET_TRAIN_ERROR):
    """When the training error first reached ``target``, in epochs; None if it never did.

    ``errors[k]`` is the training error of epoch k + 1 (the running error while it trained),
    placed at the end of that epoch. Between the end of epoch k, error e_k > target, and the end
    of epoch k + 1, error e_(k+1) <= target, the error is taken as a straight line, which
    crosses the target at k + (e_k - target) / (e_k - e_(k+1)). Reached in epoch 1: 1.0."""
    for k, error in enumerate(errors):
        if error <= target:
            if k == 0:
                return 1.0
            before = errors[k - 1]
            return k + (before - target) / (before - error)
    return None


def measure(trainer):
    """One finished run's numbers, from its metrics history."""
    history = trainer.history
    last = history[-1]
    return {
        "test_error": last["val_top1_error"], "test_top5_error": last["val_top5_error"],
        "train_error": last["train_top1_error"],
        "test_loss": last["val_loss"], "train_loss": last["train_loss"],
        "epochs_to_25": epochs_to_reach([row["train_top1_error"] for row in history]),
        "train_seconds": sum(row["seconds"] for row in history),
        "curves": {"train_error": [row["train_top1_error"] for row in history],
                   "test_error": [row["val_top1_error"] for row in history]},
        "run_dir": trainer.config.run_dir,
    }


def ten_views(trainer):
    """The finished run's test error with the centre crop and with the 10-view average (the
    paper's test-time procedure), each with its evaluation time."""
    c = trainer.config
    results = {}
    for label, ten_crop in (("centre crop", False), ("10 views", True)):
        loader = evaluation_loader(trainer.val_set, trainer.preprocess, c.batch_size,
                                   ten_crop=ten_crop, workers=c.workers, seed=c.seed)
        started = time.perf_counter()
        result = evaluate(trainer.model, loader, trainer.device, ten_crop=ten_crop)
        results[label] = dict(measure(trainer), test_error=result["top1_error"],
                              test_top5_error=result["top5_error"], test_loss=result["loss"],
                              eval_seconds=time.perf_counter() - started)
    return results


def run_experiment(experiment, settings, seeds, out, say=print):
    """Every variant of ``experiment`` over ``seeds``: {label: [one run's numbers per seed]}.
    Seeds go round the variants (seed 0 of every variant first), so that a stopped experiment
    already compares the variants on the seeds done."""
    runs = {label: [] for label, _ in experiment.variants}
    for seed in seeds:
        if experiment.ten_crop:                  # one model per seed, evaluated two ways
            config = run_config(settings, {}, seed, os.path.join(out, f"recipe-seed{seed}"))
            for label, numbers in ten_views(trained(config)).items():
                runs[label].append(numbers)
            say(f"  seed {seed}: trained and evaluated both ways")
            continue
        for label, variant_settings in experiment.variants:
            config = run_config(settings, variant_settings, seed,
                                os.path.join(out, f"{slug(label)}-seed{seed}"))
            numbers = measure(trained(config))
            runs[label].append(numbers)
            say(f"  {label}, seed {seed}: test error {100 * numbers['test_error']:.1f}%, "
                f"training error {100 * numbers['train_error']:.1f}%, "
                f"{numbers['train_seconds']:.0f} s")
    return runs
