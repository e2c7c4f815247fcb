"""The settings of a training run: every flag of ``python -m minitorch_alexnet.train``, the
defaults that depend on the preset and the data set, and where the run's files go.

A checkpoint stores these settings (``run_state.py``), so ``--resume`` continues with them.
"""
import os
import time
from dataclasses import dataclass, field, fields

from .architecture import COLUMNS, Variant
from .data import default_stored_size


@dataclass
class TrainConfig:
    """Every setting of a run (the command-line flags of ``python -m minitorch_alexnet.train``)."""
    preset: str = "small"
    dataset: str = "builtin"
    data_dir: str = None
    val_dir: str = None
    epochs: int = None
    batch_size: int = None
    lr: float = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = None            # default: plateau (paper preset), cosine (small preset)
    patience: int = 2
    lr_step: int = 30
    warmup: float = 0.0             # epochs of linear learning-rate warm-up
    label_smoothing: float = 0.0    # eps of the smoothed targets (functional/loss.py)
    erase: float = 0.0              # probability of random erasing (data/transforms.py)
    time_budget: float = None       # minutes: fixes the number of steps (budget.py)
    image_size: int = None          # the network's input side (the crop)
    stored_size: int = None         # the side images are stored at before cropping
    width: float = 1.0
    init: str = None
    activation: str = "relu"        # the network's variant (architecture.Variant): the paper's
    lrn: bool = True                # choices that --activation tanh, --no-lrn, --pool 2/2,
    pool: str = "3/2"               # --no-dropout and --one-column undo, one at a time, as
    dropout: bool = True            # the paper's comparisons do (python -m
    one_column: bool = False        # minitorch_alexnet.experiments runs them)
    dtype: str = "float32"          # the model's floats: float32, or float64 to check results
    seed: int = 0
    device: str = "cpu"
    columns: list = None            # e.g. ["cuda:0", "cuda:1"]: the two-column split
    ten_crop: bool = False
    limit_train: int = None
    limit_val: int = None
    val_fraction: float = 0.1
    workers: int = 2
    mean: str = "image"             # "image", "channel" or "none"
    pca: bool = True
    flip: bool = True
    checkpoint_every: int = 0       # also checkpoint every N steps inside an epoch (0: no)
    checkpoint_minutes: float = 10.0  # also checkpoint every this many minutes of training (0: no)
    max_bad_fraction: float = 0.01
    run_dir: str = None
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def resolved(self):
        """Fill the defaults that depend on the preset and the data set."""
        paper = self.preset == "paper"
        fill = {
            "epochs": 90 if paper else (4 if self.dataset == "builtin" else 15),
            "batch_size": 128 if paper else 64,
            "lr": 0.01 if paper else 0.02,
            "init": "paper" if paper else "he",
            "schedule": "plateau" if paper else "cosine",
            "image_size": 227 if paper else (28 if self.dataset == "fashion-mnist" else 32),
        }
        for name, value in fill.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.stored_size is None:
            self.stored_size = default_stored_size(self.image_size)
        return self

    def variant(self):
        """The network's ``architecture.Variant`` (``Variant()``: the paper's AlexNet)."""
        return Variant(activation=self.activation, lrn=self.lrn, pool=self.pool,
                       dropout=self.dropout, columns=1 if self.one_column else COLUMNS)

    @classmethod
    def from_dict(cls, values):
        """A TrainConfig from a dict of settings (a checkpoint's ``config``); unknown names are
        left out, missing ones take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def default_run_dir(config):
    """``runs/<data set>-<preset>-<date>-<time>``: where a run goes without --run-dir."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{config.dataset}-{config.preset}-{stamp}")
