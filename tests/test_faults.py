"""Numerical faults stop training with a message naming where the first nan/inf appeared
(the input, a layer's forward or backward pass) and leave the last good checkpoint intact;
API misuse (arrays on two devices, wrong dtype or image size) is named where it enters."""
import contextlib
import io
import math
import re

import numpy as np
import pytest

import minitorch_alexnet.checks as checks
from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet import functional as F
from minitorch_alexnet import train
from minitorch_alexnet.model import AlexNet
from minitorch_alexnet.data.loader import Batch
from minitorch_alexnet.trainer import TrainConfig, Trainer, TrainingStopped

import helpers_train as h

pytestmark = [pytest.mark.train, pytest.mark.faults]


@pytest.fixture
def trainer(tmp_path):
    config = TrainConfig(preset="small", dataset="builtin", width=0.125, limit_train=32,
                         limit_val=16, batch_size=16, epochs=1, workers=1, progress=False,
                         run_dir=str(tmp_path / "run"))
    return Trainer(config, out=io.StringIO())


@pytest.fixture
def batch(trainer):
    first = next(iter(trainer.train_loader.batches(0)))
    return Batch(np.array(first.x), np.array(first.labels), first.indices)


def stopped_step(trainer, batch):
    """Run one step that must stop; check the weights were not updated; return the message."""
    before = trainer.model.state_dict()
    with np.errstate(all="ignore"), pytest.raises(TrainingStopped) as info:
        trainer.train_step(batch, 0.02)
    after = trainer.model.state_dict()
    for name in before:
        assert np.array_equal(before[name], after[name], equal_nan=True), f"{name} was updated"
    message = str(info.value)
    assert "Training stopped" in message and "last good checkpoint" in message and "intact" in message
    return message


def test_a_good_step_passes(trainer, batch):
    """A finite step returns the batch's real loss and number of correct predictions (those of
    a forward pass recomputed here with the same weights and dropout masks), fills every
    gradient with finite values, and moves every weight by the first step of the paper's SGD:
    w <- w - lr (wd w + dL/dw), the velocity starting at zero."""
    x, labels = batch.x, batch.labels
    model, lr, decay = trainer.model, 0.02, trainer.optimizer.weight_decay
    before = model.state_dict()
    keys = batch.indices + 0 * len(trainer.train_set)        # epoch 0: the step's dropout keys
    logits = model.forward(x, train=True, dropout_keys=keys)
    expected_loss = float(F.softmax_cross_entropy(logits, labels,
                                                  smoothing=trainer.config.label_smoothing)[0])
    expected_correct = int((np.asarray(logits).argmax(axis=1) == labels).sum())

    loss_sum, correct, count = trainer.train_step(batch, lr)

    assert count == len(labels) and math.isfinite(loss_sum)
    assert loss_sum / count == pytest.approx(expected_loss, rel=1e-6)
    assert correct == expected_correct
    gradients, after = model.grad_dict(), model.state_dict()
    assert sorted(gradients) == sorted(before)
    for name, w in before.items():
        g = gradients[name]
        assert np.isfinite(g).all() and np.any(g != 0), f"{name}: gradient not filled"
        assert not np.array_equal(after[name], w), f"{name} did not move"
        expected = w.astype(np.float64) - lr * (decay * w.astype(np.float64) + g)
        np.testing.assert_allclose(after[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)


def test_nan_in_the_input_batch(trainer, batch):
    batch.x[3, 1, 5, 7] = np.nan
    message = stopped_step(trainer, batch)
    assert "non-finite loss at epoch 1, step 1" in message
    assert re.search(r": the input batch (contains|is the first to produce) a non-finite value", message), message


def test_inf_weight_in_conv3_names_its_forward_pass(trainer, batch):
    trainer.model.params["conv3.weight"][0][0, 0, 1, 1] = np.inf
    message = stopped_step(trainer, batch)
    assert "the forward pass of conv3 is the first to produce a non-finite value" in message
    for earlier in ("conv1", "conv2", "input batch"):
        assert earlier not in message


def test_backward_only_fault_names_the_layer(trainer, batch, monkeypatch):
    """LRN's backward returns nan: the loss is finite, the gradients are not, and the first
    layer whose backward pass (fc8 down to conv1) produces a nan is conv2."""
    real = F.lrn_backward
    monkeypatch.setattr(F, "lrn_backward", lambda dy, cache: real(dy, cache) * np.nan)
    message = stopped_step(trainer, batch)
    assert "non-finite gradient" in message
    assert "the backward pass of conv2 is the first to produce a non-finite value" in message
    assert "forward" not in message


def test_check_finite_is_off_again_after_locating(trainer, batch):
    batch.x[0, 0, 0, 0] = np.inf
    stopped_step(trainer, batch)
    assert trainer.model.check_finite is False
    batch.x[0, 0, 0, 0] = 0.0
    loss_sum, _, _ = trainer.train_step(batch, 0.02)             # training can go on
    assert math.isfinite(loss_sum)


def test_huge_learning_rate_stops_with_status_1_and_keeps_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), np.errstate(all="ignore"):
        status = train.main(h.tiny_args(run_dir, train=64, val=16, batch=16, epochs=1,
                                        extra=["--lr", "1e8", "--checkpoint-every", "1"]))
    assert status == 1
    text = err.getvalue()
    assert text.startswith("error: non-finite")
    assert re.search(r"the (forward|backward) pass of (conv[1-5]|fc[678]) is the first to produce", text), text
    assert f"the last good checkpoint in {run_dir}/checkpoints is intact" in text
    assert "Try a lower --lr" in text
    failed_step = int(re.search(r"at epoch 1, step (\d+)", text).group(1))
    assert failed_step >= 2                  # the first update is finite, the blow-up follows

    arrays, meta, path = ckpt.load_latest(str(run_dir / "checkpoints"), warn=None)
    assert path.endswith("last.npz")
    assert meta["epoch"] == 0 and meta["global_step"] == failed_step - 1
    for name, array in arrays.items():
        if name.startswith(("model/", "optim/")):
            assert np.isfinite(array).all(), name
    assert not (run_dir / "metrics.jsonl").exists()


# ---------------------------------------------------------------------------- API misuse

def fake_device_of(on_gpu):
    """A stand-in for backend.device_of that reports ``on_gpu`` as living on cuda:0."""
    return lambda array: "cuda:0" if array is on_gpu else "cpu"


def test_conv2d_forward_names_the_array_on_another_device(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    monkeypatch.setattr(checks, "device_of", fake_device_of(w))
    with pytest.raises(ValueError, match=r"^w is on cuda:0 but x is on cpu; move them to one device$"):
        F.conv2d_forward(x, w, b, 1, 1)
    monkeypatch.setattr(checks, "device_of", fake_device_of(b))
    with pytest.raises(ValueError, match=r"^b is on cuda:0 but x is on cpu"):
        F.conv2d_forward(x, w, b, 1, 1)
    monkeypatch.setattr(checks, "device_of", fake_device_of(x))
    with pytest.raises(ValueError, match=r"^w is on cpu but x is on cuda:0"):
        F.conv2d_forward(x, w, b, 1, 1)


def test_linear_forward_names_the_array_on_another_device(monkeypatch):
    x = np.ones((2, 5), np.float32)
    w = np.ones((3, 5), np.float32)
    b = np.zeros(3, np.float32)
    monkeypatch.setattr(checks, "device_of", fake_device_of(w))
    with pytest.raises(ValueError, match=r"^w is on cuda:0 but x is on cpu"):
        F.linear_forward(x, w, b)
    monkeypatch.setattr(checks, "device_of", fake_device_of(b))
    with pytest.raises(ValueError, match=r"^b is on cuda:0 but x is on cpu"):
        F.linear_forward(x, w, b)
    monkeypatch.undo()
    y, _ = F.linear_forward(x, w, b)                       # the real check passes
    assert y.shape == (2, 3)


@pytest.fixture(scope="module")
def small_model():
    return AlexNet(10, "small", width=0.125, init="he")


def test_model_forward_refuses_float64_input(small_model):
    x = np.zeros((2, 3, 32, 32), np.float64)
    with pytest.raises(ValueError, match=r"x must have dtype float32 \(the model's\), got float64"):
        small_model.forward(x, train=False)


def test_model_forward_names_the_expected_image_shape(small_model):
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, 32, 32\), got \(2, 3, 28, 28\)"):
        small_model.forward(np.zeros((2, 3, 28, 28), np.float32), train=False)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, 32, 32\), got \(3, 32, 32\)"):
        small_model.forward(np.zeros((3, 32, 32), np.float32), train=False)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, 32, 32\), got \(2, 1, 32, 32\)"):
        small_model.forward(np.zeros((2, 1, 32, 32), np.float32), train=False)


def test_large_finite_gradients_are_not_taken_for_an_overflow():
    # the cheap test (a sum of squares) overflows at 1e20 in float32; the entries are finite
    from minitorch_alexnet.nonfinite import all_finite
    big = np.full(8, 1e20, np.float32)
    assert all_finite([np.ones(3, np.float32), big])
    assert not all_finite([big, np.array([1.0, np.inf], np.float32)])
    assert not all_finite([np.array([np.nan], np.float32)])
    assert all_finite([])
