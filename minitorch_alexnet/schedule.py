"""Learning-rate schedules.

- ``plateau`` (the paper's, section 5): divide the rate by 10 whenever the validation error
  has not improved for ``patience`` epochs, at most ``max_decays`` times (the paper: 3).
- ``step``: divide by 10 every ``step_epochs`` epochs.
- ``cosine``: lr(t) = lr0 * (1 + cos(pi * t / T)) / 2 over the T steps of the run.
- ``constant``.

Warm-up (``warmup_steps`` = W > 0, any kind): the first W steps ramp the rate linearly,
lr(t) = lr_kind(t) * (t + 1) / W, so that the first large gradients of a fresh network meet a
small rate; ``cosine`` then decays over the steps after the warm-up,
lr(t) = lr0 * (1 + cos(pi * (t - W) / (T - W))) / 2 for W <= t < T.

The run's length T is ``epochs * steps_per_epoch``, or ``total_steps`` when it is fixed another
way (``--time-budget``: after measuring the first steps, ``budget.py``). Such a schedule starts
with ``length_known=False``: the rate stays at lr0 after the warm-up until ``fix_length(T,
step)``, and the cosine decays from that step (``decay_start``, at least W) to T, so that the
rate of a step never depends on a T that was not known when the step ran.

A schedule is a small object with ``lr_for_step(epoch, step_in_epoch)`` (called before each
update), ``end_epoch(val_error)`` (after each validation) and a ``state_dict`` saved in
checkpoints, so that a resumed run continues the same schedule.
"""
import math

SCHEDULES = ("plateau", "step", "cosine", "constant")


class Schedule:
    def __init__(self, kind, base_lr, *, epochs, steps_per_epoch, patience=2, max_decays=3,
                 step_epochs=30, factor=0.1, min_improvement=1e-4, warmup_steps=0,
                 length_known=True, total_steps=None):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        self.kind, self.base_lr, self.factor = kind, float(base_lr), factor
        self.epochs, self.steps_per_epoch = epochs, max(1, steps_per_epoch)
        self.patience, self.max_decays, self.step_epochs = patience, max_decays, step_epochs
        self.min_improvement = min_improvement
        self.warmup_steps = int(warmup_steps)
        # where the cosine decay starts; None: T is not known yet, the rate waits at lr0
        self.decay_start = self.warmup_steps if length_known else None
        self.total_steps = total_steps          # None: epochs * steps_per_epoch
        # plateau state
        self.plateau_lr = float(base_lr)
        self.best_error = None
        self.epochs_without_improvement = 0
        self.decays = 0

    def fix_length(self, total_steps, at_step):
        """T is known from step ``at_step`` on: the cosine decays from there to ``total_steps``."""
        self.total_steps = total_steps
        self.decay_start = max(self.warmup_steps, at_step)

    def length(self):
        """T, the steps of the whole run."""
        return self.total_steps or self.epochs * self.steps_per_epoch

    def lr_for_step(self, epoch, step_in_epoch):
        t = epoch * self.steps_per_epoch + step_in_epoch
        ramp = min(1.0, (t + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return ramp * self._lr_without_warmup(epoch, t)

    def _lr_without_warmup(self, epoch, t):
        if self.kind == "plateau":
            return self.plateau_lr
        if self.kind == "step":
            return self.base_lr * self.factor ** (epoch // self.step_epochs)
        if self.kind == "cosine":
            if self.decay_start is None or t < self.decay_start:     # warm-up, or T not known
                return self.base_lr
            span = max(1, self.length() - self.decay_start)
            return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * min(t - self.decay_start, span) / span))
        return self.base_lr

    def end_epoch(self, val_error):
        """Update the plateau rule with this epoch's validation error; returns a message when
        the rate was divided, else None."""
        if self.kind != "plateau" or val_error is None:
            return None
        if self.best_error is None or val_error < self.best_error - self.min_improvement:
            self.best_error = val_error
            self.epochs_without_improvement = 0
            return None
        self.epochs_without_improvement += 1
        if self.epochs_without_improvement >= self.patience and self.decays < self.max_decays:
            self.plateau_lr *= self.factor
            self.decays += 1
            self.epochs_without_improvement = 0
            return (f"validation error has not improved for {self.patience} epochs: "
                    f"learning rate divided by {1 / self.factor:g} to {self.plateau_lr:g}")
        return None

    def state_dict(self):
        return {"plateau_lr": self.plateau_lr, "best_error": self.best_error,
                "epochs_without_improvement": self.epochs_without_improvement,
                "decays": self.decays, "total_steps": self.total_steps,
                "decay_start": self.decay_start}

    def load_state_dict(self, state):
        self.plateau_lr = float(state["plateau_lr"])
        self.best_error = state["best_error"]
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.decays = int(state["decays"])
        self.total_steps = state.get("total_steps")     # absent before --time-budget existed
        if "decay_start" in state:
            self.decay_start = state["decay_start"]
        elif self.total_steps is not None:      # a budget run saved when the decay began at 35
            self.decay_start = max(self.warmup_steps, 35)
