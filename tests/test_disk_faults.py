"""A full or read-only disk during training: each file of a run (a checkpoint, metrics.jsonl,
config.json, curves.png, conv1_filters.png) is made to fail at its Nth write with ENOSPC,
EROFS or EACCES, in a real tiny run. Training must stop with exit status 1 and one line
naming the file and the error, no traceback, no temporary file left behind, the previous
checkpoint intact and loadable, and ``--resume`` from it must finish the run."""
import contextlib
import errno
import io
import os

import numpy as np
import pytest

from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet import train
from minitorch_alexnet.run_state import load_run_state

import helpers_train as h

pytestmark = [pytest.mark.train, pytest.mark.faults]

EPOCHS = 2


def run_train(argv):
    """``train.main(argv)`` with its output captured: ``(status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = train.main(argv)
    return status, out.getvalue(), err.getvalue()


def fail_nth_replace(monkeypatch, name, nth, code):
    """Make the ``nth`` rename onto a file called ``name`` (the commit point of every atomic
    write of a run) raise ``OSError(code)``, as a full or read-only disk would."""
    real, calls = os.replace, {"n": 0}

    def replace(source, destination, *args, **kwargs):
        if os.path.basename(str(destination)) == name:
            calls["n"] += 1
            if calls["n"] == nth:
                raise OSError(code, os.strerror(code))
        return real(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def fail_nth_savez(monkeypatch, nth, code):
    """Make the ``nth`` checkpoint write run out of space half-way through its data."""
    real, calls = np.savez, {"n": 0}

    def savez(handle, **arrays):
        calls["n"] += 1
        if calls["n"] == nth:
            handle.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(code, os.strerror(code))
        return real(handle, **arrays)

    monkeypatch.setattr(np, "savez", savez)


def leftovers(run_dir):
    """Temporary files anywhere in the run directory (there must be none)."""
    return [os.path.join(folder, name) for folder, _, names in os.walk(run_dir)
            for name in names if name.startswith(".") or name.endswith(".tmp")]


def assert_one_clean_line(err, path, code):
    assert "Traceback" not in err, err
    assert err == f"error: cannot write {path}: {os.strerror(code)}\n", err


# (the file that fails, which of its writes, the error, how it is made to fail,
#  the epoch of the newest checkpoint left afterwards: None when none was written)
CASES = [
    ("checkpoints/last.npz", 2, errno.ENOSPC, "savez", 1),
    ("checkpoints/last.npz", 1, errno.EROFS, "replace", None),
    ("metrics.jsonl", 2, errno.ENOSPC, "replace", 2),
    ("config.json", 1, errno.EROFS, "replace", None),
    ("curves.png", 1, errno.ENOSPC, "replace", 1),
    ("conv1_filters.png", 1, errno.EACCES, "replace", 1),
]


@pytest.mark.parametrize("relative, nth, code, how, epoch_left", CASES,
                         ids=[f"{c[0]}-{c[1]}-{errno.errorcode[c[2]]}" for c in CASES])
def test_a_failed_write_stops_cleanly_and_the_run_resumes(tmp_path, monkeypatch, relative, nth,
                                                          code, how, epoch_left):
    run_dir = tmp_path / "run"
    if how == "savez":
        fail_nth_savez(monkeypatch, nth, code)
    else:
        fail_nth_replace(monkeypatch, os.path.basename(relative), nth, code)
    status, _, err = run_train(h.tiny_args(run_dir, train=32, val=16, epochs=EPOCHS))
    monkeypatch.undo()

    assert status == 1
    assert_one_clean_line(err, os.path.join(str(run_dir), relative), code)
    assert leftovers(run_dir) == []
    folder = run_dir / "checkpoints"
    if epoch_left is None:
        assert not folder.exists() or not os.listdir(folder)
        return
    saved = load_run_state(str(run_dir), warn=None)         # the previous checkpoint loads
    assert saved.position.epoch == epoch_left and saved.path.endswith("last.npz")

    status, out, err = run_train(["--resume", str(run_dir), "--workers", "1"])
    assert status == 0, err
    assert f"epoch {EPOCHS}/{EPOCHS}:" in out or epoch_left == EPOCHS
    assert [row["epoch"] for row in h.read_metrics(run_dir)] == list(range(1, EPOCHS + 1))
    assert (run_dir / "curves.png").exists() and (run_dir / "conv1_filters.png").exists()


def test_a_failed_checkpoint_leaves_last_and_previous_untouched(tmp_path, monkeypatch):
    """Three epochs; the third checkpoint runs out of space: last.npz (epoch 2) and
    previous.npz (epoch 1) keep their bytes, and resuming ends with the weights of a run that
    never failed."""
    reference = tmp_path / "reference"
    assert run_train(h.tiny_args(reference, train=32, val=16, epochs=3))[0] == 0

    run_dir = tmp_path / "run"
    written = {}
    real_save = ckpt.save_rotating

    def remember(directory, arrays, meta):
        if meta["epoch"] == 3:           # about to write the third: note what is there now
            written.update({n: (run_dir / "checkpoints" / n).read_bytes() for n in (ckpt.LAST, ckpt.PREVIOUS)})
            fail_nth_savez(monkeypatch, 1, errno.ENOSPC)
        return real_save(directory, arrays, meta)

    monkeypatch.setattr(ckpt, "save_rotating", remember)
    status, _, err = run_train(h.tiny_args(run_dir, train=32, val=16, epochs=3))
    monkeypatch.undo()
    assert status == 1
    assert_one_clean_line(err, os.path.join(str(run_dir), "checkpoints", "last.npz"), errno.ENOSPC)
    assert sorted(os.listdir(run_dir / "checkpoints")) == [ckpt.LAST, ckpt.PREVIOUS]
    for name, data in written.items():
        assert (run_dir / "checkpoints" / name).read_bytes() == data, name
    assert ckpt.load(str(run_dir / "checkpoints" / ckpt.PREVIOUS))[1]["epoch"] == 1

    assert run_train(["--resume", str(run_dir), "--workers", "1"])[0] == 0
    h.assert_same_weights(h.final_weights(run_dir), h.final_weights(reference))


def test_a_run_directory_that_cannot_be_created(tmp_path, monkeypatch):
    """A read-only parent folder: one line naming the run directory, status 1."""
    run_dir = str(tmp_path / "run")
    real = os.makedirs

    def makedirs(path, *args, **kwargs):
        if os.path.abspath(str(path)) == run_dir:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", makedirs)
    status, _, err = run_train(h.tiny_args(run_dir, train=32, val=16, epochs=1))
    assert status == 1
    assert "Traceback" not in err
    assert err == f"error: {run_dir}: Read-only file system\n", err
