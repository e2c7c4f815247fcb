"""Crash safety: a training process killed (SIGKILL) at seeded random moments and resumed with
``--resume`` each time, or stopped once with Ctrl-C (SIGINT), ends with exactly the weights and
metrics of a run that was never interrupted."""
import contextlib
import io
import os
import random
import signal
import time

import pytest

from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet import train

import helpers_train as h

pytestmark = [pytest.mark.train, pytest.mark.faults, pytest.mark.slow]

# 96 images in batches of 16: 6 steps per epoch, 12 in all, a checkpoint after every step.
TRAIN, VAL, BATCH, EPOCHS = 96, 16, 16, 2
STEPS_PER_EPOCH = TRAIN // BATCH
PROCESS_TIMEOUT = 120


def run_args(run_dir):
    return h.tiny_args(run_dir, train=TRAIN, val=VAL, batch=BATCH, epochs=EPOCHS,
                       extra=["--checkpoint-every", "1"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (in this process; same settings and seed)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert train.main(run_args(run_dir)) == 0
    return h.final_weights(run_dir), h.deterministic_metrics(run_dir)


def checkpoint_identity(folder):
    """(inode, mtime) of last.npz, or None: changes whenever a checkpoint is written."""
    try:
        info = os.stat(os.path.join(folder, ckpt.LAST))
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns


def latest_position(folder):
    """(epoch, batches_done, global_step) of the latest loadable checkpoint, or None."""
    try:
        _, meta, _ = ckpt.load_latest(folder, warn=None)
    except ckpt.CheckpointError:
        return None
    return meta["epoch"], meta["batches_done"], meta["global_step"]


def wait_for_checkpoint(process, folder, at_least_step, since):
    """Wait until ``process`` has written a checkpoint (its identity differs from ``since``)
    at global step ``at_least_step`` or later. Returns that position, or None if the process
    ended first."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    seen = since
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        identity = checkpoint_identity(folder)
        if identity is not None and identity != seen:
            seen = identity
            position = latest_position(folder)
            if position is not None and position[2] >= at_least_step:
                return position
        time.sleep(0.005)
    process.kill()
    raise AssertionError("the training process made no progress")


def finish(process):
    try:
        out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    except Exception:
        process.kill()
        raise
    return process.returncode, out, err


def test_sigkill_at_random_moments_then_resume_is_bit_exact(tmp_path, reference):
    reference_weights, reference_metrics = reference
    rng = random.Random(20120607)
    run_dir = tmp_path / "run"
    folder = str(run_dir / "checkpoints")
    # Kill points (global steps), one in each stretch: early in epoch 1, around the end of
    # epoch 1 (the last step's checkpoint, validation, the epoch's checkpoint, the plots),
    # and early in epoch 2, leaving a few steps of margin so that a busy machine does not let
    # the run finish first. Each kill comes a random 0-20 ms after the first checkpoint at or
    # past its point is seen on disk (and after the new process wrote at least one). A step of
    # this tiny run takes about 10-30 ms, so the delay is kept to 0-20 ms: a longer one lets a
    # fast machine finish the whole run before the kill.
    targets = [rng.randint(1, 3), rng.randint(STEPS_PER_EPOCH, STEPS_PER_EPOCH + 1),
               rng.randint(STEPS_PER_EPOCH + 1, STEPS_PER_EPOCH + 2)]
    killed_at = []
    args = run_args(run_dir)
    for attempt in range(len(targets) + 3):
        since = checkpoint_identity(folder)
        before = latest_position(folder)
        process = h.start_training(args)
        if len(killed_at) < len(targets):
            position = wait_for_checkpoint(process, folder, targets[len(killed_at)], since)
            if position is not None:
                time.sleep(rng.uniform(0.0, 0.02))
                if process.poll() is None:             # still training: kill it now
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=PROCESS_TIMEOUT)
                    assert process.returncode == -signal.SIGKILL
                    killed_at.append(position)
                    if before is not None:             # every run made progress
                        assert position[2] > before[2] or position[:2] > before[:2]
                    args = ["--resume", str(run_dir)]
                    continue
        status, out, err = finish(process)
        assert status == 0, err
        break
    else:
        pytest.fail(f"training did not finish after {attempt + 1} runs")
    assert len(killed_at) == len(targets), f"killed only at {killed_at} (targets {targets})"
    assert any(epoch == 0 for epoch, _, _ in killed_at)
    assert any(epoch == 1 for epoch, _, _ in killed_at)
    assert "resuming" in out and "final validation accuracy" in out

    h.assert_same_weights(h.final_weights(run_dir), reference_weights)
    assert h.deterministic_metrics(run_dir) == reference_metrics
    _, meta = ckpt.load(os.path.join(folder, ckpt.LAST))
    assert meta["epoch"] == EPOCHS and meta["global_step"] == EPOCHS * STEPS_PER_EPOCH


def test_ctrl_c_saves_a_checkpoint_and_resume_is_bit_exact(tmp_path, reference):
    reference_weights, reference_metrics = reference
    run_dir = tmp_path / "run"
    folder = str(run_dir / "checkpoints")
    process = h.start_training(run_args(run_dir))
    position = wait_for_checkpoint(process, folder, 2, None)
    assert position is not None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    status, out, err = finish(process)
    assert status == 130, err
    assert "stopping after this step" in out
    assert "interrupted: checkpoint saved at epoch" in out and f"--resume {run_dir}" in out
    assert "Traceback" not in err
    arrays, meta = ckpt.load(os.path.join(folder, ckpt.LAST))
    assert meta["global_step"] >= position[2]
    assert meta["global_step"] < EPOCHS * STEPS_PER_EPOCH       # it stopped early

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        assert train.main(["--resume", str(run_dir)]) == 0
    assert f"step {meta['batches_done']}" in output.getvalue()
    h.assert_same_weights(h.final_weights(run_dir), reference_weights)
    assert h.deterministic_metrics(run_dir) == reference_metrics
