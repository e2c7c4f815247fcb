"""``--time-budget MINUTES``: size a run to the time it may take.

The run trains its first steps with the rate its warm-up gives (the cosine decay waits for T,
``schedule.py``), lets WARM_SECONDS pass (at most WARM_SHARE of the budget) and MEASURE_FROM
steps, times the steps after them for at least MIN_MEASURED steps and MEASURE_SECONDS (at most
MEASURE_SHARE of the budget), and then fixes T, the number of steps of the whole run, so that it
ends within the budget. A longer window averages more of what changes a step's time (the
loader's threads filling their queue, other programs): timed over 30 steps only (3 to 6
seconds), the estimate was off by 10 to 25% on a busy two-core machine. The wait before it
leaves out the first half minute, when steps are slower than for the rest of the run: on Linux,
NumPy asks for huge memory pages, and the kernel gathers a process's memory into them in the
background over its first tens of seconds. Measured on the 2-core machine, the 30-minute
recipe's steps took 122-143 ms (medians of 50) over the first 300 steps (about 40 s), and
103-113 ms from then on; timed from step 5, the budget planned 10% fewer steps than the run had
time for. The steps timed after that may still be faster than the run's average on a shared
machine, whose speed drifts by 10% from minute to minute: the steps are planned to end MARGIN of
the budget early (90 s of 30 minutes). Timed at 112 ms per step, the recipe's epochs then ran at
115-127 ms and took 31 min 4 s of its 30; with the margin, two seeds took 29 min 15 s and 29 min
32 s. From then on the run is a run of T steps like any other: the schedule decays over exactly
T steps, T is saved in every checkpoint, and a resumed run keeps it, so that it ends with the
same weights as one that was never stopped. The clock is read once; two runs of one budget on
machines of different speed differ in T, and in nothing else. (A run stopped before T is fixed
measures again after its resume; T depends on the clock, so such a run cannot be bit-exact
anyway.)

What the budget must hold, with t the measured seconds per step, S steps per epoch, v the
seconds of one validation pass, and e the seconds already spent (reading the data, the mean
image and colour PCA, the steps measured, n of them)::

    e + (T - n) * t + (ceil(ceil(T / S) / N) + f) * v  <=  (1 - MARGIN) * budget

(ceil(T / S) epochs, the last possibly short; a validation after every N-th of them
(--val-every N) and after the last, ceil(epochs / N) in all; and the final report's f passes:
one of the centre crops, two with their mirror images, ten with the ten views, which hold the
centre crop and its mirror: ``reporting.final_report``). v is not
measured (that would cost a pass): a validation image costs about a third of a training image
(forward only, against forward and backward: ``EVAL_COST``), so v = t * val_images /
batch_size * EVAL_COST.
"""
import math

MEASURE_FROM = 5          # steps before the timing starts (they warm up caches and threads),
WARM_SECONDS = 30.0       # and seconds (huge pages, see above),
WARM_SHARE = 0.025        # unless that is more than this share of the budget
MIN_MEASURED = 30         # steps timed at least,
MEASURE_SECONDS = 60.0    # and seconds timed at least,
MEASURE_SHARE = 0.05      # unless that is more than this share of the budget
MARGIN = 0.05             # plan to end this share of the budget early (module docstring)
EVAL_COST = 0.4


def validation_seconds(step_seconds, val_images, batch_size):
    return step_seconds * val_images / batch_size * EVAL_COST


def steps_within(budget_seconds, elapsed_seconds, steps_done, step_seconds, steps_per_epoch,
                 val_seconds, final_passes=1, val_every=1):
    """The largest T >= steps_done with e + (T - n) t + (ceil(ceil(T / S) / N) + f) v <= budget
    (see the module docstring). ceil(ceil(T / S) / N) >= T / (S N), so
    T <= (budget - e - f v + n t) / (t + v / (S N)); count down from just above that bound
    (the ceilings add less than 2 v: a few steps at most)."""
    bound = (budget_seconds - elapsed_seconds - final_passes * val_seconds + steps_done * step_seconds
             ) / (step_seconds + val_seconds / (steps_per_epoch * val_every))
    total = max(steps_done, math.floor(bound) + 1)       # + 1: the bound's own rounding

    def needed(steps):
        validations = math.ceil(math.ceil(steps / steps_per_epoch) / val_every)
        return (elapsed_seconds + (steps - steps_done) * step_seconds
                + (validations + final_passes) * val_seconds)

    while total > steps_done and needed(total) > budget_seconds:
        total -= 1
    return total


class TimeBudget:
    """Times the steps from the first one that ends at least ``warm_up`` seconds after this
    process started and after step MEASURE_FROM (any step of a resumed run) until ``window``
    seconds and MIN_MEASURED steps have passed, then gives the run's length in steps.
    ``spent``: seconds of the run before this process started it (a resume); ``final_passes``:
    validation passes of the final report; ``val_every``: --val-every."""

    def __init__(self, minutes, started, clock, spent=0.0, final_passes=1, val_every=1):
        self.seconds = 60.0 * minutes
        self.final_passes, self.val_every = final_passes, val_every
        self.window = min(MEASURE_SECONDS, MEASURE_SHARE * self.seconds)
        self.warm_up = min(WARM_SECONDS, WARM_SHARE * self.seconds)
        self.started, self.clock, self.spent = started, clock, spent
        self.mark = self.mark_step = None
        self.report = ""

    @classmethod
    def for_config(cls, config, started, clock, spent=0.0):
        """The budget of a run's ``TrainConfig``: its minutes, and the passes of its final
        report, one pass over every view it scores: 10 with --ten-crop, else 2 with
        --flip-test (the crop and its mirror image), else 1."""
        views = 10 if config.ten_crop else 2 if config.flip_test else 1
        return cls(config.time_budget, started, clock, spent, final_passes=views,
                   val_every=config.val_every)

    def after_step(self, steps_done, steps_per_epoch, val_images, batch_size):
        """Call after every step until it returns T (an int); None while still measuring."""
        now = self.clock()
        if self.mark is None:
            if steps_done >= MEASURE_FROM and now - self.started >= self.warm_up:
                self.mark, self.mark_step = now, steps_done
            return None
        if steps_done - self.mark_step < MIN_MEASURED or now - self.mark < self.window:
            return None
        step = (now - self.mark) / (steps_done - self.mark_step)
        elapsed = self.spent + now - self.started
        val_seconds = validation_seconds(step, val_images, batch_size)
        total = steps_within((1 - MARGIN) * self.seconds, elapsed, steps_done, step,
                             steps_per_epoch, val_seconds, self.final_passes, self.val_every)
        self.report = (f"time budget {self.seconds / 60:g} min: {1000 * step:.0f} ms per step "
                       f"over {steps_done - self.mark_step} steps, {elapsed:.0f} s spent: "
                       f"{total} steps ({total / steps_per_epoch:.2f} epochs) in all")
        return total
