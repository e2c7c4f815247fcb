"""``bench layers``, part 1: every operation of the network at its real shape, as functions
of no arguments, ours and PyTorch's on the same arrays.

``layer_plan`` lists the operations (``model.layer_plan``, plus a ``convN.bias`` row after each
convolution); ``layer_functions`` makes ours runnable on random data and ``torch_layer_functions``
PyTorch's on the same arrays; ``layer_flops`` counts a matrix-product layer's arithmetic and
``minimum_bytes`` a memory-bound layer's traffic. ``layer_timing.py`` times them.
"""
import numpy as np

from .. import functional as F
from ..model import layer_plan as network_plan

POOL_INDEX_BYTES = 8                  # one argmax index per pooled output, int64 as PyTorch keeps it
DROPOUT_MASK_BYTES = 1                # one bool per unit: kept or dropped
LABEL_BYTES = 8                       # one int64 class index per image


def layer_plan(preset="paper", batch=32):
    """Every operation of a preset's one-device network as (name, kind, input shape, settings),
    in forward order: ``model.layer_plan``, the walk the model itself is built from (so the
    shapes cannot drift from the model), for the preset's class count.

    After each convolution comes a row ``convN.bias``: the bias add and its gradient at that
    convolution's output shape, timed apart (they are already inside the convolution's time)."""
    plan = []
    for step in network_plan(preset, batch):
        plan.append((step.name, step.kind, step.in_shape, dict(step.settings)))
        if step.kind == "conv":
            plan.append((f"{step.name}.bias", "bias", step.out_shape, {}))
    return plan


def layer_inputs(kind, shape, settings, rng, dtype):
    """The random arrays one layer runs on: x, and w and b, or labels, where the layer has them.
    Ours and PyTorch's run on these same arrays."""
    x = rng.standard_normal(shape).astype(dtype)
    inputs = dict(x=x)
    if kind == "conv":
        f, c, k, groups = settings["filters"], shape[1], settings["kernel"], settings["groups"]
        inputs.update(w=(rng.standard_normal((f, c // groups, k, k)) * 0.01).astype(dtype),
                      b=np.zeros(f, dtype))
    elif kind == "fc":
        inputs.update(w=(rng.standard_normal((settings["units"], shape[1])) * 0.01).astype(dtype),
                      b=np.zeros(settings["units"], dtype))
    elif kind == "bias":
        inputs["b"] = (rng.standard_normal(shape[1]) * 0.01).astype(dtype)
    elif kind == "lrn":
        # within each column, as the model does on one device: (N, C, H, W) -> (gN, C/g, H, W)
        n, c, h, w = shape
        groups = settings["groups"]
        inputs["x"] = x.reshape(groups * n, c // groups, h, w)
    elif kind == "loss":
        inputs["labels"] = rng.integers(0, shape[1], shape[0])
    elif kind not in ("relu", "pool", "dropout"):
        raise ValueError(f"unknown layer kind {kind!r}")
    return inputs


def our_layer_ops(kind, settings, inputs):
    """``(forward, backward_of)`` of our layer: ``forward()`` returns ``(y, cache)`` and
    ``backward_of(dy, cache)`` the gradients; ``backward_of`` is None for the loss, whose
    forward call also returns the gradient."""
    x, w, b = inputs["x"], inputs.get("w"), inputs.get("b")
    if kind == "bias":
        # y += b[f] at every image and pixel, in place on a copy of x (conv.add_bias), and db[f] =
        # dy summed over images and pixels (conv.bias_gradient, what conv2d_backward calls): the
        # bias add as one separate pass over the whole output (our convolution adds b to each
        # chunk's product while that is still in cache, so this row says what the step would
        # cost on its own, not what it costs inside the layer)
        y = x.copy()
        return (lambda: (F.add_bias(y, b), None)), (lambda dy, cache: F.bias_gradient(dy))
    dropout_rng = np.random.default_rng(1)
    ops = {
        "conv": (lambda: F.conv2d_forward(x, w, b, settings["stride"], settings["pad"], settings["groups"]),
                 F.conv2d_backward),
        "fc": (lambda: F.linear_forward(x, w, b), F.linear_backward),
        "relu": (lambda: F.relu_forward(x), F.relu_backward),
        "lrn": (lambda: F.lrn_forward(x, settings["size"], settings["alpha"], settings["beta"],
                                      settings["k"]), F.lrn_backward),
        "pool": (lambda: F.max_pool2d_forward(x, settings["size"], settings["stride"], settings["pad"]),
                 F.max_pool2d_backward),
        # one mask over the whole (N, units): the same work as the model's column by column
        "dropout": (lambda: F.dropout_forward(x, settings["p"], True, dropout_rng), F.dropout_backward),
        "loss": (lambda: F.softmax_cross_entropy(x, inputs["labels"]), None),
    }
    return ops[kind]


def layer_flops(kind, shape, settings):
    """Forward FLOPs (2 per multiply-accumulate) of a convolution or fc layer, else None."""
    if kind == "conv":
        n, c, h, _ = shape
        f, k, groups = settings["filters"], settings["kernel"], settings["groups"]
        out = F.output_size(h, k, settings["stride"], settings["pad"])
        return 2.0 * n * f * out * out * (c // groups) * k * k
    if kind == "fc":
        return 2.0 * shape[0] * shape[1] * settings["units"]
    return None


def layer_functions(kind, shape, settings, rng, dtype):
    """One layer of ours on random data, as a dict: ``forward`` and ``backward`` (no arguments;
    backward None for the loss), ``out_shape``, ``flops`` (forward, or None) and ``inputs``, the
    arrays (x, w, b, labels, and dy: the upstream gradient backward is given) for PyTorch."""
    inputs = layer_inputs(kind, shape, settings, rng, dtype)
    forward, backward_of = our_layer_ops(kind, settings, inputs)
    layer = dict(forward=forward, backward=None, out_shape=(), flops=layer_flops(kind, shape, settings),
                 inputs=inputs)
    if backward_of is None:
        return layer
    y, cache = forward()
    dy = rng.standard_normal(y.shape).astype(dtype)
    inputs["dy"] = dy
    layer.update(backward=lambda: backward_of(dy, cache),
                 out_shape=shape if kind == "lrn" else y.shape)   # LRN's output is x's shape, viewed back
    return layer


def minimum_bytes(kind, in_shape, out_shape, itemsize):
    """``(forward, backward)``: the fewest bytes a memory-bound layer's passes must move to and
    from memory, counted from the math: every array the pass needs is read once, every array it
    produces is written once, and nothing else (no temporaries, no cache beyond what backward
    needs). None for convolutions and fc layers (matrix products: see their GFLOP/s).

    With X and Y the bytes of the input and the output and n(.) their element counts:

    relu     forward: reads x, writes y: 2X. backward: reads dy and y (y > 0 is the mask),
             writes dx: 3X.
    lrn      forward: reads x, writes y: 2X. Only x and y are counted: whatever else a cache
             keeps for backward (the window sums, say) is the implementation's choice.
             backward: reads dy and x (the window sums and y can be recomputed from x),
             writes dx: 3X.
    pool     forward: reads x, writes y and one argmax index per output (int64, 8 bytes, as
             PyTorch keeps it): X + Y + 8 n(Y). backward: reads dy and the index, writes the
             whole dx, zeros included: Y + 8 n(Y) + X.
    dropout  forward: reads x, writes y and the mask (one byte per unit): 2X + n(X).
             backward: reads dy and the mask, writes dx: 2X + n(X).
    loss     softmax cross-entropy, which gives the gradient in its forward call: reads the
             logits and the labels (int64), writes dlogits: 2X + 8N. Backward: 0.
    bias     forward, y += b: reads y and b, writes y: 2Y + F. backward, db = dy summed over
             images and pixels: reads dy, writes db: Y + F (F: the bias's bytes).
    """
    x_bytes = int(np.prod(in_shape)) * itemsize
    y_count = int(np.prod(out_shape))
    if kind in ("relu", "lrn"):
        return 2 * x_bytes, 3 * x_bytes
    if kind == "pool":
        moved = x_bytes + y_count * itemsize + y_count * POOL_INDEX_BYTES
        return moved, moved
    if kind == "dropout":
        moved = 2 * x_bytes + (x_bytes // itemsize) * DROPOUT_MASK_BYTES
        return moved, moved
    if kind == "loss":
        return 2 * x_bytes + in_shape[0] * LABEL_BYTES, 0
    if kind == "bias":
        bias_bytes = in_shape[1] * itemsize
        return 2 * x_bytes + bias_bytes, x_bytes + bias_bytes
    return None, None


def torch_layer_op(torch, kind, settings, tensors):
    """PyTorch's forward of one layer as a function of no arguments, on ``tensors``."""
    nn_f, x, w, b = torch.nn.functional, tensors["x"], tensors.get("w"), tensors.get("b")
    ops = {
        "conv": lambda: nn_f.conv2d(x, w, b, settings["stride"], settings["pad"], groups=settings["groups"]),
        "fc": lambda: nn_f.linear(x, w, b),
        "relu": lambda: torch.relu(x),
        # x is already viewed (2N, C/2, H, W); PyTorch divides alpha by size, the paper does not
        "lrn": lambda: nn_f.local_response_norm(x, settings["size"], alpha=settings["alpha"] * settings["size"],
                                                beta=settings["beta"], k=settings["k"]),
        "pool": lambda: nn_f.max_pool2d(x, settings["size"], settings["stride"], settings["pad"]),
        "dropout": lambda: nn_f.dropout(x, settings["p"], training=True),
        "loss": lambda: nn_f.cross_entropy(x, tensors["labels"]),
    }
    return ops[kind]


def torch_layer_functions(torch, kind, settings, inputs):
    """``(forward, backward)`` of the same layer in PyTorch, on the same arrays as ours
    (``torch.from_numpy`` shares their memory), at PyTorch's own thread count.

    Backward is autograd's: ``torch.autograd.grad(y, leaves, dy, retain_graph=True)`` gives the
    gradients of x (and w, b) like ours, keeps the graph so that it can run again, and returns
    them instead of adding them into ``.grad`` (which would cost one more pass over each). The
    forward runs with x requiring a gradient, so it saves what backward needs, as ours does.
    The bias row is two plain tensor operations, as ours are."""
    tensors = {name: torch.from_numpy(array) for name, array in inputs.items()}
    if kind == "bias":
        y, b_column, dy = torch.from_numpy(inputs["x"].copy()), tensors["b"].view(-1, 1, 1), tensors["dy"]
        return (lambda: y.add_(b_column)), (lambda: dy.sum(dim=(0, 2, 3)))
    leaves = [tensors[name].requires_grad_() for name in ("x", "w", "b") if name in tensors]
    forward = torch_layer_op(torch, kind, settings, tensors)
    y = forward()
    upstream = tensors.get("dy")              # None for the loss: a scalar's gradient is 1
    return forward, (lambda: torch.autograd.grad(y, leaves, upstream, retain_graph=True))

