"""Shared helpers for the trainer, checkpoint, resume and fault tests: tiny command lines and
small data sets written in the real on-disk formats."""
import contextlib
import gzip
import io
import json
import os
import pickle
import subprocess
import sys

import numpy as np
from PIL import Image

from minitorch_alexnet import checkpoint as ckpt

# Timing fields of metrics.jsonl; every other field is a pure function of the seed.
TIMING_FIELDS = ("seconds", "images_per_second")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_args(run_dir, *, train=64, val=32, batch=16, epochs=1, extra=()):
    """A command line for a run of a few seconds on the built-in data."""
    return ["--preset", "small", "--width", "0.125", "--limit-train", str(train),
            "--limit-val", str(val), "--batch-size", str(batch), "--epochs", str(epochs),
            "--workers", "1", "--no-progress", "--run-dir", str(run_dir), *extra]


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def deterministic_metrics(run_dir):
    return [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in read_metrics(run_dir)]


def final_weights(run_dir):
    """The ``model/*`` arrays of a run's last checkpoint."""
    arrays, _ = ckpt.load(os.path.join(run_dir, "checkpoints", ckpt.LAST))
    return {k: v for k, v in arrays.items() if k.startswith("model/")}


def assert_same_weights(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name]), f"{name} differs"


def train_command(args):
    return [sys.executable, "-m", "minitorch_alexnet.train", *args]


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["MPLBACKEND"] = "Agg"
    return env


def start_training(args, **kwargs):
    return subprocess.Popen(train_command(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=subprocess_env(), cwd=REPO_ROOT, **kwargs)


# The test hook of the crash tests, kept out of the package: this program runs the training
# command with ARGS, but stops for good (sleeps) the n-th time it reaches a moment, after
# creating the file PAUSE_FILE, so that a test can kill it exactly there. PAUSE is
# "<moment>:<n>"; the moments: step (before an SGD step), write (a checkpoint's data written
# under its temporary name, not yet renamed), rotate (last.npz renamed to previous.npz, the
# new file not yet renamed to last.npz), validation (the epoch's validation computed, its
# results not yet recorded).
PAUSING_LAUNCHER = """
import os, sys, time
import numpy as np
from minitorch_alexnet import reporting, train, trainer
moment, _, nth = os.environ["PAUSE"].partition(":")
reached_count = [0]
def reached(name):
    if name == moment:
        reached_count[0] += 1
        if reached_count[0] == int(nth):
            open(os.environ["PAUSE_FILE"], "w").close()
            time.sleep(600)
def pause_after(name, function, when=lambda *a: True):
    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        if when(*args):
            reached(name)
        return result
    return wrapped
step = trainer.Trainer.train_step
def paused_step(self, *args):
    reached("step")
    return step(self, *args)
trainer.Trainer.train_step = paused_step
np.savez = pause_after("write", np.savez)
os.replace = pause_after("rotate", os.replace, lambda src, dst: str(dst).endswith("previous.npz"))
reporting.evaluate = pause_after("validation", reporting.evaluate)
sys.exit(train.main(sys.argv[1:]))
"""


def start_paused_training(args, pause, pause_file):
    """Start the training command in a process that stops for good at ``pause`` (see
    PAUSING_LAUNCHER) after creating ``pause_file``."""
    env = dict(subprocess_env(), PAUSE=pause, PAUSE_FILE=str(pause_file))
    return subprocess.Popen([sys.executable, "-c", PAUSING_LAUNCHER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)


# ---------------------------------------------------------------------------- data formats

def write_cifar(root, n=8, seed=0):
    """The official ``cifar-10-batches-py`` layout, small: pickled dicts with b'data' uint8
    (n, 3072) and b'labels', data_batch_1..5, test_batch and batches.meta."""
    from minitorch_alexnet.data import cifar

    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    for k, name in enumerate(cifar.TRAIN_BATCHES + [cifar.TEST_BATCH]):
        batch = {b"batch_label": f"batch {k}".encode(),
                 b"labels": [int(v) for v in (np.arange(n) + k) % 10],
                 b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                 b"filenames": [b"img_%d.png" % i for i in range(n)]}
        with open(os.path.join(folder, name), "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta = {b"label_names": [c.encode() for c in cifar.CLASSES], b"num_vis": 3072}
    with open(os.path.join(folder, "batches.meta"), "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return folder


def write_image(path, size=40, seed=0):
    """An RGB image of ``size`` x ``size``: a class-dependent colour plus noise."""
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(array).save(path)
    return path


def write_class_folders(root, classes=("cats", "dogs"), per_class=8, size=40):
    """``root/train/cats/*.png|jpg`` and ``root/train/dogs/...``; returns ``root/train``."""
    top = os.path.join(root, "train")
    for c, name in enumerate(classes):
        os.makedirs(os.path.join(top, name))
        for k in range(per_class):
            ext = "png" if k % 2 else "jpg"
            write_image(os.path.join(top, name, f"{k}.{ext}"), size, seed=100 * c + k)
    return top


def write_flat_folder(root, per_class=8, size=40):
    """The Kaggle cats-vs-dogs layout: ``cat.1.jpg``, ``dog.2.png`` in one folder."""
    os.makedirs(root, exist_ok=True)
    for c, name in enumerate(("cat", "dog")):
        for k in range(per_class):
            ext = "jpg" if k % 2 else "png"
            write_image(os.path.join(root, f"{name}.{k}.{ext}"), size, seed=100 * c + k)
    return root


def write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = (0x0800 + array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(str(path) + ".gz", "wb") as handle:
        handle.write(header + array.tobytes())


def write_fashion_mnist(root, n_train=48, n_test=16, seed=0):
    """Gzipped IDX files in the Fashion-MNIST layout."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(os.path.join(root, f"{split}-images-idx3-ubyte"),
                  rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(os.path.join(root, f"{split}-labels-idx1-ubyte"), np.arange(n) % 10)
    return root


def run_main(module, argv):
    """``module.main(argv)`` with its output captured: ``(status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = module.main(argv)
    return status, out.getvalue(), err.getvalue()


def one_error_line(err):
    """The single ``error: ...`` line of ``err``; fails on a traceback or on more lines."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]
