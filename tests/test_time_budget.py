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
from minitorch_alexnet.budget import MARGIN, MEASURE_FROM, MIN_MEASURED, TimeBudget, steps_within
from minitorch_alexnet.schedule import Schedule
from minitorch_alexnet.trainer import Trainer

pytestmark = pytest.mark.train

TRAIN, VAL, BATCH = 256, 16, 16         # 16 steps per epoch
STEP_SECONDS = 0.5                      # the fake clock's time per step


def naive_steps_within(budget, elapsed, done, step, per_epoch, val, final=1, val_every=1):
    """Try every T from ``done`` up: the last one whose time fits. The validations are
    counted one by one: the epochs 1 .. ceil(T / S) that are a multiple of val_every or last."""
    best, total = done, done
    while total < done + 10 ** 6:
        total += 1
        epochs = math.ceil(total / per_epoch)
        validations = sum(1 for e in range(1, epochs + 1) if e % val_every == 0 or e == epochs)
        need = elapsed + (total - done) * step + (validations + final) * val
        if need > budget:
            return best
        best = total
    return best


@given(st.floats(10, 1000), st.floats(0, 100), st.integers(0, 100), st.floats(0.05, 2),
       st.integers(1, 500), st.floats(0, 50), st.sampled_from([1, 3, 11, 13]), st.integers(1, 7))
def test_steps_within_against_a_naive_search(budget, elapsed, done, step, per_epoch, val, final,
                                             val_every):
    # final: the final report's passes (1, + 2 with --flip-test, + 10 with --ten-crop)
    assert steps_within(budget, elapsed, done, step, per_epoch, val, final, val_every) == \
        naive_steps_within(budget, elapsed, done, step, per_epoch, val, final, val_every)


def test_validating_less_often_leaves_more_steps():
    # 100 s, 1 s per step, 10 steps per epoch, 5 s per validation, 1 final pass: every epoch,
    # T = 60 (6 epochs, 6 validations: 60 + 35 = 95; T = 61 needs 7 of them, 61 + 40);
    # every 5th epoch and the last, T = 85 (9 epochs validated at 5 and 9: 85 + 15 = 100).
    assert steps_within(100, 0, 0, 1.0, 10, 5.0, 1, val_every=1) == 60
    assert steps_within(100, 0, 0, 1.0, 10, 5.0, 1, val_every=5) == 85


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


def test_rates_before_the_length_is_fixed_do_not_depend_on_it():
    """With --time-budget the length is fixed after the first steps are timed; the steps
    before it must not have depended on it, and the cosine decays from there."""
    short, long = (Schedule("cosine", 0.1, epochs=1, steps_per_epoch=1000, warmup_steps=10,
                            length_known=False) for _ in range(2))
    unknown = [short.lr_for_step(0, t) for t in range(60)]
    np.testing.assert_allclose(unknown, [0.1 * min(1, (t + 1) / 10) for t in range(60)])
    short.fix_length(50, at_step=30)
    long.fix_length(900, at_step=30)
    before = [(short.lr_for_step(0, t), long.lr_for_step(0, t)) for t in range(30)]
    assert all(a == b for a, b in before)
    assert short.lr_for_step(0, 40) == pytest.approx(0.05 * (1 + math.cos(math.pi * 10 / 20)))
    assert short.lr_for_step(0, 49) < long.lr_for_step(0, 49)
    fresh = Schedule("cosine", 0.1, epochs=1, steps_per_epoch=1000, warmup_steps=10,
                     length_known=False)
    fresh.load_state_dict(short.state_dict())
    assert (fresh.total_steps, fresh.decay_start) == (50, 30)
    # a checkpoint of a budget run saved before decay_start was stored: the decay began at 35
    old_state = {k: v for k, v in short.state_dict().items() if k != "decay_start"}
    fresh.load_state_dict(old_state)
    assert fresh.decay_start == 35


@pytest.mark.parametrize("minutes, step_seconds, timed_from, fixed_after", [
    (30, 0.125, 240, 480),   # 30 minutes: 30 s of warm-up, then 60 s of 0.125 s steps
    (30, 5.0, 6, 30),        # 30 minutes: at least 30 steps even when they take 150 s
    (2, 0.125, 24, 48),      # 2 minutes: 2.5% of them (3 s) of warm-up, 5% (6 s) timed
    (30, 10.0, MEASURE_FROM, 30),   # steps of 10 s: the warm-up is over, not the 5 steps
])
def test_the_budget_times_a_minute_or_a_share_of_it_and_30_steps(minutes, step_seconds,
                                                                 timed_from, fixed_after):
    now = [0.0]
    budget = TimeBudget(minutes, started=0.0, clock=lambda: now[0])
    answers = []
    for steps_done in range(1, 2000):
        now[0] += step_seconds
        answers.append(budget.after_step(steps_done, 100, 0, 16))
        if answers[-1] is not None:
            break
    # answers[k] came after step k + 1: T after step timed_from + fixed_after, None before
    assert len(answers) == timed_from + fixed_after and answers[-1] is not None
    assert all(a is None for a in answers[:-1])
    assert f"over {fixed_after} steps" in budget.report


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
    # a 30-second budget times 5% of it, 1.5 s, so at least MIN_MEASURED steps bind: after step
    # MEASURE_FROM + MIN_MEASURED the clock says they took MIN_MEASURED * 0.5 s and the run so
    # far (MEASURE_FROM + MIN_MEASURED) * 0.5 s; a validation of 16 images in batches of 16 is
    # estimated at 0.4 of a step; the final report makes 10 passes, one over each of the 10
    # views, which hold the centre crop and its mirror image (both tests are on by default)
    done = MEASURE_FROM + MIN_MEASURED
    # The steps are planned to end a MARGIN share of the 30 seconds early.
    expected = naive_steps_within(30.0 * (1 - MARGIN), done * STEP_SECONDS, done, STEP_SECONDS,
                                  TRAIN // BATCH, 0.4 * STEP_SECONDS, final=10)
    assert f"{expected} steps" in out.getvalue()
    rows = h.read_metrics(run_dir)
    assert len(rows) == math.ceil(expected / (TRAIN // BATCH))
    assert fake_time[0] == pytest.approx(expected * STEP_SECONDS)      # exactly T steps ran
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == len(rows)
    # the cosine decay ran from the step T was fixed at over the rest of the T steps: the last
    # step's rate
    decayed = 0.02 * 0.5 * (1 + math.cos(math.pi * (expected - 1 - done) / (expected - done)))
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
