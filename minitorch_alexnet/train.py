"""``python -m minitorch_alexnet.train``: train AlexNet with the paper's recipe.

With no arguments it trains the small preset on the built-in generated data set (no download)
on the CPU and prints the final validation accuracy. Examples::

    python -m minitorch_alexnet.train
    python -m minitorch_alexnet.train --dataset fashion-mnist --time-budget 30
    python -m minitorch_alexnet.train --dataset cifar10 --data-dir ~/data/cifar-10-batches-py
    python -m minitorch_alexnet.train --dataset folder --data-dir ~/data/cats-vs-dogs/train \\
        --preset paper --device cuda
    python -m minitorch_alexnet.train --preset paper --dataset folder --data-dir imagenet/train \\
        --val-dir imagenet/val --columns cuda:0,cuda:1
    python -m minitorch_alexnet.train --resume runs/builtin-small-20260101-120000
    mpiexec -n 2 python -m minitorch_alexnet.train --dataset fashion-mnist   # 2 processes

Under ``mpiexec -n N`` the N processes train one model together (``distributed.py``):
--batch-size stays the global batch, each process takes its slice of every batch, rank 0
prints and writes the run directory, and any process that fails ends the whole job.
"""
import argparse
import json
import os
import sys
import traceback

from .architecture import ACTIVATIONS, DROPOUT_P, POOLINGS
from .backend import check_device, keep_freed_memory
from . import checkpoint as ckpt
from .checkpoint import CheckpointError, WriteError
from .data import DATASETS, DataError
from .distributed import communicator, for_device
from .run_state import checkpoint_folder, holds_a_run, load_run_state
from .schedule import SCHEDULES
from .train_config import TrainConfig, default_run_dir
from .trainer import Trainer, TrainingStopped

# Flags that may change when a run is resumed; every other setting comes from the checkpoint.
RESUMABLE_OVERRIDES = ("epochs", "device", "columns", "workers", "progress",
                       "checkpoint_minutes")


class DefaultsOnceFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to a flag's help only where it tells something: not when the help
    already states its default (the ones that depend on the preset), not for a default of
    None, and not for on/off switches (whose stored default would read backwards, e.g.
    "--no-pca (default: True)")."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, argparse.SUPPRESS)
                or action.nargs == 0):
            return text
        return text + " (default: %(default)s)"


def add_network_flags(group):
    """The flags that shape the network beyond its preset."""
    add = group.add_argument
    add("--width", type=float, help="scale every layer's maps and units (default: 0.5 small, 1.0 "
                                    "paper)")
    add("--fc-width", type=float, help="scale fc6 and fc7's units apart from the convolutions "
                                       "(default: 2.0 small; --width paper)")
    add("--init", choices=["paper", "he"], help="weight initialisation (default: paper for the paper preset, he for small)")
    add("--activation", choices=ACTIVATIONS, default="relu",
        help="the units after each conv, fc6 and fc7 (tanh: the paper's Figure 1 comparison)")
    add("--no-lrn", dest="lrn", action="store_false", help="no local response normalization")
    add("--pool", choices=sorted(POOLINGS), default="3/2",
        help="max-pooling size/stride: 3/2 overlapping (the paper's), 2/2 not overlapping")
    add("--no-dropout", dest="dropout", action="store_false", help="no dropout in fc6 and fc7")
    add("--dropout", dest="dropout_p", type=float, default=DROPOUT_P, metavar="P",
        help=f"the probability that dropout zeroes a unit of fc6 or fc7 (default: {DROPOUT_P}, "
             "the paper's)")
    add("--one-column", action="store_true",
        help="one column with half the kernels of conv1-4 instead of the paper's two columns")
    add("--dtype", choices=["float32", "float64"], default="float32",
        help="the model's floating-point type (float64: slower; for checking results)")


def add_validation_flags(group):
    """When the run validates, and the test views of its final report."""
    add = group.add_argument
    add("--val-every", type=int, default=1, metavar="N",
        help="validate after every N-th epoch and after the last (the plateau schedule needs 1); "
             "under --time-budget the time saved goes to training")
    add("--ten-crop", action=argparse.BooleanOptionalAction,
        help="also report the accuracy averaged over 10 views (4 corners, centre, and their "
             "mirror images) at the end (default: on for the small preset)")
    add("--flip-test", action=argparse.BooleanOptionalAction,
        help="also report the accuracy of each centre crop averaged with its mirror image at the "
             "end (default: on for the small preset)")


def add_recipe_flags(group):
    """The flags of the recipe beyond the optimiser: inputs, targets, warm-up, time budget."""
    add = group.add_argument
    add("--mean", choices=["image", "channel", "none"], default="image", help="mean subtraction")
    add("--std", action=argparse.BooleanOptionalAction,
        help="divide the inputs by the training pixels' standard deviation instead of 255, so "
             "that they have unit variance (default: on for the small preset)")
    add("--no-pca", dest="pca", action="store_false", help="turn off PCA colour augmentation")
    add("--no-flip", dest="flip", action="store_false", help="turn off random horizontal flips")
    add("--warmup", type=float, metavar="EPOCHS",
        help="ramp the learning rate up linearly over the first EPOCHS epochs (default: 0.5 "
             "small, and at least 100 steps, at most half the run; 0 paper)")
    add("--label-smoothing", type=float, metavar="EPS",
        help="train towards (1 - EPS) on the label and EPS / classes everywhere (default: 0.1 "
             "small, 0 paper)")
    add("--crop-padding", type=int, default=0, metavar="P",
        help="store fashion-mnist, cifar10 and builtin images at their crop size with P black "
             "pixels added on each side, instead of resized to --stored-size: random crops "
             "shift the image itself by up to P pixels, and the centre crop is the image")
    add("--erase", type=float, default=0.0, metavar="P",
        help="random erasing: blank one random rectangle of a training image with probability P")
    add("--time-budget", type=float, metavar="MINUTES",
        help="size the run to MINUTES of wall time: the number of steps is fixed from the "
             "time of its steps after the first half minute, to end 5%% early, and the "
             "schedule ends with it (replaces --epochs)")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m minitorch_alexnet.train",
        description="Train AlexNet (Krizhevsky et al., 2012): random crops and flips, PCA "
                    "colour augmentation, mean-image subtraction, dropout, SGD with momentum "
                    "0.9 and weight decay. --preset paper follows the paper's recipe (weight "
                    "decay 5e-4, learning rate divided by 10 when validation error stops "
                    "improving); the small preset (the default) adds a warm-up, a cosine "
                    "schedule and label smoothing, tuned to train in minutes on a CPU.",
        formatter_class=DefaultsOnceFormatter)
    add = p.add_argument
    add("--preset", choices=["small", "paper"], default="small",
        help="'paper': the 227x227 network of the paper; 'small': the same layers scaled for "
             "32x32 / 28x28 images")
    add("--dataset", choices=DATASETS, default="builtin",
        help="builtin: generated shapes and textures, no download; fashion-mnist: IDX files; "
             "cifar10: cifar-10-batches-py or its .tar.gz; folder: one subfolder per class, "
             "or flat cat.1.jpg / dog.2.jpg files")
    add("--data-dir", help="where the data set is (fashion-mnist default: /usr/share/datasets/fashion-mnist)")
    add("--val-dir", help="a separate validation folder/set; default: the test split, or a seeded hold-out")
    add("--epochs", type=int, help="epochs to train (default: 10 builtin, 20 other small, 90 paper)")
    add("--batch-size", type=int, help="images per SGD step (default: 64 builtin, 256 other small, "
                                       "128 paper)")
    add("--lr", type=float, help="initial learning rate (default: 0.02 builtin, 0.16 other "
                                 "small, 0.01 paper)")
    add("--momentum", type=float, default=0.9, help="SGD momentum")
    add("--weight-decay", type=float, help="weight decay of the paper's rule (default: 2.5e-4 "
                                           "small on real data, 5e-4 builtin and paper)")
    add("--schedule", choices=SCHEDULES,
        help="plateau: divide lr by 10 when validation error stops improving (the paper's, and "
             "the paper preset's default); step: every --lr-step epochs; cosine: cosine decay "
             "over the run (the small preset's default: its runs are a few epochs long)")
    add("--patience", type=int, default=2, help="plateau: epochs without improvement before dividing lr")
    add("--lr-step", type=int, default=30, help="step: divide lr by 10 every this many epochs")
    add("--image-size", type=int, help="network input side, the crop (default: 227 paper, 32 small, 28 fashion-mnist)")
    add("--stored-size", type=int,
        help="side images are stored at before cropping (default: image size + 2 for the small "
             "preset on real data, else image size * 256/227)")
    add("--seed", type=int, default=0, help="seeds data order, augmentation, initialisation and dropout")
    add("--device", default="cpu", help="cpu, cuda or cuda:N")
    add("--columns", help="two devices for the paper's two-column split, e.g. cuda:0,cuda:1")
    add("--limit-train", type=int, help="use only the first N training images (quick runs)")
    add("--limit-val", type=int, help="use only the first N validation images")
    add("--val-fraction", type=float, default=0.1, help="hold-out fraction for folder data without --val-dir")
    add("--workers", type=int, default=2, help="background threads decoding and augmenting images")
    add("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps (0: once per epoch and on Ctrl-C)")
    add("--checkpoint-minutes", type=float, default=10.0,
        help="also checkpoint after the step that ends each this many minutes of training "
             "(0: off); a resume from it is as exact as from any other checkpoint")
    add_recipe_flags(p.add_argument_group("augmentation, regularisation and the run's length"))
    add_validation_flags(p.add_argument_group("validation and the final report"))
    add_network_flags(p.add_argument_group("the network (the paper's comparisons undo one choice each)"))
    add("--max-bad-fraction", type=float, default=0.01, help="fail if more than this fraction of images cannot be read")
    add("--run-dir", help="where metrics, plots and checkpoints go (default: runs/DATASET-PRESET-TIME)")
    add("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    add("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def flags_given(argv):
    """The names of the flags typed on the command line (not filled in from defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def config_from_args(args):
    values = {k: v for k, v in vars(args).items() if k != "resume"}
    if values.get("columns"):
        values["columns"] = [d.strip() for d in values["columns"].split(",")]
        if len(values["columns"]) != 2:
            raise ValueError(f"--columns takes two devices, e.g. cuda:0,cuda:1; got {args.columns!r}")
    return TrainConfig.from_dict(values)


def check_devices(config, comm):
    """Check that the run's devices exist; with several processes, give each its own GPU
    (``cuda:<local rank>``) and return the communicator that sums on it (NCCL)."""
    if comm.size > 1 and config.columns:
        raise ValueError("--columns (two columns in each process) is not supported with several "
                         "processes; use --device cuda, one GPU per process")
    if comm.size > 1 and config.device.startswith("cuda"):
        config.device = f"cuda:{comm.local_rank}"
    for device in config.columns or [config.device]:
        check_device(device)
    return for_device(comm, config.device)


def resumed_config(settings, args, argv, checkpoint_path=None):
    """The TrainConfig of the run whose settings (a dict: a checkpoint's ``config``, or the run's
    config.json) are ``settings``, with the flags that may change on a resume
    (RESUMABLE_OVERRIDES) taken from the command line; prints a note about the flags typed that
    it ignores. ``checkpoint_path``: the checkpoint file read, when --resume names a file."""
    config = TrainConfig.from_dict(settings)
    given = config_from_args(args)
    typed = flags_given(argv)
    ignored = sorted(set(typed) - set(RESUMABLE_OVERRIDES) - {"resume"})
    if ignored:
        print(f"note: resuming keeps the run's own settings; ignoring {', '.join(ignored)}")
    for name in RESUMABLE_OVERRIDES:
        if name in typed:
            setattr(config, name, getattr(given, name))
    if "epochs" in typed and config.schedule == "cosine":
        print(f"note: the cosine schedule now spans {config.epochs} epochs from here on")
    # --resume names the run directory, or a checkpoint file inside its checkpoints/ folder
    config.run_dir = args.resume if os.path.isdir(args.resume) else os.path.dirname(os.path.dirname(checkpoint_path))
    return config


def settings_of_run_without_checkpoint(run_dir):
    """The settings (run_dir/config.json) of a run stopped before its first checkpoint: one
    whose folder holds config.json but no checkpoint file at all (a stray temporary file of a
    write that was killed does not count). None for anything else, so that a run whose
    checkpoints are all damaged is refused rather than silently started over."""
    config_path = os.path.join(run_dir, "config.json")
    folder = checkpoint_folder(run_dir)
    if not os.path.isfile(config_path) or any(
            os.path.exists(os.path.join(folder, name)) for name in (ckpt.LAST, ckpt.PREVIOUS)):
        return None
    with open(config_path) as handle:
        return json.load(handle)


def resume_trainer(args, argv, comm):
    """The Trainer that continues the run named by ``--resume``: from its latest good
    checkpoint, or from the beginning if it was stopped before writing one (a run starts from
    its seed, so starting it again is as exact as resuming)."""
    settings = settings_of_run_without_checkpoint(args.resume) if os.path.isdir(args.resume) else None
    if settings is not None:
        config = resumed_config(settings, args, argv)
        comm = check_devices(config, comm)
        print(f"resuming {config.run_dir} from its beginning: it was stopped before its first "
              f"checkpoint", flush=True)
        return Trainer(config, comm=comm)
    saved = load_run_state(args.resume)
    config = resumed_config(saved.config, args, argv, saved.path)
    comm = check_devices(config, comm)
    position = saved.position
    print(f"resuming {config.run_dir} from {saved.path}: epoch {position.epoch + 1}, "
          f"step {position.batches_done}", flush=True)
    return Trainer(config, resume_from=saved, comm=comm)


def main(argv=None):
    """Run the command; returns the exit status: 0 trained, 1 training stopped (non-finite
    values, too many unreadable images, or a file of the run that cannot be written: a full
    or read-only disk, no permission; the last good checkpoint stays intact), 2 unusable
    arguments, data or checkpoint, 130 interrupted (a checkpoint was saved). Under mpiexec a
    failure in any process ends every process of the job (MPI_Abort) with that status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()          # reuse the pages of freed arrays (backend.py says why)
    comm = communicator()
    if comm.rank != 0:           # one voice: the other processes print only their errors
        sys.stdout = open(os.devnull, "w")
    try:
        status = train(args, argv, comm)
    except BaseException:        # a bug, or a second Ctrl-C: never leave the others waiting
        if comm.size > 1:
            traceback.print_exc()
            comm.abort(1)
        raise
    if status not in (0, 130) and comm.size > 1:
        comm.abort(status)       # the other processes may be waiting in a sum
    return status


def start_trainer(args, argv, comm):
    """The Trainer of a new run or of the run named by --resume, with its devices and run
    directory agreed between the processes."""
    if args.resume:
        return resume_trainer(args, argv, comm)
    config = config_from_args(args)
    config.run_dir = comm.broadcast_object(config.run_dir or default_run_dir(config))
    if holds_a_run(config.run_dir):
        raise ValueError(f"{config.run_dir} already holds a run; continue it with "
                         f"--resume {config.run_dir} or choose another --run-dir")
    comm.barrier()               # every process looked before rank 0 writes config.json
    comm = check_devices(config, comm)
    return Trainer(config, comm=comm)


def train(args, argv, comm):
    """``main`` in one process: the exit status (see ``main``)."""
    rank = f" (rank {comm.rank})" if comm.size > 1 else ""
    try:
        trainer = start_trainer(args, argv, comm)
        status = trainer.run()
        if status == 0:
            trainer.final_report()
        return status
    except (TrainingStopped, WriteError) as error:
        # WriteError: "cannot write runs/x/checkpoints/last.npz: No space left on device"
        print(f"error{rank}: {error}", file=sys.stderr)
        return 1
    except (DataError, CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"error{rank}: {error}", file=sys.stderr)
        return 2
    except OSError as error:        # the system refused another file operation (mkdir, ...)
        print(f"error{rank}: {error.filename or 'a file'}: {error.strerror or error}", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
