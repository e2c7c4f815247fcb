"""The state of a training run: the one module that knows what a checkpoint holds.

``checkpoint.py`` is the file format (named arrays plus one JSON document, written atomically,
with a checksum). This module decides what goes into that file and reads it back, for every
program that needs it: the ``Trainer`` saves and restores it (``--resume``), and ``evaluate``
and ``predict`` rebuild the trained model and its preprocessing from it.

The arrays, by name::

    model/<parameter>            weights and biases (``AlexNet.state_dict``)
    optim/velocity/<parameter>   the SGD velocities (``SGD.state_dict`` without ``lr``)
    preprocess/mean              the mean image or mean colour (absent with ``--mean none``)
    preprocess/pca_eigvals       the colour PCA's eigenvalues and eigenvectors
    preprocess/pca_eigvecs       (both absent without PCA colour augmentation)

The JSON document (``meta``)::

    format                       FORMAT below; a file with another one is refused by name
    config                       every setting of the run (``TrainConfig``)
    model                        what rebuilds the network: preset, num_classes, width, fc_width,
                                 in_channels, input_size, init
    classes                      the class names, in label order
    preprocess                   crop_size, stored_size, pca_std, flip, scale, erase, std,
                                 padding
    epoch, batches_done,         where the run stands: epochs finished, batches of the current
    global_step                  epoch done, SGD steps in all
    optimizer_lr                 the optimizer's learning rate at the last step
    schedule                     the learning-rate schedule's state (plateau counters)
    dropout_rng                  the model's unkeyed dropout generator's state; the trainer's
                                 randomness (order, crops, flips, colour shifts, dropout
                                 masks) is a function of the seed, the epoch and the image,
                                 so it needs no state of its own
    epoch_sums                   loss, correct and seen so far in the unfinished epoch, its
                                 seconds, and the unreadable images met in it
    history                      one row of metrics per finished epoch

A run directory keeps its checkpoints in ``checkpoints/`` (``last.npz``, ``previous.npz``),
and ``metrics.jsonl`` and the plots beside them (``write_metrics``, ``write_plots``).
"""
import json
import os
from dataclasses import asdict, dataclass

from . import checkpoint as ckpt
from .data import Preprocess
from .architecture import Variant
from .model import AlexNet

FORMAT = "minitorch_alexnet checkpoint 1"
CHECKPOINT_FOLDER = "checkpoints"
MODEL, OPTIMIZER, PREPROCESS = "model/", "optim/", "preprocess/"


@dataclass
class TrainingPosition:
    """Where a run stands and what it has gathered on the way (the parts of a run's state
    that are plain numbers and lists, not arrays)."""
    epoch: int              # epochs finished
    batches_done: int       # batches of the current epoch done
    global_step: int        # SGD steps since the start of the run
    epoch_sums: dict        # the current epoch's loss, correct, seen, seconds, bad_before_resume
    history: list           # one dict of metrics per finished epoch


@dataclass
class SavedRun:
    """A checkpoint read back: ``arrays`` (name -> NumPy array), ``meta`` (the JSON document
    described at the top of this module) and ``path``, the file they came from."""
    arrays: dict
    meta: dict
    path: str

    @property
    def config(self):
        """The run's settings, as a dict (``TrainConfig.from_dict`` turns it back)."""
        return dict(self.meta["config"])

    @property
    def classes(self):
        """The class names, in label order."""
        return list(self.meta["classes"])

    @property
    def position(self):
        """The ``TrainingPosition`` the run had reached when this checkpoint was written."""
        meta = self.meta
        return TrainingPosition(epoch=meta["epoch"], batches_done=meta["batches_done"],
                                global_step=meta["global_step"],
                                epoch_sums=dict(meta["epoch_sums"]), history=list(meta["history"]))


def checkpoint_folder(run_dir):
    """The folder of a run directory that holds its checkpoints."""
    return os.path.join(run_dir, CHECKPOINT_FOLDER)


def run_directory(checkpoint_path):
    """The run directory of a checkpoint file: its folder, or the one above it when that folder
    is a run's ``checkpoints/`` (where the run's pictures go)."""
    folder = os.path.dirname(os.path.abspath(checkpoint_path))
    if os.path.basename(folder) == CHECKPOINT_FOLDER:
        folder = os.path.dirname(folder)
    return folder


def holds_a_run(run_dir):
    """True if ``run_dir`` already holds a run's checkpoint (a new run must not overwrite it)."""
    return os.path.exists(os.path.join(checkpoint_folder(run_dir), ckpt.LAST))


def arrays_under(arrays, prefix):
    """The arrays whose names start with ``prefix``, with the prefix taken off."""
    return {name[len(prefix):]: value for name, value in arrays.items() if name.startswith(prefix)}


# ---- writing ---------------------------------------------------------------------------------

def run_state_arrays_and_meta(*, config, model, optimizer, schedule, preprocess, classes, position):
    """The ``(arrays, meta)`` pair a checkpoint stores for a run: ``config`` (a TrainConfig),
    the AlexNet, its SGD, its Schedule, its Preprocess, the class names and the
    ``TrainingPosition``."""
    arrays = {MODEL + name: value for name, value in model.state_dict().items()}
    arrays.update({OPTIMIZER + name: value for name, value in optimizer.state_dict().items()
                   if name != "lr"})
    prep = preprocess.state_dict()
    if prep["mean"] is not None:
        arrays[PREPROCESS + "mean"] = prep["mean"]
    if prep["pca"] is not None:
        arrays[PREPROCESS + "pca_eigvals"], arrays[PREPROCESS + "pca_eigvecs"] = prep["pca"]
    meta = {
        "format": FORMAT,
        "config": asdict(config),
        "model": {"preset": model.preset, "num_classes": model.num_classes, "width": model.width,
                  "fc_width": model.fc_width,
                  "in_channels": model.in_channels, "input_size": model.input_size,
                  "init": model.init, "variant": asdict(model.variant)},
        "classes": list(classes),
        "preprocess": {k: prep[k] for k in ("crop_size", "stored_size", "pca_std", "flip", "scale",
                                             "erase", "std", "padding")},
        "epoch": position.epoch, "batches_done": position.batches_done,
        "global_step": position.global_step,
        "optimizer_lr": float(optimizer.lr),
        "schedule": schedule.state_dict(),
        "dropout_rng": model.dropout_rng.bit_generator.state,
        "epoch_sums": position.epoch_sums,
        "history": position.history,
    }
    return arrays, meta


def save_run_state(run_dir, **state):
    """Write a run's state (the keywords of ``run_state_arrays_and_meta``) as
    ``run_dir/checkpoints/last.npz``, keeping the one before as ``previous.npz``; returns the
    path written."""
    arrays, meta = run_state_arrays_and_meta(**state)
    return ckpt.save_rotating(checkpoint_folder(run_dir), arrays, meta)


# ---- reading ---------------------------------------------------------------------------------

def load_run_state(path, warn=print):
    """Read a checkpoint file, or a run directory's latest good checkpoint, as a ``SavedRun``.

    Raises ``CheckpointError`` if no checkpoint loads, or if the file holds another format
    than this version writes (its ``format`` is named in the message)."""
    arrays, meta, found = ckpt.load_file_or_directory(path, warn=warn)
    if meta.get("format") != FORMAT:
        raise ckpt.CheckpointError(
            f"{found} holds format {meta.get('format')!r}, but this version of minitorch_alexnet "
            f"reads {FORMAT!r} only (it is not a training checkpoint, or another version wrote it)")
    return SavedRun(arrays, meta, found)


def load_model(saved, device="cpu"):
    """The trained AlexNet of a ``SavedRun``, its weights on ``device`` (one column)."""
    spec = saved.meta["model"]
    model = AlexNet(spec["num_classes"], spec["preset"], devices=[device], width=spec["width"],
                    in_channels=spec["in_channels"], input_size=spec["input_size"],
                    init=spec.get("init", "paper"), variant=Variant(**spec.get("variant", {})),
                    fc_width=spec.get("fc_width"))
    model.load_state_dict(arrays_under(saved.arrays, MODEL))
    return model


def preprocess_from_checkpoint(saved):
    """The ``Preprocess`` (crop sizes, mean image, colour PCA, random erasing, crop padding) a
    ``SavedRun`` was trained with (a checkpoint written before random erasing or crop padding
    existed: off, as those runs trained)."""
    prep = saved.meta["preprocess"]
    pca = None
    if PREPROCESS + "pca_eigvals" in saved.arrays:
        pca = (saved.arrays[PREPROCESS + "pca_eigvals"], saved.arrays[PREPROCESS + "pca_eigvecs"])
    return Preprocess(prep["crop_size"], prep["stored_size"], mean=saved.arrays.get(PREPROCESS + "mean"),
                      pca=pca, pca_std=prep["pca_std"], flip=prep["flip"], scale=prep["scale"],
                      erase=prep.get("erase", 0.0), std=prep.get("std"), padding=prep.get("padding", 0))


def restore_training(saved, model, optimizer, schedule):
    """Put a ``SavedRun``'s weights, velocities, learning rate, schedule and dropout generator
    state back into ``model``, ``optimizer`` and ``schedule`` (built as the run built them);
    returns its ``TrainingPosition``."""
    meta = saved.meta
    model.load_state_dict(arrays_under(saved.arrays, MODEL))
    optimizer_state = arrays_under(saved.arrays, OPTIMIZER)
    optimizer_state["lr"] = meta["optimizer_lr"]
    optimizer.load_state_dict(optimizer_state)
    schedule.load_state_dict(meta["schedule"])
    model.dropout_rng.bit_generator.state = meta["dropout_rng"]
    return saved.position


# ---- the run directory's other files -----------------------------------------------------------

def write_metrics(run_dir, history):
    """Rewrite metrics.jsonl from the history, one JSON line per epoch (atomically), so that
    it always agrees with the checkpoint, also after a resume."""
    ckpt.write_text_atomically(os.path.join(run_dir, "metrics.jsonl"),
                               "".join(json.dumps(row) + "\n" for row in history))


def write_plots(run_dir, history, model, log):
    """curves.png and conv1_filters.png. A file that cannot be written (full or read-only
    disk) stops the run like any other write (``WriteError``); a plotting bug only warns
    through ``log``."""
    from .plots import plot_conv1_filters, plot_curves

    plots = {"curves.png": lambda path: plot_curves(history, path),
             "conv1_filters.png": lambda path: plot_conv1_filters(
                 model.state_dict()["conv1.weight"], path)}
    for name, draw in plots.items():
        path = os.path.join(run_dir, name)
        try:
            with ckpt.writing(path):
                draw(path)
        except ckpt.WriteError:
            raise
        except Exception as error:   # a bug in a plot must never cost a run
            log(f"warning: could not draw {path} ({error})")
