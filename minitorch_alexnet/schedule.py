"""Learning-rate schedules.

- ``plateau`` (the paper's, section 5): divide the rate by 10 whenever the validation error
  has not improved for ``patience`` epochs, at most ``max_decays`` times (the paper: 3).
- ``step``: divide by 10 every ``step_epochs`` epochs.
- ``cosine``: lr(t) = lr0 * (1 + cos(pi * t / T)) / 2 over the T steps of the run.
- ``constant``.

A schedule is a small object with ``lr_for_step(epoch, step_in_epoch)`` (called before each
update), ``end_epoch(val_error)`` (after each validation) and a ``state_dict`` saved in
checkpoints, so that a resumed run continues the same schedule.
"""
import math

SCHEDULES = ("plateau", "step", "cosine", "constant")


class Schedule:
    def __init__(self, kind, base_lr, *, epochs, steps_per_epoch, patience=2, max_decays=3,
                 step_epochs=30, factor=0.1, min_improvement=1e-4):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        self.kind, self.base_lr, self.factor = kind, float(base_lr), factor
        self.epochs, self.steps_per_epoch = epochs, max(1, steps_per_epoch)
        self.patience, self.max_decays, self.step_epochs = patience, max_decays, step_epochs
        self.min_improvement = min_improvement
        # plateau state
        self.plateau_lr = float(base_lr)
        self.best_error = None
        self.epochs_without_improvement = 0
        self.decays = 0

    def lr_for_step(self, epoch, step_in_epoch):
        if self.kind == "plateau":
            return self.plateau_lr
        if self.kind == "step":
            return self.base_lr * self.factor ** (epoch // self.step_epochs)
        if self.kind == "cosine":
            total = self.epochs * self.steps_per_epoch
            t = epoch * self.steps_per_epoch + step_in_epoch
            return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))
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
                "decays": self.decays}

    def load_state_dict(self, state):
        self.plateau_lr = float(state["plateau_lr"])
        self.best_error = state["best_error"]
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.decays = int(state["decays"])
