"""Lesson 10: the paper's SGD (``optim.py``, section 5 of the paper).

    v <- 0.9 v - 0.0005 * lr * w - lr * dL/dw ;   w <- w + v

Checked:
- three steps on a small model match the formula written out by hand, for every weight and
  bias (the paper decays biases too); the third step lowers lr, which changes the new term but
  keeps the velocity already built up (the paper's velocity carries lr; PyTorch's does not);
- ``step`` before ``backward`` raises;
- ``state_dict`` / ``load_state_dict`` round-trip the velocities (named ``velocity/<param>``,
  laid out like the model's ``state_dict``) and lr, so training resumes exactly (given the
  weights and the dropout generator's state as well); a two-column
  model's state loads into a one-column model and back, and the next step agrees;
- bad settings (lr <= 0, momentum outside [0, 1)) and bad optimizer state raise a ValueError.
  A velocity with more rows than the parameter's pieces is refused too.

Run with ``pytest -m train`` (lesson 10, with the trainer and checkpoints).
"""
import re

import numpy as np
import pytest

from minitorch_alexnet import functional as F
from minitorch_alexnet.backend import to_numpy
from minitorch_alexnet.model import AlexNet
from minitorch_alexnet.optim import SGD

pytestmark = pytest.mark.train

TWO = ("cpu:0", "cpu:1")


def tiny(seed=0, devices=None):
    return AlexNet(num_classes=10, preset="small", width=0.125, in_channels=1, input_size=28,
                   dtype=np.float64, seed=seed, devices=devices)


def batch(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 1, 28, 28)), rng.integers(0, 10, size=2)


def compute_gradients(model, seed):
    """Forward and backward on batch ``seed``; returns the gradients (copies)."""
    x, labels = batch(seed)
    _, dlogits = F.softmax_cross_entropy(model.forward(x, train=True), labels)
    model.backward(dlogits)
    return model.grad_dict()


def test_steps_follow_the_paper_formula():
    model = tiny()
    lr, momentum, decay = 0.02, 0.9, 0.0005
    optimizer = SGD(model, lr=lr)
    assert (optimizer.momentum, optimizer.weight_decay) == (momentum, decay)   # the paper's
    w = model.state_dict()
    v = {name: np.zeros_like(t) for name, t in w.items()}
    for step, step_lr in enumerate([lr, lr, lr / 10]):
        optimizer.lr = step_lr
        g = compute_gradients(model, seed=step)
        optimizer.step()
        for name in w:
            v[name] = momentum * v[name] - decay * step_lr * w[name] - step_lr * g[name]
            w[name] = w[name] + v[name]
        got = model.state_dict()
        for name in w:
            np.testing.assert_allclose(got[name], w[name], rtol=1e-12, atol=1e-15,
                                       err_msg=f"step {step + 1}: {name}")
            np.testing.assert_allclose(to_numpy(optimizer.velocity[(name, 0)]), v[name],
                                       rtol=1e-12, atol=1e-17, err_msg=f"step {step + 1}: {name}")
    # The biases moved too: weight decay and gradient apply to them as well.
    assert not np.all(model.state_dict()["conv2.bias"] == 1.0)


def test_step_updates_in_place():
    model = tiny()
    live = model.params["conv1.weight"][0]
    before = live.copy()
    compute_gradients(model, seed=0)
    SGD(model).step()
    assert model.params["conv1.weight"][0] is live
    assert not np.array_equal(live, before)


def test_step_before_backward_raises():
    with pytest.raises(RuntimeError, match="backward"):
        SGD(tiny()).step()


def test_state_dict_before_any_step_is_zero():
    model = tiny()
    state = SGD(model, lr=0.03).state_dict()
    assert set(state) == {f"velocity/{name}" for name in model.state_dict()} | {"lr"}
    assert float(state["lr"]) == 0.03
    for name, tensor in model.state_dict().items():
        assert state[f"velocity/{name}"].shape == tensor.shape
        assert not np.any(state[f"velocity/{name}"])


def train(model, optimizer, seeds):
    for seed in seeds:
        compute_gradients(model, seed)
        optimizer.step()


def test_state_dict_round_trip_resumes_exactly():
    model = tiny()
    optimizer = SGD(model, lr=0.02)
    train(model, optimizer, seeds=[0, 1])
    saved_weights, saved_state = model.state_dict(), optimizer.state_dict()
    saved_dropout = model.dropout_rng.bit_generator.state      # the next masks, too
    # Carry on from the original ...
    train(model, optimizer, seeds=[2])
    # ... and from a fresh model and optimizer restored from the saved state.
    resumed = tiny(seed=9)
    resumed.load_state_dict(saved_weights)
    resumed.dropout_rng.bit_generator.state = saved_dropout
    resumed_optimizer = SGD(resumed, lr=0.5)
    resumed_optimizer.load_state_dict(saved_state)
    assert resumed_optimizer.lr == 0.02
    for name in saved_weights:
        np.testing.assert_array_equal(to_numpy(resumed_optimizer.velocity[(name, 0)]),
                                      saved_state[f"velocity/{name}"], err_msg=name)
    train(resumed, resumed_optimizer, seeds=[2])
    for name, tensor in model.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], tensor, err_msg=name)


def test_velocities_move_between_two_columns_and_one():
    two = tiny(devices=TWO)
    two_optimizer = SGD(two, lr=0.02)
    train(two, two_optimizer, seeds=[0, 1])
    state = two_optimizer.state_dict()
    for name, tensor in two.state_dict().items():
        pieces = [to_numpy(two_optimizer.velocity[key]) for key in sorted(two_optimizer.velocity)
                  if key[0] == name]
        assert len(pieces) == (1 if name.startswith("fc8") else 2), name
        np.testing.assert_array_equal(state[f"velocity/{name}"], np.concatenate(pieces), err_msg=name)
        assert state[f"velocity/{name}"].shape == tensor.shape

    # Two columns -> one column.
    one = tiny(seed=5)
    one.load_state_dict(two.state_dict())
    one_optimizer = SGD(one, lr=0.1)
    one_optimizer.load_state_dict(state)
    assert one_optimizer.lr == 0.02
    assert set(one_optimizer.velocity) == {(name, 0) for name in one.state_dict()}
    for name in one.state_dict():
        np.testing.assert_array_equal(to_numpy(one_optimizer.velocity[(name, 0)]),
                                      state[f"velocity/{name}"], err_msg=name)

    # One column -> two columns: each column gets its own rows.
    back = tiny(seed=6, devices=TWO)
    back.load_state_dict(one.state_dict())
    back_optimizer = SGD(back)
    back_optimizer.load_state_dict(one_optimizer.state_dict())
    for (name, column), velocity in back_optimizer.velocity.items():
        full = state[f"velocity/{name}"]
        rows = velocity.shape[0]
        np.testing.assert_array_equal(to_numpy(velocity), full[column * rows:(column + 1) * rows],
                                      err_msg=f"{name} column {column}")

    # The next step agrees on all three (with the same dropout masks).
    for model in (one, back):
        model.dropout_rng.bit_generator.state = two.dropout_rng.bit_generator.state
    for model, optimizer in [(two, two_optimizer), (one, one_optimizer), (back, back_optimizer)]:
        train(model, optimizer, seeds=[2])
    reference = one.state_dict()
    for model in (two, back):
        for name, tensor in model.state_dict().items():
            error = np.max(np.abs(tensor - reference[name])) / np.max(np.abs(reference[name]))
            assert error <= 1e-10, name


@pytest.mark.parametrize("lr", [0.0, -0.01])
def test_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="lr"):
        SGD(tiny(), lr=lr)


@pytest.mark.parametrize("momentum", [1.0, -0.1])
def test_bad_momentum(momentum):
    with pytest.raises(ValueError, match="momentum"):
        SGD(tiny(), momentum=momentum)


def test_load_state_dict_rejects_bad_state():
    model = tiny()
    optimizer = SGD(model)
    state = optimizer.state_dict()
    missing = dict(state)
    del missing["velocity/fc7.weight"]
    with pytest.raises(ValueError, match=re.escape("velocity/fc7.weight")):
        optimizer.load_state_dict(missing)
    wrong = dict(state)
    wrong["velocity/conv2.weight"] = np.zeros((3,) + state["velocity/conv2.weight"].shape[1:])
    with pytest.raises(ValueError, match=re.escape("velocity/conv2.weight")):
        optimizer.load_state_dict(wrong)


def test_load_state_dict_rejects_too_many_rows():
    optimizer = SGD(tiny())
    state = optimizer.state_dict()
    velocity = state["velocity/conv2.weight"]
    state["velocity/conv2.weight"] = np.concatenate([velocity, velocity])
    with pytest.raises(ValueError, match=re.escape("velocity/conv2.weight")):
        optimizer.load_state_dict(state)


def test_update_in_blocks_equals_the_whole_array_update_bit_for_bit():
    # The CPU updates blocks of entries on a thread pool; every entry must see the same
    # operations as in the plain whole-array formula (float32, where rounding would show).
    from blocks import one_item_per_block
    model = AlexNet(num_classes=10, preset="small", width=0.125, in_channels=1, input_size=28,
                    dtype=np.float32, seed=3)
    rng = np.random.default_rng(0)
    pieces = [(param, rng.standard_normal(param.shape).astype(np.float32))
              for _, _, param, _ in model.parameters()]
    plain, blocked = SGD(model, lr=0.03), SGD(model, lr=0.03)
    for param, grad in pieces:
        start = param.copy()
        velocity = rng.standard_normal(param.shape).astype(np.float32)
        expected_w, expected_v = param.copy(), velocity.copy()
        plain._update(expected_w, grad, expected_v)
        with one_item_per_block(64):                   # 64 entries a block: many blocks
            blocked._update_in_blocks(param, grad, velocity)
        assert not np.array_equal(param, start)
        np.testing.assert_array_equal(param, expected_w)
        np.testing.assert_array_equal(velocity, expected_v)
