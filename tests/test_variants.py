"""The networks the paper compares AlexNet with (``architecture.Variant``): each one's forward
pass against a naive walk through the paper's description written here from the reference
loops, its gradients against centred differences (float64), its shapes, and its flags
through training, checkpoint and reloading."""
import os

import numpy as np
import pytest

import helpers_train as h
import reference as ref
from minitorch_alexnet import functional as F
from minitorch_alexnet.architecture import PRESETS, Variant, layer_plan, small_layers
from minitorch_alexnet.gradcheck import check_gradients
from minitorch_alexnet.model import AlexNet
from minitorch_alexnet.run_state import load_model, load_run_state
from minitorch_alexnet.train import main as train_main

pytestmark = pytest.mark.model

VARIANTS = {
    "alexnet": Variant(),
    "tanh": Variant(activation="tanh"),
    "no-lrn": Variant(lrn=False),
    "2/2-pool": Variant(pool="2/2"),
    "no-dropout": Variant(dropout=False),
    "one-column": Variant(columns=1),
}
SIDE = 15   # odd at every pool (15 -> 7 -> 3 -> 1), so 3/2 and 2/2 give the same shapes


def tiny(variant, seed=0, devices=None):
    return AlexNet(10, "small", seed=seed, width=0.125, in_channels=1, input_size=SIDE,
                   dtype=np.float64, init="he", variant=variant, devices=devices)


def naive_forward(state, x, variant):
    """The small network as the paper describes it, one reference loop per operation, no
    dropout (evaluation). Grouping, LRN columns and pooling are decided here from the words
    of ``Variant``'s docstring, not from the model's plan."""
    two = variant.columns == 2
    act = ref.tanh if variant.activation == "tanh" else ref.relu
    size, stride = (3, 2) if variant.pool == "3/2" else (2, 2)
    h = x
    for n, pad in zip(range(1, 6), (2, 2, 1, 1, 1)):
        own_column = n in (2, 4, 5)
        h = ref.conv2d(h, state[f"conv{n}.weight"], state[f"conv{n}.bias"], 1, pad,
                       groups=2 if own_column and two else 1)
        h = act(h)
        if n in (1, 2) and variant.lrn:      # within each column's maps
            halves = np.split(h, 2 if two else 1, axis=1)
            h = np.concatenate([ref.lrn(part) for part in halves], axis=1)
        if n in (1, 2, 5):
            h = ref.max_pool2d(h, size, stride)
    h = h.reshape(len(h), -1)
    for n in (6, 7):
        h = act(ref.linear(h, state[f"fc{n}.weight"], state[f"fc{n}.bias"]))
    return ref.linear(h, state["fc8.weight"], state["fc8.bias"])


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_equals_the_naive_walk(name):
    variant = VARIANTS[name]
    model = tiny(variant)
    x = np.random.default_rng(1).standard_normal((2, 1, SIDE, SIDE))
    expected = naive_forward(model.state_dict(), x, variant)
    np.testing.assert_allclose(model.forward(x, train=False), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", VARIANTS)
def test_whole_variant_gradient_check(name):
    """Every parameter and the input, float64, against centred differences; dropout on with
    one fixed set of keyed masks (the trainer's way)."""
    rng = np.random.default_rng(2)
    model = tiny(VARIANTS[name], seed=2)
    x = rng.standard_normal((2, 1, SIDE, SIDE))
    labels, keys = np.array([3, 7]), np.array([5, 9])
    loss = lambda: float(F.softmax_cross_entropy(model.forward(x, dropout_keys=keys), labels)[0])
    _, dlogits = F.softmax_cross_entropy(model.forward(x, dropout_keys=keys), labels)
    dx = model.backward(dlogits)
    analytic = dict(model.grad_dict(), x=dx)
    inputs = dict({name: parts[0] for name, parts in model.params.items()}, x=x)
    results = check_gradients(loss, inputs, analytic, eps=1e-5, max_elements=16,
                              rng=np.random.default_rng(0))
    assert max(error for error, _ in results.values()) < 1e-6, results


def test_each_variant_changes_only_its_own_operations():
    base = layer_plan(small_layers(10), 1, 3, 31)
    kinds = lambda plan: [step.kind for step in plan]
    assert kinds(layer_plan(Variant(activation="tanh").apply(small_layers(10)), 1, 3, 31)) == \
        [k.replace("relu", "tanh") for k in kinds(base)]
    assert "lrn" not in kinds(layer_plan(Variant(lrn=False).apply(small_layers(10)), 1, 3, 31))
    assert "dropout" not in kinds(layer_plan(Variant(dropout=False).apply(small_layers(10)), 1, 3, 31))
    # 2/2 pooling on sides 31 -> 15 -> 7 -> 3 gives 3/2's shapes everywhere
    two_by_two = layer_plan(Variant(pool="2/2").apply(small_layers(10)), 1, 3, 31)
    assert [s.out_shape for s in two_by_two] == [s.out_shape for s in base]
    assert {s.settings["size"] for s in two_by_two if s.kind == "pool"} == {2}
    assert Variant().apply(small_layers(10)) == small_layers(10)


def test_one_column_halves_conv1_to_conv4_and_groups_nothing():
    """Section 6's one-GPU net: half the kernels in conv1-4, conv5 and the fc layers kept, no
    grouped convolution. The paper's footnote: with conv5 and the fc layers kept, the two nets
    have about the same number of parameters; true of the paper preset (98%); the small
    preset's fc layers are small, so its one column has 79% of the parameters."""
    def parameters(preset, variant, channels, side):
        plan = layer_plan(variant.apply(PRESETS[preset].layers(10)), 1, channels, side)
        return sum(np.prod(s.weight_shape()) + s.weight_shape()[0] for s in plan if s.weight_shape())
    ratio = parameters("paper", Variant(columns=1), 3, 227) / parameters("paper", Variant(), 3, 227)
    assert 0.97 < ratio < 1
    one, two = (AlexNet(10, "small", variant=v) for v in (Variant(columns=1), Variant()))
    plan = {s.name: s for s in one.plan}
    maps = {n: plan[f"conv{n}"].settings["filters"] for n in range(1, 6)}
    assert maps == {1: 32, 2: 64, 3: 96, 4: 96, 5: 128}
    assert all(s.settings["groups"] == 1 for s in one.plan if "groups" in s.settings)
    assert 0.75 < one.num_parameters() / two.num_parameters() < 0.85
    with pytest.raises(ValueError, match="one-column .* one device"):
        AlexNet(10, "small", variant=Variant(columns=1), devices=("cpu:0", "cpu:1"))


@pytest.mark.parametrize("bad, match", [({"activation": "sigmoid"}, "activation"),
                                        ({"pool": "4/4"}, "pool"), ({"columns": 3}, "columns"),
                                        ({"dropout_p": 1.0}, "dropout_p"),
                                        ({"dropout_p": -0.1}, "dropout_p")])
def test_unknown_variant_settings_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        Variant(**bad)


def test_until_returns_a_layers_output_both_columns_joined():
    x = np.random.default_rng(3).standard_normal((3, 1, SIDE, SIDE))
    one, two = tiny(Variant()), tiny(Variant(), devices=("cpu:0", "cpu:1"))
    fc7 = one.forward(x, train=False, until="fc7")
    assert fc7.shape == (3, 64) and fc7.min() >= 0                       # after the ReLU
    np.testing.assert_allclose(two.forward(x, train=False, until="fc7"), fc7, rtol=1e-12)
    logits = one.blocks["fc8"][0].forward(fc7)                           # fc8 reads it
    np.testing.assert_allclose(logits, one.forward(x, train=False), rtol=1e-12)
    with pytest.raises(ValueError, match="until must name a layer"):
        one.forward(x, train=False, until="fc9")


def test_variant_flags_train_save_and_reload(tmp_path):
    run_dir = tmp_path / "run"
    flags = ["--activation", "tanh", "--no-lrn", "--pool", "2/2", "--no-dropout", "--one-column",
             "--image-size", "31", "--checkpoint-minutes", "0"]
    assert train_main(h.tiny_args(run_dir, extra=flags)) == 0
    model = load_model(load_run_state(str(run_dir)))
    assert model.variant == Variant(activation="tanh", lrn=False, pool="2/2", dropout=False, columns=1)
    kinds = {s.kind for s in model.plan}
    assert "tanh" in kinds and "relu" not in kinds and "lrn" not in kinds and "dropout" not in kinds
    assert os.path.exists(run_dir / "curves.png")


def test_dropout_rate_flag_reaches_every_dropout_and_survives_a_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    assert train_main(h.tiny_args(run_dir, extra=["--dropout", "0.25", "--checkpoint-minutes",
                                                  "0"])) == 0
    model = load_model(load_run_state(str(run_dir)))
    assert model.variant == Variant(dropout_p=0.25)
    assert model.variant.describe() == "dropout 0.25"
    dropouts = [m for m in model._modules() if type(m).__name__ == "Dropout"]
    assert len(dropouts) == 2 and all(m.p == 0.25 for m in dropouts)
    # fc6's units after dropout in training (its input is the same as in evaluation): of
    # those the ReLU lets through, about a quarter zeroed, the others scaled by 1/(1 - 0.25)
    x = np.random.default_rng(4).standard_normal((200, 3, 32, 32)).astype(np.float32)
    fc6_train = model.forward(x, dropout_keys=np.arange(200), until="fc6")
    fc6_eval = model.forward(x, train=False, until="fc6")
    alive = fc6_eval > 0
    kept = fc6_train[alive] != 0
    np.testing.assert_allclose(fc6_train[alive][kept], fc6_eval[alive][kept] / 0.75, rtol=1e-5)
    dropped = 1 - np.mean(kept)
    assert 0.2 < dropped < 0.3, dropped


def test_one_column_with_two_devices_is_refused(tmp_path, capsys):
    status = train_main(h.tiny_args(tmp_path / "run", extra=["--one-column", "--columns", "cpu:0,cpu:1"]))
    assert status == 2
    assert "one-column" in capsys.readouterr().err


def test_fc_width_scales_fc6_and_fc7_alone_and_survives_a_checkpoint(tmp_path):
    # width 0.125 with fc width 0.5: the convolutions of width 0.125, fc6 and fc7 of 256 units
    model = AlexNet(10, "small", width=0.125, fc_width=0.5, in_channels=1, input_size=SIDE,
                    dtype=np.float64, init="he")
    narrow = tiny(Variant())
    state, narrow_state = model.state_dict(), narrow.state_dict()
    for name in narrow_state:
        if name.startswith("conv"):
            assert state[name].shape == narrow_state[name].shape, name
    assert state["fc6.weight"].shape == (256, narrow_state["fc6.weight"].shape[1])
    assert state["fc7.weight"].shape == (256, 256) and state["fc8.weight"].shape == (10, 256)
    x = np.random.default_rng(2).standard_normal((2, 1, SIDE, SIDE))
    np.testing.assert_allclose(model.forward(x, train=False), naive_forward(state, x, Variant()),
                               rtol=1e-10, atol=1e-12)
    run_dir = tmp_path / "run"
    assert train_main(h.tiny_args(run_dir, extra=["--fc-width", "0.25", "--checkpoint-minutes",
                                                  "0"])) == 0
    reloaded = load_model(load_run_state(str(run_dir)))
    assert (reloaded.width, reloaded.fc_width) == (0.125, 0.25)
    assert reloaded.state_dict()["fc7.weight"].shape == (128, 128)
