"""The training loop: the paper's recipe (section 5) over any of our data sets.

One step: forward with dropout, softmax cross-entropy, backward, the paper's momentum SGD
update. After each epoch: validation (top-1 and top-5 error), the learning-rate schedule, a
line of metrics, plots and a checkpoint. Everything random (data order, crops, flips, colour
shifts, dropout masks) is a pure function of the seed, the epoch and the image's index in the
data set. A checkpoint stores the position (epoch, batch) and every state that evolves
(weights, velocities, schedule, metrics). So ``--resume``
continues exactly where a run stopped, and on the CPU a resumed run ends with the same weights,
bit for bit, as one that was never interrupted. Checkpoints are written after each epoch, on
Ctrl-C, every --checkpoint-every steps and every --checkpoint-minutes of training (10 by
default); which of these wrote one makes no difference to a resume. A run stopped before its
first checkpoint is started again from its config.json (``train.py``), as exactly.

With a ``comm`` of several processes (``distributed.py``, under ``mpiexec``) each process
trains on its slice of every batch and the gradients are summed; only rank 0 prints and writes
the run directory, and a checkpoint does not record how many processes wrote it.

Beside this file: ``train_config.py`` holds the settings (``TrainConfig``), ``run_state.py``
what a checkpoint holds and how it is read back, ``evaluation.py`` the top-1 / top-5 errors.

A run directory holds::

    config.json          the settings of the run
    metrics.jsonl        one JSON line per epoch
    curves.png           loss and error against epochs
    conv1_filters.png    the conv1 kernels, one block per column (the paper's Figure 3)
    checkpoints/last.npz, previous.npz
"""
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict

import numpy as np

from . import functional as F
from .backend import device_context, to_device, to_numpy
from .budget import TimeBudget
from .checkpoint import write_text_atomically
from .data import DataLoader, Preprocess, build_datasets, image_channels
from .distributed import GradientSum, SingleProcess, broadcast_training_state, zero_gradients
from .evaluation import evaluation_loader
from .model import AlexNet
from .nonfinite import all_finite, locate_nonfinite
from .optim import SGD
from .reporting import epoch_metrics, epoch_validation, final_report, log_epoch
from .run_state import (TrainingPosition, preprocess_from_checkpoint, restore_training,
                        save_run_state, write_metrics, write_plots)
from .schedule import Schedule
from .train_config import TrainConfig


class TrainingStopped(RuntimeError):
    """Training stopped on purpose (non-finite values, too many bad images); the last good
    checkpoint is intact."""


class Trainer:
    """Builds data, model and optimizer from a TrainConfig and runs training, or resumes it
    from ``resume_from``, a ``run_state.SavedRun`` of the same run."""

    # Seconds, for --checkpoint-minutes: when a checkpoint is due (a test may swap the clock).
    clock = staticmethod(time.monotonic)

    def __init__(self, config: TrainConfig, *, resume_from=None, out=None, comm=None):
        self.config = config.resolved()
        self.out = out or sys.stdout
        self.comm = comm or SingleProcess()
        self.is_root = self.comm.rank == 0       # the process that prints and writes files
        self.stop_requested = False              # set by Ctrl-C / SIGTERM in this process
        self.stop_agreed = False                 # some process asked to stop (distributed.py)
        self.last_checkpoint_time = self.started = self.clock()
        self._build_data(resume_from)
        self._build_model()
        self.optimizer = SGD(self.model, lr=self.config.lr, momentum=self.config.momentum,
                             weight_decay=self.config.weight_decay)
        c, steps = self.config, len(self.train_loader)
        self.schedule = Schedule(c.schedule, c.lr, epochs=c.epochs, steps_per_epoch=steps,
                                 patience=c.patience, step_epochs=c.lr_step,
                                 warmup_steps=c.warmup_steps(steps),
                                 length_known=not c.time_budget)
        self.epoch, self.batches_done, self.global_step = 0, 0, 0
        self.history = []
        self.epoch_sums = self._zero_sums()
        if resume_from is not None:
            self._restore(resume_from)
        self.budget = None                       # --time-budget: until the run's length is fixed
        if c.time_budget and self.schedule.total_steps is None:
            spent = sum(row["seconds"] for row in self.history) + self.epoch_sums["seconds"]
            self.budget = TimeBudget.for_config(c, self.started, self.clock, spent)
        self.gradient_sum = GradientSum(self.comm)
        broadcast_training_state(self.comm, self.model, self.optimizer)

    # ---- set-up ------------------------------------------------------------------------
    def log(self, text):
        if self.is_root:
            print(text, file=self.out, flush=True)

    def _build_data(self, saved=None):
        c = self.config
        self.train_set, self.val_set = build_datasets(
            c.dataset, c.data_dir, c.val_dir, seed=c.seed, limit_train=c.limit_train,
            limit_val=c.limit_val, val_fraction=c.val_fraction,
            image_size=c.stored_size, crop_padding=c.crop_padding)
        self.classes = list(self.train_set.classes)
        self.in_channels = image_channels(self.train_set)
        if saved is not None:
            # A resumed run keeps the statistics it started with (no second pass over the data).
            if saved.classes != self.classes:
                raise ValueError(f"the data set's classes {self.classes[:5]}... are not the run's "
                                 f"{saved.classes[:5]}...; did --data-dir change?")
            self.preprocess = preprocess_from_checkpoint(saved)
        else:
            use_pca = c.pca and self.in_channels == 3
            mean = None if c.mean == "none" else c.mean
            self.preprocess = Preprocess.from_dataset(
                self.train_set, c.image_size, c.stored_size, mean=mean, pca=use_pca, flip=c.flip,
                erase=c.erase, seed=c.seed, num_workers=c.workers, std=c.std, padding=c.crop_padding)
        self._make_loaders()

    def _make_loaders(self):
        c = self.config
        self.part = (self.comm.rank, self.comm.size)   # this process's slice of each batch
        if c.batch_size < self.comm.size:
            raise ValueError(f"--batch-size {c.batch_size} is the global batch: it must be at "
                             f"least the number of processes, {self.comm.size}")
        self.train_loader = DataLoader(self.train_set, c.batch_size, seed=c.seed,
                                       transform=self.preprocess, train=True, part=self.part,
                                       num_workers=c.workers, max_bad_fraction=c.max_bad_fraction)
        self.val_loader = evaluation_loader(self.val_set, self.preprocess, max(c.batch_size, 100),
                                            workers=c.workers, seed=c.seed, part=self.part,
                                            max_bad_fraction=c.max_bad_fraction)

    def _build_model(self):
        c = self.config
        devices = c.columns if c.columns else [c.device]
        self.device = devices[0]
        self.model = AlexNet(len(self.classes), c.preset, seed=c.seed, devices=devices,
                             width=c.width, in_channels=self.in_channels, input_size=c.image_size,
                             init=c.init, dtype=c.dtype, variant=c.variant(), fc_width=c.fc_width)

    @staticmethod
    def _zero_sums():
        return {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "bad_before_resume": []}

    # ---- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self):
        """Save the run's state (``run_state.py`` says what it holds) as checkpoints/last.npz;
        rank 0 writes it, the other processes hold the same state."""
        if not self.is_root:
            return None
        # The unreadable images met so far this epoch: the loader lists only its own part.
        epoch_sums = dict(self.epoch_sums, bad_before_resume=self._epoch_bad_images())
        position = TrainingPosition(self.epoch, self.batches_done, self.global_step, epoch_sums,
                                    self.history)
        path = save_run_state(self.config.run_dir, config=self.config, model=self.model,
                              optimizer=self.optimizer, schedule=self.schedule,
                              preprocess=self.preprocess, classes=self.classes, position=position)
        self.last_checkpoint_time = self.clock()
        return path

    def _checkpoint_due(self):
        """After a step: is a checkpoint due? On a stop request, every --checkpoint-every steps,
        and when --checkpoint-minutes have passed since the last one. (The clock only decides
        when; the checkpoint holds the exact position, so a resume from it is exact too.)"""
        c = self.config
        if self._stopping() or (c.checkpoint_every and self.global_step % c.checkpoint_every == 0):
            return True
        minutes = c.checkpoint_minutes or 0
        return minutes > 0 and self.clock() - self.last_checkpoint_time >= 60.0 * minutes

    def _restore(self, saved):
        """Continue from a ``SavedRun``: weights, velocities, schedule, dropout generator, and
        where the run stood."""
        position = restore_training(saved, self.model, self.optimizer, self.schedule)
        self.epoch, self.batches_done = position.epoch, position.batches_done
        self.global_step = position.global_step
        self.epoch_sums, self.history = position.epoch_sums, position.history

    def _write_run_files(self, plots=True):
        """metrics.jsonl (from the history, so it agrees with the checkpoint) and the plots;
        rank 0 writes them."""
        if self.is_root:
            write_metrics(self.config.run_dir, self.history)
            if plots:
                write_plots(self.config.run_dir, self.history, self.model, self.log)

    def _write_config(self):
        """run_dir/config.json; atomic: a run killed before its first checkpoint is resumed
        from it (train.py)."""
        if self.is_root:
            os.makedirs(self.config.run_dir, exist_ok=True)
            write_text_atomically(os.path.join(self.config.run_dir, "config.json"),
                                  json.dumps(asdict(self.config), indent=2))

    # ---- the run's length ------------------------------------------------------------------
    def _steps_done(self):
        return self.epoch * len(self.train_loader) + self.batches_done

    def _all_steps_done(self):
        """A run whose length is fixed in steps (--time-budget) ends mid-epoch at that step."""
        total = self.schedule.total_steps
        return total is not None and self._steps_done() >= total

    def _measure_for_budget(self):
        """--time-budget: once the first steps are timed, fix the run's length in steps and the
        epochs it spans (``budget.py``); rank 0's clock says when and how long, for all."""
        steps = len(self.train_loader)
        total = self.comm.broadcast_object(self.budget.after_step(
            self._steps_done(), steps, len(self.val_set), self.config.batch_size))
        if total is None:
            return
        self.schedule.fix_length(total, at_step=self._steps_done())
        self.config.epochs = math.ceil(self.schedule.total_steps / steps)
        self.log("  " + self.budget.report)
        self.budget = None
        self._write_config()

    # ---- the loop ------------------------------------------------------------------------
    def _stopping(self):
        """Stop after this step? Several processes stop on what they agreed in the step's sum
        (a signal may reach them at different moments); one process on its own flag."""
        return self.stop_agreed or (self.comm.size == 1 and self.stop_requested)

    def _install_signal_handlers(self):
        def request_stop(signum, frame):
            if self.stop_requested:              # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self.stop_requested = True
            self.log("\nstopping after this step (press Ctrl-C again to stop at once) ...")
        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, request_stop)
        except ValueError:                       # not the main thread: no handlers
            pass
        return previous

    def _progress(self, total, initial, epoch):
        if not (self.config.progress and self.is_root):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{self.config.epochs}",
                    unit="batch", file=sys.stderr, dynamic_ncols=True, leave=False,
                    mininterval=0.5)

    def train_step(self, batch, lr):
        """One SGD step on this process's slice of a global batch (a ``data.loader.Batch``).
        Returns the global batch's (loss sum, correct, images). Raises TrainingStopped if a
        non-finite value appears, naming the first layer that produced it."""
        keys = self.epoch * len(self.train_set) + np.asarray(batch.indices)  # one per (epoch, image)
        with device_context(self.device):       # the logits and the loss live on the first device
            dlogits, loss_sum, correct = self._forward(batch, keys)
            # One small sum over the processes: the loss, hits and size of the global batch,
            # and whether any process was asked to stop (all stop after the same step).
            loss_sum, correct, count, stops = self.comm.sum_numbers(
                [loss_sum, correct, len(batch.labels), self.stop_requested])
            self.stop_agreed = stops > 0
            if count == 0:                      # no process read an image: no step
                return 0.0, 0, 0
            if dlogits is None:                 # nothing read here: a zero share of the sum
                zero_gradients(self.model)
            else:                               # this slice's share of the global mean
                dlogits *= len(batch.labels) / count
                self.model.backward(dlogits, input_grad=False)   # no gradient for the images
            self.gradient_sum(self.model)       # sum over the processes (one: nothing to do)
        loss = loss_sum / count
        if not (math.isfinite(loss) and all_finite([g for _, _, _, g in self.model.parameters()])):
            self._stop_on_nonfinite(batch, keys, loss)
        self.optimizer.lr = lr
        self.optimizer.step()
        return loss_sum, int(correct), int(count)

    def _forward(self, batch, keys):
        """Forward and loss on this process's slice: (dlogits of its mean loss, loss sum,
        correct), or (None, 0, 0) for an empty slice."""
        if not len(batch.labels):
            return None, 0.0, 0
        x, labels = self._on_device(batch)
        logits = self.model.forward(x, train=True, dropout_keys=keys)
        loss, dlogits = F.softmax_cross_entropy(logits, labels, smoothing=self.config.label_smoothing)
        correct = int((to_numpy(logits).argmax(axis=1) == batch.labels).sum())
        return dlogits, float(loss) * len(batch.labels), correct

    def _on_device(self, batch):
        """The batch's images (in the model's dtype) and labels on the first device."""
        x = batch.x.astype(self.model.dtype, copy=False)
        return to_device(x, self.device), to_device(batch.labels, self.device)

    def _stop_on_nonfinite(self, batch, keys, loss):
        """Replay the step layer by layer to find where nan or inf appeared, and stop."""
        where = "another process's slice of the batch"
        if len(batch.labels):
            with device_context(self.device):
                where = locate_nonfinite(self.model, *self._on_device(batch), keys)
        raise TrainingStopped(
            f"non-finite {'loss' if not math.isfinite(loss) else 'gradient'} at epoch "
            f"{self.epoch + 1}, step {self.batches_done + 1}: {where}. Training stopped; "
            f"the last good checkpoint in {self.config.run_dir}/checkpoints is intact."
            + ("" if where.startswith("the input") else " Try a lower --lr."))

    def run(self):
        c = self.config
        self._write_config()
        self.last_checkpoint_time = self.clock()
        self.log(f"training AlexNet ({c.preset} preset, {self.model.num_parameters():,} parameters, "
                 f"{'columns on ' + ' and '.join(c.columns) if c.columns else 'device ' + c.device}, "
                 f"{self.comm.describe()}) on "
                 f"{c.dataset}: {len(self.train_set)} training / {len(self.val_set)} validation "
                 f"images, {len(self.classes)} classes; run directory {c.run_dir}")
        if self.history:
            self._write_run_files(plots=False)   # a resumed run: metrics.jsonl agrees with the checkpoint
        previous_handlers = self._install_signal_handlers()
        try:
            while self.epoch < c.epochs:
                if not self._run_epoch() or (self._stopping() and self.epoch < c.epochs):
                    self.log(f"interrupted: checkpoint saved at epoch {self.epoch + 1}, step "
                             f"{self.batches_done}; continue with --resume {c.run_dir}")
                    return 130
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
        return 0

    def _epoch_bad_images(self):
        """Unreadable images of the current epoch: before a resume, and since."""
        earlier = [tuple(item) for item in self.epoch_sums.get("bad_before_resume", [])]
        return earlier + [tuple(item) for item in self.train_loader.bad_images]

    def _run_epoch(self):
        """Train the rest of the current epoch, validate, checkpoint. False if interrupted."""
        if not self._train_rest_of_epoch():
            return False
        self._end_epoch()
        return True

    def _train_rest_of_epoch(self):
        """SGD steps over the current epoch's batches not done yet, adding to ``epoch_sums``;
        a checkpoint whenever ``_checkpoint_due`` says so. False if stopped."""
        epoch = self.epoch
        bar = self._progress(len(self.train_loader), self.batches_done, epoch)
        started = time.perf_counter()
        try:
            earlier_bad = self.epoch_sums.get("bad_before_resume", [])
            for batch in self.train_loader.batches(epoch, start_batch=self.batches_done,
                                                   earlier_bad=earlier_bad):
                lr = self.schedule.lr_for_step(epoch, self.batches_done)
                loss_sum, correct, count = self.train_step(batch, lr)
                sums = self.epoch_sums
                sums["loss"] += loss_sum
                sums["correct"] += correct
                sums["seen"] += count
                self.batches_done += 1
                self.global_step += 1
                if self.budget is not None:
                    self._measure_for_budget()
                if bar is not None:
                    rate = sums["seen"] / max(1e-9, sums["seconds"] + time.perf_counter() - started)
                    bar.set_postfix_str(f"loss {sums['loss'] / max(1, sums['seen']):.3f} lr {lr:.2g} "
                                        f"{rate:.0f} img/s", refresh=False)
                    bar.update(1)
                if self._checkpoint_due():
                    sums["seconds"] += time.perf_counter() - started
                    started = time.perf_counter()
                    self.save_checkpoint()
                    if self._stopping():
                        return False
                if self._all_steps_done():
                    break
        finally:
            if bar is not None:
                bar.close()
        self.epoch_sums["seconds"] += time.perf_counter() - started
        return True

    def _end_epoch(self):
        """After the epoch's last step: validate (every --val-every epochs and after the last),
        log the epoch's line, let the schedule react, move on to the next epoch, then write the
        checkpoint, metrics.jsonl and the plots."""
        bad_images = self._epoch_bad_images()
        row = epoch_metrics(self, epoch_validation(self), len(bad_images))
        self.history.append(row)
        log_epoch(self, row, bad_images)
        message = self.schedule.end_epoch(row["val_top1_error"])
        if message:
            self.log("  " + message)
        self.epoch += 1
        self.batches_done = 0
        self.epoch_sums = self._zero_sums()
        self.save_checkpoint()
        self._write_run_files()

    def final_report(self):
        """Validation with the final weights (and the other views: ``reporting.py``)."""
        return final_report(self)
