"""AlexNet's two columns: how each layer is split between two devices, and where activations
cross from one device to the other (Krizhevsky et al., 2012, section 3.2 and figure 2).

Each column holds half of every layer's kernels or units, on its own device; fc8 is not split
and lives on the first device. A layer that sees only its own column (conv2, conv4, conv5)
needs nothing from the other device. conv3, fc6, fc7 and fc8 read BOTH columns' outputs, so
those outputs cross, and nothing else does (widths of the paper's network)::

          device d0 (column 0)                          device d1 (column 1)
    image ─────────────────── split: a copy of the image for each column ──────────── image
      │                                                                                  │
    conv1   48 maps   ReLU, LRN, pool                         conv1   48 maps   ReLU, LRN, pool
    conv2  128 maps   ReLU, LRN, pool   (own column)          conv2  128 maps   ReLU, LRN, pool
      │  ═══════════ all-gather: both columns' 2 x 128 maps, on each device ═══════════  │
    conv3  192 maps   ReLU              (both columns)        conv3  192 maps   ReLU
    conv4  192 maps   ReLU              (own column)          conv4  192 maps   ReLU
    conv5  128 maps   ReLU, pool        (own column)          conv5  128 maps   ReLU, pool
      │  ═══════════ all-gather: 2 x (128 x 6 x 6) maps ═══════════════════════════════  │
    fc6   2048 units  ReLU, dropout                           fc6   2048 units  ReLU, dropout
      │  ═══════════ all-gather: 2 x 2048 units ═══════════════════════════════════════  │
    fc7   2048 units  ReLU, dropout                           fc7   2048 units  ReLU, dropout
      │  ═══════════ gather on d0 only: 2 x 2048 units ════════════════════════════════  ┘
    fc8   num_classes logits (on d0)

The backward pass crosses at the same places, the other way. A column that read the
concatenation [a0, a1] of both columns' outputs hands back the gradient [g0, g1] of that
concatenation. Column j's output a_j fed EVERY reader, so its gradient is the sum over the
readers: dL/da_j = sum over readers r of g_j(r). Cutting each reader's gradient into the pieces
that belong to each device, sending piece j to device j and summing there is a reduce-scatter
(the transpose of the all-gather). The image fed both columns: its gradient is summed on d0.

On ONE device there is nothing to cross: the device holds both columns as one network whose
"own column" convolutions are grouped (groups=2) and every function here passes the single
array through.
"""
import numpy as np

from .backend import device_context, get_array_module, parse_device, to_device


def parse_devices(devices):
    """``None`` -> ["cpu"]; one name or a list of one or two names (one per column) -> list."""
    if devices is None:
        return ["cpu"]
    if isinstance(devices, str):
        devices = [devices]
    devices = list(devices)
    if len(devices) not in (1, 2):
        raise ValueError(f"devices must name one device or two (one per column), got {devices}")
    for device in devices:
        parse_device(device)
    return devices


def on_device(device, function, *args):
    """``function(*args)`` with ``device`` current: where a column's layers run."""
    with device_context(device):
        return function(*args)


# ---- the collective operations -------------------------------------------------------------------

def gather_on(device, parts, axis=1):
    """Concatenate arrays from any devices along ``axis``, on ``device``."""
    with device_context(device):
        moved = [to_device(part, device) for part in parts]
        return get_array_module(moved[0]).concatenate(moved, axis=axis)


def all_gather(parts, devices, axis=1):
    """Every device in ``devices`` gets the concatenation of all ``parts`` (one per column)."""
    return [gather_on(device, parts, axis) for device in devices]


def reduce_scatter(grads_by_reader, sizes, devices, axis=1):
    """The backward of ``all_gather``. Reader r's gradient is cut along ``axis`` into pieces of
    ``sizes`` (piece j: entries sizes[0] + ... + sizes[j-1] up to the next bound); piece j of
    every reader goes to ``devices[j]`` and is summed there, readers in column order. With one
    size and one device it is a plain reduce: the sum of every reader's whole gradient."""
    bounds = np.cumsum([0] + list(sizes))
    result = []
    for j, device in enumerate(devices[:len(sizes)]):
        with device_context(device):
            total = None
            for grad in grads_by_reader:
                index = [slice(None)] * grad.ndim
                index[axis] = slice(bounds[j], bounds[j + 1])
                piece = to_device(grad[tuple(index)], device)
                total = piece if total is None else total + piece
            result.append(total)
    return result


# ---- the layers' wiring ---------------------------------------------------------------------------

class ColumnExchange:
    """Where each layer of the table runs and what it reads, for one device or two.

    A layer record needs ``sees`` ("image", "own" or "both") and, for fc8, ``last`` (True: not
    split, on the first device). Lists hold one array per column that runs the layer."""

    def __init__(self, devices):
        self.devices = list(devices)

    def is_split(self, layer):
        """True if the layer's kernels are halved between two devices (all but fc8)."""
        return len(self.devices) == 2 and not getattr(layer, "last", False)

    def devices_for(self, layer):
        """The devices that run ``layer``: both columns', or only the first."""
        return self.devices if self.is_split(layer) else self.devices[:1]

    def split_rows(self, layer, full):
        """A full host tensor (a weight or a bias) as the pieces each device holds: rows
        k*half .. (k+1)*half on device k when split, else the whole on the first device."""
        pieces = np.split(full, 2) if self.is_split(layer) else [full]
        return [to_device(np.ascontiguousarray(piece), device)
                for piece, device in zip(pieces, self.devices_for(layer))]

    def inputs(self, layer, outputs, image):
        """What each column of ``layer`` reads: the image (split: a copy for each device),
        its own column's ``outputs`` of the layer below, or both columns' (all-gather)."""
        if layer.sees == "image":
            if len(self.devices) == 1:
                return [image]
            copies = []
            for device in self.devices:
                with device_context(device):
                    copies.append(to_device(image, device))
            return copies
        if len(self.devices) == 1 or layer.sees == "own":
            return outputs
        # Both columns: the maps (N, C/2, H, W) are concatenated along the channels. For fc6
        # that is (N, C, H, W), which the fully connected layer flattens in C, H, W order:
        # column 0's features first, as if each column's maps were flattened and then joined.
        return all_gather(outputs, self.devices_for(layer))

    def input_gradients(self, layer, dinputs):
        """The backward of ``inputs``: each column's d(what it read) -> the gradient of the
        layer below's outputs, one per column (or [d(image)], or [None] when conv1 skipped
        its d(image))."""
        if len(self.devices) == 1 or layer.sees == "own":
            return dinputs
        if dinputs[0] is None:
            return [None]
        if layer.sees == "image":             # both columns read the whole image: sum on d0
            return reduce_scatter(dinputs, [dinputs[0].shape[1]], self.devices[:1])
        half = dinputs[0].shape[1] // 2       # [column 0's maps or units, column 1's]
        return reduce_scatter(dinputs, [half, half], self.devices)
