"""--time-budget, --warmup and --label-smoothing in the trainer: the run's length in steps from
the time of its first steps (against a naive search), the schedule's warm-up and decay by hand,
a budget run that ends at its step count and resumes bit-exactly, smoothing reaching the loss."""
import contextlib
import io
import json
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import helpers_train as h
from minitorch_alexnet import train
from minitorch_alexnet.budget import DECAY_START, MEASURE_FROM, MEASURED, steps_within
from minitorch_alexnet.schedule import Schedule
from minitorch_alexnet.trainer import Trainer

pytestmark = pytest.mark.train

TRAIN, VAL, BATCH = 256, 16, 16         # 16 steps per epoch
STEP_SECONDS = 0.5                      # the fake clock's time per step


def naive_steps_within(budget, elapsed, done, step, per_epoch, val):
    """Try every T from ``done`` up: the last one whose time fits."""
    best, total = done, done
    while total < done + 10 ** 6:
        total += 1
        need = elapsed + (total - done) * step + (math.ceil(total / per_epoch) + 1) * val
        if need > budget:
            return best
        best = total
    return best


@given(st.floats(10, 1000), st.floats(0, 100), st.integers(0, 100), st.floats(0.05, 2),
       st.integers(1, 500), st.floats(0, 50))
def test_steps_within_against_a_naive_search(budget, elapsed, done, step, per_epoch, val):
    assert steps_within(budget, elapsed, done, step, per_epoch, val) == \
        naive_steps_within(budget, elapsed, done, step, per_epoch, val)


def test_warmup_ramps_then_cosine_decays_over_the_rest():
    s = Schedule("cosine", 0.1, epochs=4, steps_per_epoch=10, warmup_steps=5)
    lrs = [s.lr_for_step(t // 10, t % 10) for t in range(40)]
    np.testing.assert_allclose(lrs[:5], [0.1 * (t + 1) / 5 for t in range(5)])
    np.testing.assert_allclose(lrs[5:], [0.05 * (1 + math.cos(math.pi * (t - 5) / 35))
                                         for t in range(5, 40)])
    # without warm-up the cosine is the one it always was: lr0 (1 + cos(pi t / T)) / 2
    plain = Schedule("cosine", 0.1, epochs=4, steps_per_epoch=10)
    np.testing.assert_allclose([plain.lr_for_step(0, t) for t in range(10)],
                               [0.05 * (1 + math.cos(math.pi * t / 40)) for t in range(10)])


def test_rates_before_the_decay_start_do_not_depend_on_the_length():
    """With --time-budget the length is fixed after DECAY_START steps; the steps before it
    must not have depended on it."""
    short, long = (Schedule("cosine", 0.1, epochs=1, steps_per_epoch=1000, warmup_steps=10,
                            decay_start=DECAY_START, total_steps=total) for total in (50, 900))
    before = [(short.lr_for_step(0, t), long.lr_for_step(0, t)) for t in range(DECAY_START)]
    assert all(a == b for a, b in before)
    assert short.lr_for_step(0, 49) < long.lr_for_step(0, 49)
    state = short.state_dict()
    fresh = Schedule("cosine", 0.1, epochs=1, steps_per_epoch=1000)
    fresh.load_state_dict(state)
    assert fresh.total_steps == 50


@pytest.fixture
def fake_time(monkeypatch):
    """A clock that moves STEP_SECONDS per SGD step and stands still otherwise."""
    now = [0.0]
    monkeypatch.setattr(Trainer, "clock", staticmethod(lambda: now[0]))
    step = Trainer.train_step

    def timed_step(self, *args):
        now[0] += STEP_SECONDS
        return step(self, *args)
    monkeypatch.setattr(Trainer, "train_step", timed_step)
    return now


def budget_args(run_dir, minutes=0.5):
    return h.tiny_args(run_dir, train=TRAIN, val=VAL, batch=BATCH, epochs=99,
                       extra=["--time-budget", str(minutes), "--warmup", "1",
                              "--label-smoothing", "0.1", "--checkpoint-minutes", "0"])


def test_a_budget_run_ends_at_the_step_count_its_first_steps_give(tmp_path, fake_time):
    run_dir = tmp_path / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert train.main(budget_args(run_dir)) == 0
    # after step MEASURE_FROM + MEASURED the clock says MEASURED steps took MEASURED * 0.5 s and
    # the run so far (MEASURE_FROM + MEASURED) * 0.5 s; a validation of 16 images in batches of
    # 16 is estimated at 0.4 of a step
    done = MEASURE_FROM + MEASURED
    expected = naive_steps_within(30.0, done * STEP_SECONDS, done, STEP_SECONDS, TRAIN // BATCH,
                                  0.4 * STEP_SECONDS)
    assert f"{expected} steps" in out.getvalue()
    rows = h.read_metrics(run_dir)
    assert len(rows) == math.ceil(expected / (TRAIN // BATCH))
    assert fake_time[0] == pytest.approx(expected * STEP_SECONDS)      # exactly T steps ran
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == len(rows)
    # the cosine decay ran from DECAY_START over the rest of the T steps: the last step's rate
    decayed = 0.02 * 0.5 * (1 + math.cos(math.pi * (expected - 1 - DECAY_START) / (expected - DECAY_START)))
    assert rows[-1]["lr"] == pytest.approx(decayed, rel=1e-12)


def test_a_budget_run_resumed_after_its_length_is_fixed_is_bit_exact(tmp_path, fake_time, monkeypatch):
    reference = tmp_path / "reference"
    with contextlib.redirect_stdout(io.StringIO()):
        assert train.main(budget_args(reference)) == 0
    stopped = tmp_path / "stopped"
    step = Trainer.train_step

    def stop_at_45(self, *args):
        result = step(self, *args)
        self.stop_requested = self.global_step + 1 >= 45
        return result
    with monkeypatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr(Trainer, "train_step", stop_at_45)
        assert train.main(budget_args(stopped)) == 130
    fake_time[0] += 1000.0                  # the resumed process runs on another clock
    with contextlib.redirect_stdout(io.StringIO()):
        assert train.main(["--resume", str(stopped), "--no-progress"]) == 0
    h.assert_same_weights(h.final_weights(stopped), h.final_weights(reference))
    assert h.deterministic_metrics(stopped) == h.deterministic_metrics(reference)


def test_label_smoothing_reaches_the_training_loss(tmp_path):
    losses = []
    for smoothing in ("0", "0.3"):
        run_dir = tmp_path / smoothing
        with contextlib.redirect_stdout(io.StringIO()):
            assert train.main(h.tiny_args(run_dir, train=32, val=16, extra=["--label-smoothing",
                                                                            smoothing])) == 0
        losses.append(h.read_metrics(run_dir)[0]["train_loss"])
    assert losses[0] != losses[1]
