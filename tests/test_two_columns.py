"""Lesson 9: the two columns (``model.py`` and ``columns.py``, ``devices=(d0, d1)``).

The paper trained AlexNet on two GPUs, each holding half of every layer's kernels; the columns
exchange activations only into conv3, fc6, fc7 and fc8. On one device the same network is a
grouped convolution (groups=2) in conv2, conv4 and conv5. The two are the SAME function, so with
the same weights they must give the same numbers.

Checked, with the weights of one seed:
- the two-column model on ("cpu:0", "cpu:1") and the one-device model give the same logits,
  loss, every parameter gradient (``grad_dict``) and d(input): relative error (largest
  difference over largest entry) at most 1e-10 in float64 and 1e-5 in float32, with dropout on
  (the masks must agree: both draw column 0's units first) and off, for the small preset at
  32x32x3 and 28x28x1 and for a narrow paper network at 227x227x3;
- several SGD steps on both keep them equal; the optimizer sees two pieces (one per column) of
  every split layer and one of fc8, and keeps one velocity per piece;
- activations cross between the columns only into conv3, fc6, fc7 and fc8 (``gather_on`` is
  called once per column for conv3, fc6 and fc7 and once for fc8, and never on one device);
- on a GPU (``pytest -m gpu``, skipped without CUDA): two columns on ("cuda:0", "cuda:0")
  against one-device "cuda:0" and against the CPU.

Run with ``pytest -m model``.
"""
import numpy as np
import pytest

import minitorch_alexnet.columns as columns_module
from minitorch_alexnet import functional as F
from minitorch_alexnet.backend import cuda_available, to_device, to_numpy
from minitorch_alexnet.model import AlexNet
from minitorch_alexnet.optim import SGD

pytestmark = pytest.mark.model

TWO = ("cpu:0", "cpu:1")
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}

# name -> AlexNet keyword arguments. Width 0.25 keeps every ingredient of the small preset
# (8 maps per column in conv1, so LRN's 5-channel window meets the column boundary) at a
# fraction of the cost; the narrow paper network keeps the 11x11 stride-4 conv1 at 227x227.
CONFIGS = {
    "small-32x32x3": dict(num_classes=10, preset="small", width=0.25),
    "small-28x28x1": dict(num_classes=10, preset="small", width=0.25, in_channels=1, input_size=28),
    "paper-width-1/16": dict(num_classes=20, preset="paper", width=0.0625),
}


def relative_error(a, b):
    """Largest difference over the largest entry of the reference b."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def make_batch(model, batch, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch, model.in_channels, model.input_size, model.input_size)
    x = rng.standard_normal(shape).astype(model.dtype)
    labels = rng.integers(0, model.num_classes, size=batch)
    return x, labels


def forward_backward(model, x, labels, train):
    """Everything a training step computes: logits, loss, gradients and d(input), as NumPy."""
    logits = model.forward(x, train=train)
    loss, dlogits = F.softmax_cross_entropy(logits, to_device(labels, model.devices[0]))
    dx = model.backward(dlogits)
    return dict(logits=to_numpy(logits), loss=float(loss), dx=to_numpy(dx), grads=model.grad_dict())


def assert_same_results(got, want, tolerance):
    errors = {"logits": relative_error(got["logits"], want["logits"]),
              "loss": relative_error(got["loss"], want["loss"]),
              "dx": relative_error(got["dx"], want["dx"])}
    assert set(got["grads"]) == set(want["grads"])
    for name, grad in want["grads"].items():
        assert got["grads"][name].shape == grad.shape, name
        errors[name] = relative_error(got["grads"][name], grad)
    bad = {name: error for name, error in errors.items() if not error <= tolerance}
    assert not bad, f"relative errors above {tolerance:g}: {bad}"


def pair(config, dtype, seed=3, devices=TWO, reference_devices=None):
    """A one-device model and a two-column model with the same weights (the same seed)."""
    kwargs = dict(CONFIGS[config], dtype=dtype, seed=seed)
    return AlexNet(devices=reference_devices, **kwargs), AlexNet(devices=devices, **kwargs)


CASES = [
    ("small-32x32x3", np.float64, True), ("small-32x32x3", np.float64, False),
    ("small-32x32x3", np.float32, True), ("small-32x32x3", np.float32, False),
    ("small-28x28x1", np.float64, True), ("small-28x28x1", np.float64, False),
    ("small-28x28x1", np.float32, True),
    ("paper-width-1/16", np.float64, True),
]


@pytest.mark.parametrize("config,dtype,train", CASES,
                         ids=[f"{c}-{np.dtype(d).name}-{'train' if t else 'eval'}" for c, d, t in CASES])
def test_two_columns_equal_one_device(config, dtype, train):
    one, two = pair(config, dtype)
    for key, value in one.state_dict().items():          # the same weights to start with
        np.testing.assert_array_equal(two.state_dict()[key], value, err_msg=key)
    x, labels = make_batch(one, batch=2 if config.startswith("paper") else 3)
    want = forward_backward(one, x, labels, train)
    got = forward_backward(two, x, labels, train)
    assert_same_results(got, want, TOLERANCE[dtype])


def test_dropout_masks_agree_and_differ_between_calls():
    """The masks agree between one device and two, and the next call draws new ones."""
    one, two = pair("small-28x28x1", np.float64)
    x, _ = make_batch(one, batch=2)
    first_one, first_two = one.forward(x, train=True), two.forward(x, train=True)
    second_one, second_two = one.forward(x, train=True), two.forward(x, train=True)
    assert relative_error(first_two, first_one) <= 1e-10
    assert relative_error(second_two, second_one) <= 1e-10
    assert relative_error(second_one, first_one) > 1e-6     # dropout is really on


def test_keyed_dropout_masks_agree_between_devices_and_batch_splits():
    """With dropout keys an image's masks depend on its key alone: two columns equal one
    device, and a batch cut in two pieces equals the whole (what data-parallel ranks do)."""
    one, two = pair("small-32x32x3", np.float64)
    x, _ = make_batch(one, batch=4)
    keys = np.array([7, 3, 1000, 42])
    whole = to_numpy(one.forward(x, train=True, dropout_keys=keys))
    assert relative_error(to_numpy(two.forward(x, train=True, dropout_keys=keys)), whole) <= 1e-12
    pieces = [to_numpy(one.forward(x[a:b], train=True, dropout_keys=keys[a:b])) for a, b in ((0, 1), (1, 4))]
    assert relative_error(np.concatenate(pieces), whole) <= 1e-12
    other = to_numpy(one.forward(x, train=True, dropout_keys=keys + 1))
    assert relative_error(other, whole) > 1e-6           # another key, another mask
    again = to_numpy(one.forward(x, train=True, dropout_keys=keys))
    np.testing.assert_array_equal(again, whole)           # the same key, the same mask


def test_parameters_come_in_column_pieces():
    one, two = pair("small-28x28x1", np.float64)
    pieces = {}
    for name, column, param, grad in two.parameters():
        pieces.setdefault(name, []).append((column, param.shape))
        assert grad is None                                   # no backward yet
    full = two.state_dict()
    for name, tensor in full.items():
        shape, columns = tensor.shape, pieces[name]
        if name.startswith("fc8"):
            assert columns == [(0, shape)], name               # fc8 is whole, on the first device
        else:
            assert [c for c, _ in columns] == [0, 1], name
            half = (shape[0] // 2,) + shape[1:]
            assert [s for _, s in columns] == [half, half], name
    assert sum(1 for _ in one.parameters()) == len(full)        # one device: one piece each
    assert two.num_parameters() == one.num_parameters()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_sgd_steps_stay_equal(dtype):
    one, two = pair("small-28x28x1", dtype)
    opt_one, opt_two = SGD(one, lr=0.05), SGD(two, lr=0.05)
    rng = np.random.default_rng(1)
    for step in range(3):
        x, labels = make_batch(one, batch=3, seed=int(rng.integers(1 << 30)))
        want = forward_backward(one, x, labels, train=True)
        got = forward_backward(two, x, labels, train=True)
        assert_same_results(got, want, TOLERANCE[dtype] * 10)
        opt_one.step()
        opt_two.step()
    # Velocities: one per piece, keyed (name, column); column 1 exists for every split layer.
    names = list(one.state_dict())
    assert set(opt_one.velocity) == {(name, 0) for name in names}
    assert set(opt_two.velocity) == ({(name, 0) for name in names}
                                     | {(name, 1) for name in names if not name.startswith("fc8")})
    tolerance = TOLERANCE[dtype] * 10
    mine, theirs = two.state_dict(), one.state_dict()
    for name in names:
        assert relative_error(mine[name], theirs[name]) <= tolerance, name
        velocity = np.concatenate([to_numpy(opt_two.velocity[key]) for key in sorted(opt_two.velocity)
                                   if key[0] == name])
        assert relative_error(velocity, to_numpy(opt_one.velocity[(name, 0)])) <= tolerance, name
    start = AlexNet(**CONFIGS["small-28x28x1"], dtype=dtype, seed=3).state_dict()
    assert all(not np.array_equal(mine[name], start[name]) for name in names)   # they moved


def test_columns_exchange_only_into_conv3_fc6_fc7_fc8(monkeypatch):
    """Record which layer asks for the other column's activations: ``inputs`` notes the layer
    being fed, ``gather_on`` each device that receives both columns' outputs for it."""
    calls, feeding = [], []
    original_inputs, original_gather = columns_module.ColumnExchange.inputs, columns_module.gather_on

    def noting_inputs(exchange, layer, outputs, image):
        feeding[:] = [layer.name]
        return original_inputs(exchange, layer, outputs, image)

    def recording_gather_on(device, parts, axis=1):
        calls.append((feeding[0], device))
        return original_gather(device, parts, axis)

    monkeypatch.setattr(columns_module.ColumnExchange, "inputs", noting_inputs)
    monkeypatch.setattr(columns_module, "gather_on", recording_gather_on)
    one, two = pair("small-28x28x1", np.float64)
    x, labels = make_batch(one, batch=2)
    forward_backward(two, x, labels, train=True)
    assert sorted(calls) == sorted([("conv3", "cpu:0"), ("conv3", "cpu:1"),
                                    ("fc6", "cpu:0"), ("fc6", "cpu:1"),
                                    ("fc7", "cpu:0"), ("fc7", "cpu:1"),
                                    ("fc8", "cpu:0")])
    assert {layer for layer, _ in calls} == {"conv3", "fc6", "fc7", "fc8"}
    calls.clear()
    forward_backward(one, x, labels, train=True)
    assert calls == []                         # one device: no exchange at all


def test_two_columns_reject_three_devices():
    with pytest.raises(ValueError, match="one device or two"):
        AlexNet(10, "small", devices=("cpu:0", "cpu:1", "cpu:2"))


@pytest.mark.gpu
@pytest.mark.skipif("not cuda_available()", reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_two_columns_on_gpu(dtype, train):
    import cupy

    kwargs = dict(CONFIGS["small-32x32x3"], dtype=dtype, seed=3)
    cpu = AlexNet(**kwargs)
    gpu = AlexNet(devices="cuda:0", **kwargs)
    gpu_two = AlexNet(devices=("cuda:0", "cuda:0"), **kwargs)
    x, labels = make_batch(cpu, batch=3)
    want = forward_backward(cpu, x, labels, train)
    one_gpu = forward_backward(gpu, cupy.asarray(x), labels, train)
    two_gpu = forward_backward(gpu_two, cupy.asarray(x), labels, train)
    assert_same_results(two_gpu, one_gpu, TOLERANCE[dtype])
    # Against the CPU the kernels sum in another order: allow ten times more.
    assert_same_results(one_gpu, want, TOLERANCE[dtype] * 10)
    assert_same_results(two_gpu, want, TOLERANCE[dtype] * 10)
