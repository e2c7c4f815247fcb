"""Crash safety: a training process killed (SIGKILL) at seeded random moments, or at chosen ones
(before its first checkpoint, while a checkpoint is written, during validation), and resumed
with ``--resume`` each time, or stopped once with Ctrl-C (SIGINT), ends with exactly the weights
and metrics of a run that was never interrupted; so does a run resumed from a checkpoint that
--checkpoint-minutes wrote. The bad-image budget covers the whole epoch across a resume."""
import contextlib
import io
import itertools
import json
import os
import random
import shutil
import signal
import time
from dataclasses import asdict

import pytest

from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet import train
from minitorch_alexnet.trainer import Trainer

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


def resume_quietly(run_dir):
    """``train.main(["--resume", run_dir])``: (status, standard output)."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = train.main(["--resume", str(run_dir)])
    return status, output.getvalue()


def test_resume_before_the_first_checkpoint_starts_over(tmp_path, reference):
    """A run killed before its first checkpoint holds config.json (and maybe the leftovers of
    a checkpoint write that was cut short): --resume starts it from its beginning."""
    reference_weights, reference_metrics = reference
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    config = train.config_from_args(train.build_parser().parse_args(run_args(run_dir))).resolved()
    (run_dir / "config.json").write_text(json.dumps(asdict(config)))
    (run_dir / "checkpoints" / ".staging.npz").write_bytes(b"PK\x03\x04 cut short")
    status, out = resume_quietly(run_dir)
    assert status == 0
    assert f"resuming {run_dir} from its beginning" in out
    h.assert_same_weights(h.final_weights(run_dir), reference_weights)
    assert h.deterministic_metrics(run_dir) == reference_metrics
    # Neither config.json nor a checkpoint: nothing to resume.
    (tmp_path / "empty").mkdir()
    assert train.main(["--resume", str(tmp_path / "empty")]) == 2


def test_checkpoints_on_a_clock_and_resume_from_one_is_bit_exact(tmp_path, reference, monkeypatch):
    """--checkpoint-minutes with a clock that ticks one second per reading (a checkpoint every
    3 s: every few steps): checkpoints appear in the middle of epochs, the run ends as the
    reference did, and a resume from a mid-epoch one ends the same too."""
    reference_weights, reference_metrics = reference
    ticks = itertools.count()
    monkeypatch.setattr(Trainer, "clock", staticmethod(lambda: float(next(ticks))))
    kept, save = [], Trainer.save_checkpoint

    def save_and_keep(self):
        path = save(self)
        copy = tmp_path / f"checkpoint-{len(kept)}.npz"
        shutil.copyfile(path, copy)
        kept.append((self.epoch, self.batches_done, copy))
        return path
    monkeypatch.setattr(Trainer, "save_checkpoint", save_and_keep)
    run_dir = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert train.main(h.tiny_args(run_dir, train=TRAIN, val=VAL, batch=BATCH, epochs=EPOCHS,
                                      extra=["--checkpoint-minutes", "0.05"])) == 0
    middle = [(e, b, copy) for e, b, copy in kept if 0 < b < STEPS_PER_EPOCH]
    assert {e for e, _, _ in middle} == {0, 1}, kept
    h.assert_same_weights(h.final_weights(run_dir), reference_weights)

    epoch, batches_done, copy = middle[-1]
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copyfile(run_dir / "config.json", resumed / "config.json")
    shutil.copyfile(copy, resumed / "checkpoints" / ckpt.LAST)
    status, out = resume_quietly(resumed)
    assert status == 0 and f"epoch {epoch + 1}, step {batches_done}" in out
    h.assert_same_weights(h.final_weights(resumed), reference_weights)
    assert h.deterministic_metrics(resumed) == reference_metrics


def kill_when_paused(process, pause_file):
    """Wait until ``process`` creates ``pause_file`` (it has stopped at its moment), then
    SIGKILL it; returns its standard output. Fails if it ends first."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not os.path.exists(pause_file):
        if process.poll() is not None:
            raise AssertionError("the run ended before its pause: " + process.stderr.read())
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the training process never reached its pause")
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == -signal.SIGKILL
    os.unlink(pause_file)
    return out


def test_sigkill_before_first_checkpoint_mid_write_and_in_validation(tmp_path, reference):
    """Kills at chosen moments of one run (helpers_train.PAUSING_LAUNCHER stops the process
    there): before its first checkpoint, while a checkpoint is written, between the two
    renames of a checkpoint rotation (last.npz missing) and during validation; each time
    --resume continues, and the run ends with the reference's weights and metrics."""
    reference_weights, reference_metrics = reference
    rng = random.Random(20121203)
    run_dir = tmp_path / "run"
    folder = run_dir / "checkpoints"
    pause_file = tmp_path / "paused"
    resume = ["--resume", str(run_dir)]

    out = kill_when_paused(h.start_paused_training(run_args(run_dir), "step:1", pause_file),
                           pause_file)
    assert (run_dir / "config.json").exists() and latest_position(str(folder)) is None, out

    out = kill_when_paused(h.start_paused_training(resume, f"write:{rng.randint(2, 5)}", pause_file),
                           pause_file)
    assert "from its beginning" in out
    assert any(name.startswith((".staging", ".tmp-")) for name in os.listdir(folder))

    kill_when_paused(h.start_paused_training(resume, f"rotate:{rng.randint(2, 6)}", pause_file),
                     pause_file)
    assert not (folder / ckpt.LAST).exists() and (folder / ckpt.PREVIOUS).exists()

    kill_when_paused(h.start_paused_training(resume, "validation:1", pause_file), pause_file)

    status, out, err = finish(h.start_training(resume))
    assert status == 0, err
    assert "final validation accuracy" in out
    h.assert_same_weights(h.final_weights(run_dir), reference_weights)
    assert h.deterministic_metrics(run_dir) == reference_metrics


def stopped_after(run_dir, args, steps, monkeypatch):
    """Run ``args`` in this process, asking it to stop (as Ctrl-C does) after ``steps`` SGD
    steps: it saves a checkpoint there and returns 130."""
    step = Trainer.train_step

    def step_then_stop(self, *step_args):
        result = step(self, *step_args)
        self.stop_requested = self.global_step + 1 >= steps
        return result
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", step_then_stop)
        with contextlib.redirect_stdout(io.StringIO()):
            assert train.main(args) == 130


def test_bad_image_budget_counts_the_whole_epoch_across_a_resume(tmp_path, monkeypatch):
    """16 training images in batches of 4, 3 of them unreadable, in batches 1, 2 and 4 of the
    epoch; the run stops after batch 3 and resumes. The budget is 3 of the 16 images whether
    or not the run was interrupted: --max-bad-fraction 0.2 passes (counting from the resume
    point, 1 of the last 4 images, would fail), 0.15 fails naming all 3."""
    from minitorch_alexnet.data import DataLoader, build_datasets

    top = h.write_class_folders(str(tmp_path / "data"), per_class=8)
    val = h.write_class_folders(str(tmp_path / "val"), per_class=2)
    train_set, _ = build_datasets("folder", top, val, image_size=36)
    order = DataLoader(train_set, 4, seed=0).order(0)
    for position in (0, 5, 14):                              # batches 0, 1 and 3
        with open(train_set.paths[order[position]], "wb"):
            pass                                             # an empty file: unreadable
    results = {}
    for fraction in ("0.2", "0.15"):
        def args(run_dir):
            return h.tiny_args(run_dir, train=16, val=4, batch=4, extra=[
                "--dataset", "folder", "--data-dir", top, "--val-dir", val,
                "--max-bad-fraction", fraction])
        whole, resumed = tmp_path / f"whole-{fraction}", tmp_path / f"resumed-{fraction}"
        with contextlib.redirect_stdout(io.StringIO()):
            status = train.main(args(whole))
        assert status == (0 if fraction == "0.2" else 2)
        stopped_after(resumed, args(resumed), 3, monkeypatch)
        _, meta = ckpt.load(str(resumed / "checkpoints" / ckpt.LAST))
        assert meta["batches_done"] == 3 and len(meta["epoch_sums"]["bad_before_resume"]) == 2
        error = io.StringIO()
        with contextlib.redirect_stderr(error):
            assert resume_quietly(resumed)[0] == status
        results[fraction] = (whole, resumed, error.getvalue())
    whole, resumed, _ = results["0.2"]
    assert [row["bad_images"] for row in h.read_metrics(resumed)] == [3]
    h.assert_same_weights(h.final_weights(resumed), h.final_weights(whole))
    assert "3 of the 16 images of epoch 0 could not be read" in results["0.15"][2]
