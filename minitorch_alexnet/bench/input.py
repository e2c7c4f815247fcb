"""Does the input pipeline keep up with the training step?

    python -m minitorch_alexnet.bench input [--preset small] [--batch 64] [--steps 3] [--rounds 2]
    python -m minitorch_alexnet.bench.input [the same options]

Everything is set up as ``python -m minitorch_alexnet.train`` sets it up (a ``Trainer`` from a
``TrainConfig`` on the built-in data set: its data sets at the stored size, its ``Preprocess``
with mean image and colour PCA, its loaders, its model), then timed three ways:

(a) the loader alone: batches/s and images/s of ``train_loader.epoch``, built whole (the path
    the trainer uses for in-memory data sets) and image by image, with nothing else running;
(b) bare training steps: ``model.forward(train=True)``, softmax cross-entropy, ``backward``, one
    SGD step, on one batch of real images already on the device (as ``bench.our_train_step``
    does in ``bench/model.py``, with the trainer's model);
(c) the trainer's loop: the loader feeding ``Trainer.train_step`` (the host-to-device copy,
    the step, the check that the loss and the gradients are finite), as ``Trainer`` runs an
    epoch, minus the progress bar and the checkpoints.

(c) / (b) is the share of the bare step's speed that the trainer keeps; the target is 0.9 or
more. (b) and (c) take turns, ``--rounds`` times, so that a change of the machine's state (other
programs, a core taken away) hits both; each figure is the median over the rounds. The first
step of each turn is a warm-up and is not timed.
"""
import argparse
import io
import os
import statistics
import sys
import time

import numpy as np

from .. import functional as F
from ..backend import device_context, keep_freed_memory, to_device
from ..data import DataLoader
from ..model import PRESETS
from ..train_config import TrainConfig
from ..trainer import Trainer
from .machine import synchronize

TARGET_RATIO = 0.9
HELP = "the input pipeline beside the bare training step: loader, steps, trainer loop"


def add_arguments(parser):
    """The options of the ``input`` benchmark, on ``parser`` (a sub-command's parser)."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--batch", type=int, default=64, help="images per batch")
    parser.add_argument("--steps", type=int, default=3,
                        help="timed training steps per round, in (b) and in (c)")
    parser.add_argument("--rounds", type=int, default=2, help="turns of (b) then (c)")
    parser.add_argument("--loader-batches", type=int, default=40,
                        help="batches timed in (a), for each way of building them")
    parser.add_argument("--workers", type=int, default=2, help="the trainer's --workers")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    return parser


def build_trainer(args):
    """A ``Trainer`` as the train command builds it, with just enough images for the timing:
    every round of (c) runs ``steps + 1`` batches of a new epoch, and (a) times
    ``loader_batches`` batches, in one epoch."""
    images = args.batch * max(args.steps + 1, args.loader_batches)
    config = TrainConfig(preset=args.preset, dataset="builtin", batch_size=args.batch,
                         workers=args.workers, device=args.device, progress=False,
                         limit_train=images, limit_val=args.batch)
    return Trainer(config, out=io.StringIO())


def time_loader(loader, batches):
    """Seconds to draw ``batches`` batches from ``loader`` (epoch after epoch), counting from
    the request of the first one, and the number of images they held."""
    images, count, epoch = 0, 0, 0
    start = time.perf_counter()
    while count < batches:
        for _, labels in loader.epoch(epoch):
            images, count = images + len(labels), count + 1
            if count == batches:
                break
        epoch += 1
    return time.perf_counter() - start, images


def time_bare_steps(trainer, x, labels, steps):
    """Seconds of ``steps`` bare training steps on one batch already on the device (after one
    untimed step)."""
    model, optimizer, device = trainer.model, trainer.optimizer, trainer.device

    def step():
        with device_context(device):
            logits = model.forward(x, train=True)
            _, dlogits = F.softmax_cross_entropy(logits, labels)
            model.backward(dlogits, input_grad=False)
        optimizer.step()
        synchronize([device])

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def time_trainer_loop(trainer, epoch, steps):
    """Seconds of ``steps`` iterations of the trainer's loop (next batch from the loader, then
    ``Trainer.train_step``), after one untimed iteration that also fills the loader's window."""
    batches = trainer.train_loader.batches(epoch)
    try:
        trainer.train_step(next(batches), trainer.schedule.lr_for_step(epoch, 0))
        start = time.perf_counter()
        for k in range(1, steps + 1):
            trainer.train_step(next(batches), trainer.schedule.lr_for_step(epoch, k))
        synchronize([trainer.device])
        return time.perf_counter() - start
    finally:
        batches.close()                       # stops the loader's threads


def loader_rates(trainer, batches):
    """(a): {way: (batches/s, images/s)} of the trainer's loader, built whole and image by
    image (the same batches, see ``DataLoader``)."""
    loader = trainer.train_loader
    rates = {}
    for way, batch_path in (("whole batch", True), ("image by image", False)):
        each = DataLoader(trainer.train_set, loader.batch_size, seed=loader.seed,
                          transform=loader.transform, train=True,
                          num_workers=loader.num_workers, batch_path=batch_path)
        seconds, images = time_loader(each, batches)
        rates[way] = (batches / seconds, images / seconds)
    return rates


def step_rates(trainer, steps, rounds):
    """(b) and (c) in turns: the median images/s of each over the rounds."""
    batches = trainer.train_loader.epoch(0)
    x, labels = next(batches)
    batches.close()                           # stops the loader's threads
    x_device, labels_device = to_device(x, trainer.device), to_device(labels, trainer.device)
    bare, loop = [], []
    for round_index in range(rounds):
        bare.append(len(labels) * steps / time_bare_steps(trainer, x_device, labels_device, steps))
        loop.append(len(labels) * steps / time_trainer_loop(trainer, round_index, steps))
    return statistics.median(bare), statistics.median(loop)


def run_input(args):
    """Print (a), (b), (c) and the ratio (c) / (b); returns 0."""
    if min(args.batch, args.steps, args.rounds, args.loader_batches, args.workers + 1) < 1:
        raise ValueError("--batch, --steps, --rounds and --loader-batches must be positive "
                         "and --workers not negative")
    kept = keep_freed_memory()                # as the train command does (backend.py says why)
    trainer = build_trainer(args)
    loader = trainer.train_loader
    print(f"input pipeline: {args.preset} preset, batch {args.batch}, {args.device}, "
          f"{len(trainer.train_set)} built-in images {trainer.train_set.images.shape[1]}px -> "
          f"crops {trainer.config.image_size}px, {os.cpu_count()} cores, NumPy {np.__version__}, "
          f"freed memory {'kept' if kept else 'given back'} (keep_freed_memory)")
    print(f"trainer's loader: {'whole batch' if loader.batch_path else 'image by image'}, "
          f"{loader.threads()} thread(s); (b) and (c): {args.steps} steps x {args.rounds} "
          "rounds, medians")
    for way, (batches_per_s, images_per_s) in loader_rates(trainer, args.loader_batches).items():
        print(f"(a) loader alone, {way:<15} {batches_per_s:>10.1f} batches/s "
              f"{images_per_s:>10.1f} images/s")
    bare, loop = step_rates(trainer, args.steps, args.rounds)
    print(f"(b) bare training step          {bare / args.batch:>10.3f} steps/s   "
          f"{bare:>10.1f} images/s")
    print(f"(c) trainer loop (loader + step) {loop / args.batch:>9.3f} steps/s   "
          f"{loop:>10.1f} images/s")
    verdict = "met" if loop / bare >= TARGET_RATIO else "NOT met"
    print(f"(c) / (b) = {loop / bare:.3f} (target >= {TARGET_RATIO}: {verdict})")
    return 0


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(
        prog="python -m minitorch_alexnet.bench.input", description=HELP))
    args = parser.parse_args(argv)
    try:
        return run_input(args)
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    sys.exit(main())
