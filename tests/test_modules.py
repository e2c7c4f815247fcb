"""The nn modules (``minitorch_alexnet/nn.py``): thin stateful shells over ``functional``.

A module holds ``params``; ``forward`` keeps the cache; ``backward`` returns dx and fills
``grads`` under the same names as ``params``. Checked: every module's forward and backward
equal the functional pair it wraps; parameter shapes and dtypes follow the constructor
(grouped weights are (out, in/groups, k, k)); ``train()``/``eval()`` switch dropout on and
off, also through a ``Sequential``; ``Sequential`` names parameters "<index>.<name>" like
PyTorch, runs backward in reverse and agrees with centred differences end to end. What AlexNet
builds its columns with: ``from_arrays`` computes with the given arrays themselves;
``Conv2d.backward(dy, input_grad=False)`` (also through a ``Sequential``) gives the same
gradients and no dx; ``LRN(groups=2)`` equals LRN on each half of the channels and
``Dropout(groups=2)`` equals two dropouts drawing for each half in turn.
Run with ``pytest -m modules``.
"""
import numpy as np
import pytest

from minitorch_alexnet import functional as F
from minitorch_alexnet import nn
from minitorch_alexnet.gradcheck import check_gradients

pytestmark = pytest.mark.modules


def _random(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _same_as_functional(module, x, forward, backward, *args, **options):
    """module.forward/backward give what forward(x, *args, **options)/backward give."""
    y = module.forward(x)
    expected_y, cache = forward(x, *args, **options)
    np.testing.assert_array_equal(y, expected_y)
    dy = _random(y.shape, seed=1, dtype=y.dtype)
    dx = module.backward(dy)
    expected = backward(dy, cache)
    expected = expected if isinstance(expected, tuple) else (expected,)
    np.testing.assert_array_equal(dx, expected[0])
    return expected[1:]


def test_conv2d_module_matches_functional():
    layer = nn.Conv2d(4, 6, 3, stride=2, pad=1, groups=2, rng=0)
    assert layer.params["weight"].shape == (6, 2, 3, 3) and layer.params["bias"].shape == (6,)
    assert layer.params["weight"].dtype == np.float32
    dw, db = _same_as_functional(layer, _random((2, 4, 5, 5)), F.conv2d_forward, F.conv2d_backward,
                                 layer.params["weight"], layer.params["bias"], 2, 1, 2)
    assert set(layer.grads) == set(layer.params) == {"weight", "bias"}
    np.testing.assert_array_equal(layer.grads["weight"], dw)
    np.testing.assert_array_equal(layer.grads["bias"], db)


def test_conv2d_initialisation():
    # the paper: weights ~ N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0
    layer = nn.Conv2d(48, 128, 5, pad=2, weight_std=0.01, bias_value=1.0, rng=0, dtype=np.float64)
    assert layer.params["weight"].std() == pytest.approx(0.01, rel=0.02)
    np.testing.assert_array_equal(layer.params["bias"], 1.0)
    assert layer.params["weight"].dtype == np.float64


def test_linear_module_matches_functional():
    layer = nn.Linear(12, 5, rng=0)
    assert layer.params["weight"].shape == (5, 12)
    dw, db = _same_as_functional(layer, _random((3, 3, 2, 2)), F.linear_forward, F.linear_backward,
                                 layer.params["weight"], layer.params["bias"])
    assert set(layer.grads) == set(layer.params)
    np.testing.assert_array_equal(layer.grads["weight"], dw)
    np.testing.assert_array_equal(layer.grads["bias"], db)


@pytest.mark.parametrize("module, forward, backward, options", [
    (nn.ReLU(), F.relu_forward, F.relu_backward, {}),
    (nn.Tanh(), F.tanh_forward, F.tanh_backward, {}),
    (nn.LRN(), F.lrn_forward, F.lrn_backward, dict(size=5, alpha=1e-4, beta=0.75, k=2.0)),
    (nn.LRN(size=3, alpha=1.0, beta=0.5, k=1.0), F.lrn_forward, F.lrn_backward,
     dict(size=3, alpha=1.0, beta=0.5, k=1.0)),
    (nn.MaxPool2d(), F.max_pool2d_forward, F.max_pool2d_backward, dict(size=3, stride=2, pad=0)),
    (nn.MaxPool2d(2, 2, 1), F.max_pool2d_forward, F.max_pool2d_backward, dict(size=2, stride=2, pad=1)),
], ids=["relu", "tanh", "lrn paper", "lrn custom", "maxpool 3/2", "maxpool 2/2 pad 1"])
def test_parameter_free_modules_match_functional(module, forward, backward, options):
    _same_as_functional(module, _random((2, 6, 7, 7)), forward, backward, **options)
    assert module.params == {} and module.grads == {}


def test_dropout_module_train_and_eval():
    x = np.ones((20, 50), np.float32)
    layer = nn.Dropout(0.5, rng=0)
    y = layer.forward(x)
    assert 0 < np.mean(y == 0) < 1 and set(np.unique(y)) == {0.0, 2.0}
    # same seed, same first mask as the functional form given the same generator
    expected, _ = F.dropout_forward(x, 0.5, True, np.random.default_rng(0))
    np.testing.assert_array_equal(y, expected)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, y)               # same mask, same scaling
    assert not np.array_equal(layer.forward(x), y)     # a new mask on every call
    assert layer.eval() is layer and not layer.training
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 3.0)), 3.0)
    layer.train()
    assert layer.training and np.any(layer.forward(x) == 0)


def _small_net():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, pad=1, groups=2, rng=1, dtype=np.float64, weight_std=0.5),
        nn.ReLU(),
        nn.LRN(size=3, alpha=1.0, k=1.0),
        nn.MaxPool2d(3, 2),
        nn.Linear(4 * 2 * 2, 3, rng=2, dtype=np.float64, weight_std=0.5),
        nn.Dropout(0.5, rng=3),
        nn.Tanh(),
    )


def test_sequential_names_parameters_like_pytorch():
    net = _small_net()
    assert list(net.params) == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert net.params["4.weight"] is net.layers[4].params["weight"]   # views, not copies


def test_sequential_forward_and_backward_chain_the_layers():
    net = _small_net().eval()
    x = _random((2, 2, 5, 5), dtype=np.float64)
    y = net.forward(x)
    h = x
    for layer in net.layers:
        h = layer.forward(h)
    np.testing.assert_array_equal(y, h)
    dy = _random(y.shape, seed=4, dtype=np.float64)
    dx = net.backward(dy)
    assert dx.shape == x.shape
    assert set(net.grads) == set(net.params)
    for name, grad in net.grads.items():
        assert grad.shape == net.params[name].shape and grad.dtype == np.float64


def test_sequential_train_and_eval_reach_every_layer():
    net = _small_net()
    net.eval()
    assert not net.training and not any(layer.training for layer in net.layers)
    x = _random((2, 2, 5, 5), dtype=np.float64)
    np.testing.assert_array_equal(net.forward(x), net.forward(x))   # no dropout: deterministic
    net.train()
    assert net.training and all(layer.training for layer in net.layers)


def test_sequential_gradients_agree_with_centred_differences():
    # The whole small network end to end, in eval mode (dropout off) so the function is fixed.
    net = _small_net().eval()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 5))
    upstream = rng.standard_normal((2, 3))

    def loss():
        return float(np.sum(net.forward(x) * upstream))

    net.forward(x)
    dx = net.backward(upstream)
    inputs = {"x": x, **net.params}
    analytic = {"x": dx, **net.grads}
    for name, (error, _) in check_gradients(loss, inputs, analytic).items():
        assert error < 1e-6, f"{name}: {error}"


def test_zero_grad_gives_zeros_named_like_params():
    net = _small_net()
    net.zero_grad()
    assert set(net.grads) == set(net.params)
    assert all(np.all(g == 0) for g in net.grads.values())


# ---- what AlexNet's columns use -------------------------------------------------------------------

def test_from_arrays_computes_with_the_given_arrays():
    weight, bias = _random((6, 2, 3, 3)), _random((6,), seed=1)
    conv = nn.Conv2d.from_arrays(weight, bias, stride=2, pad=1, groups=2)
    assert conv.params["weight"] is weight and conv.params["bias"] is bias
    x = _random((2, 4, 5, 5), seed=2)
    np.testing.assert_array_equal(conv.forward(x), F.conv2d_forward(x, weight, bias, 2, 1, 2)[0])
    fc_weight, fc_bias = _random((5, 12)), _random((5,), seed=1)
    fc = nn.Linear.from_arrays(fc_weight, fc_bias)
    assert fc.params["weight"] is fc_weight and fc.grads == {}
    x = _random((3, 12), seed=2)
    np.testing.assert_array_equal(fc.forward(x), F.linear_forward(x, fc_weight, fc_bias)[0])


def test_backward_without_input_gradient():
    net = nn.Sequential(nn.Conv2d(2, 4, 3, pad=1, rng=1, dtype=np.float64), nn.ReLU())
    x = _random((2, 2, 5, 5), dtype=np.float64)
    dy = _random((2, 4, 5, 5), seed=1, dtype=np.float64)
    net.forward(x)
    assert net.backward(dy).shape == x.shape
    full = dict(net.grads)
    assert net.backward(dy, input_grad=False) is None
    for name, grad in full.items():
        np.testing.assert_array_equal(net.grads[name], grad)


def test_grouped_lrn_normalises_each_half_apart():
    x = _random((2, 8, 4, 4), dtype=np.float64)
    dy = _random(x.shape, seed=1, dtype=np.float64)
    layer = nn.LRN(groups=2)
    y = layer.forward(x)
    dx = layer.backward(dy)
    for half in (slice(0, 4), slice(4, 8)):
        alone = nn.LRN()
        np.testing.assert_array_equal(y[:, half], alone.forward(np.ascontiguousarray(x[:, half])))
        np.testing.assert_array_equal(dx[:, half], alone.backward(np.ascontiguousarray(dy[:, half])))


def test_grouped_dropout_draws_each_half_in_turn():
    x = _random((3, 10), dtype=np.float64)
    layer = nn.Dropout(0.5, rng=7, groups=2)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(x))
    rng = np.random.default_rng(7)                   # one generator, the first half's draw first
    for half in (slice(0, 5), slice(5, 10)):
        alone = nn.Dropout(0.5, rng=rng)
        np.testing.assert_array_equal(y[:, half], alone.forward(np.ascontiguousarray(x[:, half])))
        np.testing.assert_array_equal(dx[:, half], alone.backward(np.ones((3, 5))))
