"""SGD with momentum and weight decay, the paper's update rule (section 5).

For every weight w with gradient g = dL/dw, learning rate lr, momentum m = 0.9 and weight
decay wd = 0.0005::

    v <- m * v - wd * lr * w - lr * g
    w <- w + v

Unlike PyTorch's SGD (which folds the learning rate in after the momentum: v <- m v + g + wd w;
w <- w - lr v), the paper's velocity carries the learning rate, so changing lr mid-run does not
rescale the velocity already built up. The paper decays every weight, biases included.

Each parameter piece is updated where it lives: with two columns on two devices, column k's
velocity and update stay on device k.

On the CPU the update of a weight over 1 MiB runs a block of entries on every core
(``functional/_parallel.py``), with a scratch array per block instead of two temporaries the
size of the weight: fc6's weight alone is 151 MB in the paper's network, and memory that large
is mapped afresh, a page fault per page, every time it is allocated. Each entry goes through
the same operations in the same order, so the result is the same, bit for bit.
"""
import numpy as np

from .backend import device_of, device_scope, get_array_module, is_cuda, to_device, to_numpy
from .functional._parallel import one_block_per_worker, run_blocks


class SGD:
    """The paper's momentum SGD over ``model.parameters()`` (name, column, param, grad)."""

    def __init__(self, model, lr=0.01, momentum=0.9, weight_decay=5e-4):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.model, self.lr, self.momentum, self.weight_decay = model, lr, momentum, weight_decay
        self.velocity = {}   # (name, column) -> array on the parameter's device

    def step(self):
        """Apply one update to every parameter, in place."""
        for name, column, param, grad in self.model.parameters():
            if grad is None:
                raise RuntimeError(f"{name} has no gradient: call model.backward() before step()")
            key = (name, column)
            xp = get_array_module(param)
            with device_scope(param):           # column k's update runs on column k's device
                velocity = self.velocity.get(key)
                if velocity is None:
                    velocity = self.velocity[key] = xp.zeros_like(param)
                if is_cuda(param) or not (param.flags.c_contiguous and velocity.flags.c_contiguous):
                    self._update(param, grad, velocity)
                else:
                    self._update_in_blocks(param, grad, velocity)

    def _update(self, param, grad, velocity):
        """v <- m v - wd lr w - lr g; w <- w + v, in place on param and velocity."""
        velocity *= self.momentum
        velocity -= (self.weight_decay * self.lr) * param
        velocity -= self.lr * grad
        param += velocity

    def _update_in_blocks(self, param, grad, velocity):
        """``_update`` on consecutive blocks of the flattened arrays (views: the writes land in
        param and velocity), with a scratch array of one block for the two products."""
        w, g, v = param.reshape(-1), grad.reshape(-1), velocity.reshape(-1)
        decay, lr = self.weight_decay * self.lr, self.lr

        def block(first, last):
            scratch = np.empty(last - first, dtype=param.dtype)
            v_block = v[first:last]
            v_block *= self.momentum
            v_block -= np.multiply(w[first:last], decay, out=scratch)     # - wd lr w
            v_block -= np.multiply(g[first:last], lr, out=scratch)        # - lr g
            w[first:last] += v_block

        run_blocks(block, one_block_per_worker(w.size, w.nbytes))

    def state_dict(self):
        """Velocities as NumPy arrays named ``velocity/<param>``, laid out like the model's
        ``state_dict()`` (columns concatenated), so optimizer state moves between one and two
        columns like the weights do; plus ``lr``."""
        pieces = {}
        for name, column, param, _ in self.model.parameters():
            velocity = self.velocity.get((name, column))
            pieces.setdefault(name, []).append(
                np.zeros(param.shape, param.dtype) if velocity is None else to_numpy(velocity))
        state = {f"velocity/{name}": np.concatenate(parts) for name, parts in pieces.items()}
        state["lr"] = np.asarray(self.lr)
        return state

    def load_state_dict(self, state):
        """Restore velocities (split into the model's columns, each on its device) and lr."""
        self.velocity = {}
        offsets = {}
        for name, column, param, _ in self.model.parameters():
            key = f"velocity/{name}"
            if key not in state:
                raise ValueError(f"optimizer state has no {key}")
            full = state[key]
            start = offsets.get(name, 0)
            piece = np.asarray(full[start:start + param.shape[0]], dtype=param.dtype)
            if piece.shape != tuple(param.shape):
                raise ValueError(f"optimizer state {key} has shape {tuple(full.shape)}, "
                                 f"which does not fit the parameter's pieces")
            offsets[name] = start + param.shape[0]
            self.velocity[(name, column)] = to_device(piece, device_of(param))
        for name, used in offsets.items():
            rows = state[f"velocity/{name}"].shape[0]
            if rows != used:
                raise ValueError(f"optimizer state velocity/{name} has {rows} rows, the model's "
                                 f"pieces have {used}")
        if "lr" in state:
            self.lr = float(state["lr"])
