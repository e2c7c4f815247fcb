"""``bench model``: whole training steps of our network, one column and two, beside PyTorch's.

A step is ``model.forward(x, train=True)``, the softmax cross-entropy, ``backward`` (without
d(image), as training runs it) and one ``SGD.step``. When PyTorch can be imported (it is never a
dependency) the same network built from the same table runs in PyTorch in the same run. The
networks take turns, round after round (``time_in_rounds``), so that a change in the machine's
state hits all of them alike, and the ratio of our throughput to PyTorch's is reported from the
medians and for each round.
"""
import resource
import statistics
import sys
import time

import numpy as np

from .. import functional as F
from ..model import PRESETS, AlexNet, layer_plan
from ..optim import SGD
from .machine import machine_header, synchronize

MODEL_RATIO_TARGET = 1.3              # whole training steps: our images/s over PyTorch's


def held_bytes(*containers):
    """Bytes of the distinct arrays reachable from ``containers`` (dicts, lists, tuples): what a
    training step keeps alive (parameters, gradients, velocities, the caches for backward).
    Views count once, through the array that owns the memory."""
    seen, total, stack = set(), 0, list(containers)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "nbytes") and hasattr(item, "base"):
            owner = item
            while getattr(owner, "base", None) is not None and hasattr(owner.base, "nbytes"):
                owner = owner.base
            if id(owner) not in seen:
                seen.add(id(owner))
                total += owner.nbytes
    return total


def _peak_rss_mib():
    """The process's peak resident memory so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def our_train_step(preset, batch, devices, num_classes=1000, seed=0):
    """A full training step of our AlexNet on ``devices`` as a function, and a function that
    returns what the step holds: ``(step, memory)``."""
    from ..backend import cupy_module, parse_device, to_device
    model = AlexNet(num_classes=num_classes, preset=preset, seed=seed, devices=devices)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, model.in_channels, model.input_size, model.input_size)).astype(np.float32)
    labels = rng.integers(0, num_classes, batch)
    on_gpu = parse_device(model.devices[0])[0] == "cuda"
    pool = cupy_module().get_default_memory_pool() if on_gpu else None
    if pool is not None:
        pool.free_all_blocks()
    x, labels = to_device(x, model.devices[0]), to_device(labels, model.devices[0])
    optimizer = SGD(model)

    def step():
        logits = model.forward(x, train=True)
        loss, dlogits = F.softmax_cross_entropy(logits, labels)
        model.backward(dlogits, input_grad=False)   # as training does: no d(image)
        optimizer.step()
        synchronize(model.devices)
        return loss

    def memory():
        held = held_bytes(model.params, model.grads, model.caches, optimizer.velocity) / 2**20
        return dict(held_mib=held, gpu_pool_mib=pool.total_bytes() / 2**20 if pool is not None else None)

    return step, memory


def torch_alexnet(torch, preset, num_classes):
    """The same network in PyTorch, read from the same walk of the table (``layer_plan``):
    grouped convolutions, LRN within each column with alpha*size (PyTorch divides alpha by
    size; the paper does not)."""
    nn = torch.nn

    class ColumnLRN(nn.Module):
        def __init__(self, size, alpha, beta, k, groups):
            super().__init__()
            self.groups = groups
            self.lrn = nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)

        def forward(self, x):
            n, c, h, w = x.shape               # viewed (gN, C/g, H, W): each column apart
            return self.lrn(x.reshape(self.groups * n, c // self.groups, h, w)).reshape(n, c, h, w)

    table = PRESETS[preset]
    modules = []
    for step in layer_plan(table.layers(num_classes), 1, table.in_channels, table.input_size):
        s = step.settings
        if step.kind == "conv":
            modules.append(nn.Conv2d(step.in_shape[1], s["filters"], s["kernel"], s["stride"], s["pad"],
                                     groups=s["groups"]))
        elif step.kind == "relu":
            modules.append(nn.ReLU())
        elif step.kind == "lrn":
            modules.append(ColumnLRN(s["size"], s["alpha"], s["beta"], s["k"], s["groups"]))
        elif step.kind == "pool":
            modules.append(nn.MaxPool2d(s["size"], s["stride"], s["pad"]))
        elif step.kind == "fc":
            if not any(isinstance(module, nn.Flatten) for module in modules):
                modules.append(nn.Flatten())    # fc6 reads conv5's maps flattened
            modules.append(nn.Linear(step.in_shape[1], s["units"]))
        elif step.kind == "dropout":
            modules.append(nn.Dropout(s["p"]))
    return nn.Sequential(*modules)


def torch_train_step(preset, batch, device, num_classes=1000):
    """``(step, version)`` for PyTorch training steps of the same network, or None without
    torch (or without a CUDA device for ``device="cuda"``)."""
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.manual_seed(0)
    size, channels = PRESETS[preset].input_size, PRESETS[preset].in_channels
    net = torch_alexnet(torch, preset, num_classes).to(device).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, channels, size, size, device=device)
    labels = torch.randint(0, num_classes, (batch,), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), labels)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step, f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads"


def time_in_rounds(steps, per_round, rounds):
    """Step times of every function in ``steps`` (a dict), taken in turns: each round times
    ``per_round`` steps of each in order, so that a change in the machine's state hits all of
    them alike. Two warm-up steps each first. Returns {name: [seconds, ...]}."""
    for step in steps.values():
        step()
        step()
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                samples[name].append(time.perf_counter() - start)
    return samples


def two_column_devices(device):
    if device == "cpu":
        return ("cpu:0", "cpu:1")
    from ..backend import cupy_module
    count = cupy_module().cuda.runtime.getDeviceCount()
    return ("cuda:0", "cuda:1") if count >= 2 else ("cuda:0", "cuda:0")


def run_model(args):
    batch = args.batch or (128 if args.device == "cuda" else 32)
    device = args.device
    one = ("cuda:0",) if device == "cuda" else ("cpu",)
    configs = {"ours, one column": one, "ours, two columns": two_column_devices(device)}
    print("\n".join(machine_header(
        f"AlexNet training steps ({args.preset} preset), {device}, batch {batch}, float32; {args.rounds} "
        f"round(s) of {args.steps} steps of each network in turn, after two warm-up steps; medians")))
    steps, memories = {}, {}
    for label, devices in configs.items():
        steps[label], memories[label] = our_train_step(args.preset, batch, devices)
    reference = None if args.no_torch else torch_train_step(args.preset, batch, device)
    if reference is not None:
        steps["PyTorch, grouped convs"] = reference[0]
    samples = time_in_rounds(steps, args.steps, args.rounds)
    print("step = forward(train=True) + softmax cross-entropy + backward + SGD step (momentum 0.9, "
          "weight decay 5e-4)")
    print("held = parameters + gradients + velocities + the caches kept for backward")
    print("")
    print(f"{'network':<26} {'devices':<18} {'step ms':>9} {'images/s':>9} {'held MiB':>9}")
    for label, times in samples.items():
        seconds = statistics.median(times)
        devices = ",".join(configs.get(label, (device,)))
        held = memories[label]()["held_mib"] if label in memories else None
        print(f"{label:<26} {devices:<18} {1e3 * seconds:>9.1f} {batch / seconds:>9.2f} "
              f"{'-' if held is None else format(held, '.0f'):>9}")
    pool = memories["ours, one column"]()["gpu_pool_mib"]
    print(f"peak RSS of the process: {_peak_rss_mib():.0f} MiB" +
          ("" if pool is None else f"; GPU memory pool (one column): {pool:.0f} MiB"))
    if reference is None:
        print("PyTorch: not measured (not importable here" + (", or --no-torch" if args.no_torch else "") + ")")
        return 0
    print_model_ratio(samples, args.steps, device, reference[1])
    return 0


def print_model_ratio(samples, per_round, device, version):
    """Our one-column throughput over PyTorch's: from the medians, and in each round."""
    ours, theirs = samples["ours, one column"], samples["PyTorch, grouped convs"]
    ratio = statistics.median(theirs) / statistics.median(ours)
    rounds = [statistics.median(theirs[k:k + per_round]) / statistics.median(ours[k:k + per_round])
              for k in range(0, len(ours), per_round)]
    target = (f" (target >= {MODEL_RATIO_TARGET:.2f}: " + ("met" if ratio >= MODEL_RATIO_TARGET else "NOT met")
              + ")") if device == "cpu" else ""
    print(f"ours (one column) / PyTorch throughput: {ratio:.2f}{target}; rounds "
          f"{min(rounds):.2f}-{max(rounds):.2f}; {version}")

