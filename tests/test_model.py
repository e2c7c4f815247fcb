"""Lesson 9: the AlexNet model (``model.py``) on one device.

Checked:
- output shapes: the paper network maps a 227x227x3 image to 1000 logits (one forward pass of
  the full network, ~0.3 s); the small preset takes 32x32x3 and 28x28x1 images; ``width``
  scales every layer's maps and units (always an even number, so the columns split it);
- initialisation (section 5): every weight of the paper network has mean ~0 and standard
  deviation 0.01 (within 3%; with 35,000 to 38 million entries per tensor the sampling error
  is under 0.4%); biases are exactly 1 in conv2, conv4, conv5, fc6 and fc7 and 0 elsewhere;
  the same seed gives the same weights, another seed other weights;
- parameter count: 60,965,224 for the paper network with 1000 classes, and 62,378,344 if
  conv2, conv4 and conv5 saw both columns (their weights' in-channels doubled);
- ``state_dict``: PyTorch's names and layouts (conv1.weight (96, 3, 11, 11), conv2.weight
  (256, 48, 5, 5): a column's filter sees its own 48 maps, fc6.weight (4096, 9216)); it holds
  copies; one column -> two columns -> one column gives identical tensors and logits;
  ``load_state_dict`` rejects a missing, an extra and a wrongly shaped tensor with a ValueError
  naming it, and leaves the model unchanged;
- the whole model's backward pass against centred differences of the loss (float64, dropout
  on with a fixed mask, every parameter and the input);
- bad input: a wrong shape or dtype names what ``forward`` expects; an unknown preset, an
  input too small for the layers, ``backward`` before ``forward``.

Run with ``pytest -m model``.
"""
import re

import numpy as np
import pytest

from minitorch_alexnet import functional as F
from minitorch_alexnet.gradcheck import check_gradients
from minitorch_alexnet.model import AlexNet

pytestmark = pytest.mark.model

NAMES = [f"{layer}.{kind}" for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
         for kind in ("weight", "bias")]

# The paper's table (section 3.5) in PyTorch's layouts: (out, in per group, kh, kw) and (out, in).
PAPER_SHAPES = {
    "conv1.weight": (96, 3, 11, 11), "conv1.bias": (96,),
    "conv2.weight": (256, 48, 5, 5), "conv2.bias": (256,),      # 48 = one column's 96 / 2
    "conv3.weight": (384, 256, 3, 3), "conv3.bias": (384,),     # sees both columns
    "conv4.weight": (384, 192, 3, 3), "conv4.bias": (384,),
    "conv5.weight": (256, 192, 3, 3), "conv5.bias": (256,),
    "fc6.weight": (4096, 9216), "fc6.bias": (4096,),            # 9216 = 256 x 6 x 6
    "fc7.weight": (4096, 4096), "fc7.bias": (4096,),
    "fc8.weight": (1000, 4096), "fc8.bias": (1000,),
}
BIAS_ONE = {"conv2", "conv4", "conv5", "fc6", "fc7"}


@pytest.fixture(scope="module")
def paper():
    """The full paper network (61 million parameters); built once, ~3 s."""
    return AlexNet()


@pytest.fixture(scope="module")
def paper_state(paper):
    return paper.state_dict()


def small(dtype=np.float64, **kwargs):
    options = dict(num_classes=10, preset="small", width=0.25, dtype=dtype)
    options.update(kwargs)
    return AlexNet(**options)


def images(model, batch, seed=0):
    shape = (batch, model.in_channels, model.input_size, model.input_size)
    return np.random.default_rng(seed).standard_normal(shape).astype(model.dtype)


# ---- shapes ----------------------------------------------------------------------------------
def test_paper_output_shape(paper):
    assert (paper.in_channels, paper.input_size) == (3, 227)
    assert paper.feature_shape == (256, 6, 6)
    logits = paper.forward(images(paper, 1), train=False)
    assert logits.shape == (1, 1000)
    assert logits.dtype == np.float32
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("channels,size,features", [(3, 32, (128, 3, 3)), (1, 28, (128, 2, 2))])
def test_small_preset_shapes(channels, size, features):
    model = AlexNet(num_classes=10, preset="small", in_channels=channels, input_size=size)
    assert model.feature_shape == features                       # what fc6 reads
    assert model.state_dict()["fc6.weight"].shape == (512, int(np.prod(features)))
    assert model.state_dict()["conv1.weight"].shape == (64, channels, 5, 5)
    logits = model.forward(images(model, 2), train=True)
    assert logits.shape == (2, 10)
    assert np.all(np.isfinite(logits))


def test_small_preset_defaults_to_32x32x3():
    model = AlexNet(num_classes=10, preset="small")
    assert (model.in_channels, model.input_size) == (3, 32)


@pytest.mark.parametrize("preset,width,conv1,conv2,fc6", [
    ("small", 0.5, 32, 64, 256),
    ("small", 0.25, 16, 32, 128),
    ("small", 0.01, 2, 2, 6),           # never fewer than one map per column
    ("paper", 0.0625, 6, 16, 256),
])
def test_width_scales_maps_and_units(preset, width, conv1, conv2, fc6):
    model = AlexNet(num_classes=7, preset=preset, width=width, dtype=np.float64)
    state = model.state_dict()
    assert state["conv1.weight"].shape[0] == conv1
    assert state["conv2.weight"].shape[:2] == (conv2, conv1 // 2)   # grouped: half the maps
    assert state["fc6.weight"].shape[0] == fc6
    assert state["fc8.weight"].shape == (7, fc6)
    for name, tensor in state.items():
        if not name.startswith("fc8"):
            assert tensor.shape[0] % 2 == 0, name                   # splits into two columns
    assert model.forward(images(model, 1), train=False).shape == (1, 7)


# ---- initialisation ------------------------------------------------------------------------------
def test_paper_initialisation_statistics(paper_state):
    for name, tensor in paper_state.items():
        layer = name.split(".")[0]
        if name.endswith("bias"):
            expected = 1.0 if layer in BIAS_ONE else 0.0
            assert np.all(tensor == expected), f"{name} should be all {expected}"
        else:
            mean, std = tensor.mean(dtype=np.float64), tensor.std(dtype=np.float64)
            assert abs(mean) < 5 * 0.01 / np.sqrt(tensor.size), f"{name} mean {mean:.2e}"
            assert std == pytest.approx(0.01, rel=0.03), f"{name} std {std:.5f}"


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = small(seed=5), small(seed=5), small(seed=6)
    for name in NAMES:
        np.testing.assert_array_equal(a.state_dict()[name], b.state_dict()[name], err_msg=name)
        if name.endswith("weight"):
            assert not np.array_equal(a.state_dict()[name], c.state_dict()[name]), name


def test_dtype_is_kept():
    model = small(np.float32)
    assert all(t.dtype == np.float32 for t in model.state_dict().values())
    assert model.forward(images(model, 1), train=True).dtype == np.float32


# ---- parameter count -----------------------------------------------------------------------------
def test_paper_parameter_count(paper, paper_state):
    assert paper.num_parameters() == 60_965_224
    assert sum(t.size for t in paper_state.values()) == 60_965_224
    # Ungrouped: conv2, conv4 and conv5 would see both columns' maps, twice the in-channels.
    ungrouped = 0
    for name, tensor in paper_state.items():
        shape = list(tensor.shape)
        if name in ("conv2.weight", "conv4.weight", "conv5.weight"):
            shape[1] *= 2
        ungrouped += int(np.prod(shape))
    assert ungrouped == 62_378_344


# ---- state_dict ---------------------------------------------------------------------------------
def test_state_dict_names_and_pytorch_layouts(paper_state):
    assert list(paper_state) == NAMES
    assert {name: t.shape for name, t in paper_state.items()} == PAPER_SHAPES
    assert all(isinstance(t, np.ndarray) and t.dtype == np.float32 for t in paper_state.values())


def test_state_dict_holds_copies():
    model = small()
    state = model.state_dict()
    state["conv1.weight"][...] = 123.0
    assert not np.any(model.state_dict()["conv1.weight"] == 123.0)


def test_round_trip_one_column_two_columns_one_column():
    one = small(seed=0)
    two = small(seed=1, devices=("cpu:0", "cpu:1"))
    again = small(seed=2)
    two.load_state_dict(one.state_dict())
    again.load_state_dict(two.state_dict())
    for name, tensor in one.state_dict().items():
        np.testing.assert_array_equal(two.state_dict()[name], tensor, err_msg=name)
        np.testing.assert_array_equal(again.state_dict()[name], tensor, err_msg=name)
    x = images(one, 2)
    logits = one.forward(x, train=False)
    np.testing.assert_array_equal(again.forward(x, train=False), logits)
    np.testing.assert_allclose(two.forward(x, train=False), logits, rtol=1e-12, atol=1e-14)


def test_load_state_dict_accepts_other_dtypes():
    source, target = small(np.float32, seed=0), small(np.float64, seed=1)
    target.load_state_dict(source.state_dict())
    for name, tensor in source.state_dict().items():
        assert target.state_dict()[name].dtype == np.float64
        np.testing.assert_array_equal(target.state_dict()[name], tensor.astype(np.float64))


@pytest.mark.parametrize("problem", ["missing", "extra", "shape"])
def test_load_state_dict_rejects_bad_tensors(problem):
    model = small(seed=0)
    before = model.state_dict()
    state = small(seed=1).state_dict()
    if problem == "missing":
        del state["fc7.bias"]
        name = "fc7.bias"
    elif problem == "extra":
        state["fc9.weight"] = np.zeros((10, 10))
        name = "fc9.weight"
    else:
        weight = state["conv2.weight"]
        state["conv2.weight"] = np.zeros((weight.shape[0], 2 * weight.shape[1]) + weight.shape[2:])
        name = "conv2.weight"
    with pytest.raises(ValueError, match=re.escape(name)):
        model.load_state_dict(state)
    for key, tensor in before.items():                 # nothing was loaded
        np.testing.assert_array_equal(model.state_dict()[key], tensor, err_msg=key)


# ---- whole-model gradient check -------------------------------------------------------------------
def scaled_weights(model, rng):
    """He-scaled weights (std sqrt(2 / fan-in)) and random biases N(0, 0.1^2).

    With the paper's std of 0.01 every layer shrinks the signal ~10x: conv1's gradients come out
    ~1e-8, below the round-off of centred differences of a loss of ~2.3 (~1e-16 / 1e-5), so the
    check could not see a wrong gradient there. A backward pass is right or wrong whatever the
    weights are, so the check uses weights that keep every layer's gradients O(1e-3..1).
    Random biases put the ReLU kinks at random places instead of at exactly 0 or 1."""
    state = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("weight"):
            state[name] = rng.standard_normal(tensor.shape) * np.sqrt(2.0 / np.prod(tensor.shape[1:]))
        else:
            state[name] = rng.standard_normal(tensor.shape) * 0.1
    model.load_state_dict(state)


def test_whole_model_gradient_check():
    """Every parameter and the input, float64, dropout ON with one fixed mask.

    A random float64 input makes max-pool ties and ReLU inputs within eps of 0 unlikely; a step
    across a kink would show as an error of ~1e-2. eps = 1e-5 (not gradcheck's default 1e-6):
    the truncation error ~eps^2 is still negligible and round-off is 10x smaller. Over seeds
    0-11 the largest error was 7e-8; at eps = 1e-6 it was 1.2e-6 (round-off), and with the
    paper's std-0.01 weights up to 1 (see ``scaled_weights``)."""
    channels, size, seed = 1, 28, 0
    rng = np.random.default_rng(seed)
    model = small(np.float64, seed=seed, width=0.125, in_channels=channels, input_size=size)
    scaled_weights(model, rng)
    x = rng.standard_normal((2, channels, size, size))
    labels = rng.integers(0, 10, size=2)
    dropout_state = model.dropout_rng.bit_generator.state

    def loss():
        model.dropout_rng.bit_generator.state = dropout_state       # the same mask every time
        return float(F.softmax_cross_entropy(model.forward(x, train=True), labels)[0])

    model.dropout_rng.bit_generator.state = dropout_state
    _, dlogits = F.softmax_cross_entropy(model.forward(x, train=True), labels)
    dx = model.backward(dlogits)
    analytic = dict(model.grad_dict(), x=dx)
    inputs = {name: parts[0] for name, parts in model.params.items()}   # the live arrays
    inputs["x"] = x
    assert set(inputs) == set(NAMES) | {"x"}
    # Tensors of up to 16 entries element by element (fc8.bias, conv1.bias), the rest along
    # three random directions each.
    results = check_gradients(loss, inputs, analytic, eps=1e-5, max_elements=16,
                              rng=np.random.default_rng(seed))
    errors = {name: error for name, (error, _) in results.items()}
    assert set(errors) == set(inputs)
    assert max(errors.values()) < 1e-6, errors
    # The mask really was on: another draw changes the logits.
    assert not np.allclose(model.forward(x, train=True), model.forward(x, train=True))


# ---- bad input -------------------------------------------------------------------------------------
def test_forward_rejects_wrong_shape():
    model = small(in_channels=1, input_size=28)
    with pytest.raises(ValueError, match=re.escape("(N, 1, 28, 28)")):
        model.forward(np.zeros((2, 3, 28, 28)))
    with pytest.raises(ValueError, match=re.escape("(N, 1, 28, 28)")):
        model.forward(np.zeros((2, 1, 32, 32)))
    with pytest.raises(ValueError, match=re.escape("(N, 1, 28, 28)")):
        model.forward(np.zeros((1, 28, 28)))


def test_forward_rejects_wrong_dtype():
    model = small(np.float64)
    with pytest.raises(ValueError, match="float64"):
        model.forward(np.zeros((1, 3, 32, 32), dtype=np.float32))


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset"):
        AlexNet(preset="vgg")


def test_input_too_small_for_the_layers():
    # small: 8 -> conv1 8 -> pool 3 -> conv2 3 -> pool 1 -> conv3..5 1: conv5's 3x3 pool fits no window
    with pytest.raises(ValueError, match=r"a 8x8 input is too small for these layers: conv5's pool "
                                         r"gets 1x1 maps \(window 3 does not fit"):
        AlexNet(num_classes=10, preset="small", input_size=8)
    # paper: 28 -> conv1 (11x11, stride 4) 5 -> pool 2 -> conv2 2: conv2's pool fits no window
    with pytest.raises(ValueError, match=r"a 28x28 input is too small for these layers: conv2's pool "
                                         r"gets 2x2 maps"):
        AlexNet(num_classes=10, preset="paper", input_size=28)


def test_backward_before_forward():
    model = small()
    with pytest.raises(RuntimeError, match="forward"):
        model.backward(np.zeros((1, 10)))
    with pytest.raises(RuntimeError, match="backward"):
        model.grad_dict()


@pytest.mark.parametrize("devices", [None, ("cpu:0", "cpu:1")], ids=["one column", "two columns"])
def test_backward_without_input_gradient(devices):
    # input_grad=False (what training uses) returns None and fills the same gradients
    model = small(np.float64, seed=1, devices=devices)
    x = images(model, 2)
    labels = np.array([3, 7])
    _, dlogits = F.softmax_cross_entropy(model.forward(x, train=False), labels)
    dx = model.backward(dlogits)
    full = model.grad_dict()
    assert dx.shape == x.shape
    assert model.backward(dlogits, input_grad=False) is None
    without = model.grad_dict()
    assert set(without) == set(full)
    for name in full:
        np.testing.assert_array_equal(without[name], full[name], err_msg=name)
