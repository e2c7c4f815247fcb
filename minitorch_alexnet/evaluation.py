"""Evaluation: top-1 and top-5 error, the ten-view average, the confusion matrix.

The trainer validates with ``evaluate`` after every epoch (centre crops) and once more at the
end with ``evaluate_views`` (the centre crops, and from the same pass the ten views with
``--ten-crop``, the centre and its mirror image with ``--flip-test``);
``python -m minitorch_alexnet.evaluate`` runs the same function on a saved run and draws its
confusion matrix.

Ten views (section 4.1 of the paper): the four corner crops, the centre crop and the mirror
image of each. The network's softmax outputs over the ten are averaged, and the average is
scored like the output of one crop. Two views (``mirror``): the centre crop and its mirror
image, the same average at a fifth of the cost; on images stored only a pixel or two larger
than the crop, the corners add little that the centre does not see.
"""
import numpy as np

from . import functional as F
from .backend import device_context, to_device, to_numpy
from .data import DataLoader

VIEWS = 10
CENTRE = 4         # the centre crop's index among the ten views (data.ten_crop's order)


def top_k_errors(logits, labels, ks=(1, 5)):
    """For each k in ``ks``, the number of samples whose label is not among their k highest
    scores. ``logits``: (batch, classes) on any device; ``labels``: (batch,) integers."""
    logits, labels = to_numpy(logits), to_numpy(labels)
    order = np.argsort(-logits, axis=1)
    errors = []
    for k in ks:
        hit = (order[:, :min(k, logits.shape[1])] == labels[:, None]).any(axis=1)
        errors.append(int((~hit).sum()))
    return errors


def evaluation_loader(dataset, preprocess, images_per_batch, *, ten_crop=False, workers=2,
                      seed=0, max_bad_fraction=0.01, part=(0, 1)):
    """A ``DataLoader`` of test-time views of ``dataset`` in a fixed order: the centre crop of
    each image, or with ``ten_crop`` its ten views as (batch, 10, C, H, W), a tenth as many
    images per batch so that a batch holds about ``images_per_batch`` crops. ``part``:
    (rank, size), this process's slice of every batch (``distributed.py``)."""
    batch_size = max(1, images_per_batch // (VIEWS if ten_crop else 1))
    return DataLoader(dataset, batch_size, seed=seed, transform=preprocess, train=False,
                      ten_crop=ten_crop, num_workers=workers, max_bad_fraction=max_bad_fraction,
                      part=part)


def evaluate(model, loader, device, ten_crop=False, confusion=False, comm=None, mirror=False):
    """Score ``model`` over every batch of ``loader`` (from ``evaluation_loader``) on ``device``.

    Returns a dict: ``loss`` (mean softmax cross-entropy), ``top1_error`` and ``top5_error``
    (fractions), ``count`` (images), and with ``confusion`` also ``confusion``, a
    (classes, classes) count matrix, rows the true class and columns the predicted one.
    With ``ten_crop`` the loader gives ten views per image and their softmax is averaged; with
    ``mirror`` (centre crops) each crop's softmax is averaged with its mirror image's.
    ``comm``: the loader holds this process's part of the set; the sums are summed over the
    processes (not with ``confusion``)."""
    mirror = mirror and not ten_crop                   # (the ten views hold the mirror images)
    every_view = range(VIEWS if ten_crop else 1 + mirror)
    return evaluate_views(model, loader, device, {"all": every_view}, mirror=mirror,
                          confusion=confusion, comm=comm)["all"]


def evaluate_views(model, loader, device, view_sets, mirror=False, confusion=False, comm=None):
    """Several test-time averages from one pass over ``loader``: each view of each image goes
    through the network once, and every named set of views is scored as ``evaluate`` scores
    its views. ``view_sets`` maps a name to view indices: of a ten-view loader 0-3 the
    corners, ``CENTRE`` the centre crop, 5-9 the same five mirrored; of centre crops with
    ``mirror`` 0 the crop and 1 its mirror image. Returns name -> ``evaluate``'s dict.

    The final report needs the centre crop, the centre with its mirror and all ten: the first
    two are views of the third, so one pass of ten views gives all three (ten passes over the
    set instead of thirteen)."""
    sums = {name: {"loss": 0.0, "top1": 0, "top5": 0} for name in view_sets}
    matrices = {name: np.zeros((model.num_classes, model.num_classes), np.int64)
                for name in view_sets} if confusion else None
    count = 0
    with device_context(device):
        for x, labels in loader.epoch(0):
            logits = view_logits(model, x, device, mirror)
            for name, views in view_sets.items():
                wrong1, wrong5, loss, scores = score_views(logits[:, list(views)], labels)
                total = sums[name]
                total["loss"] += loss * len(labels)
                total["top1"], total["top5"] = total["top1"] + wrong1, total["top5"] + wrong5
                if confusion:
                    np.add.at(matrices[name], (labels, scores.argmax(axis=1)), 1)
            count += len(labels)
    results = {}
    for name, total in sums.items():
        loss, top1, top5, images = total["loss"], total["top1"], total["top5"], count
        if comm is not None:
            loss, *counts = comm.sum_numbers([loss, top1, top5, images])
            top1, top5, images = (int(n) for n in counts)
        if images == 0:
            raise ValueError("the evaluation set is empty")
        results[name] = {"loss": loss / images, "top1_error": top1 / images,
                         "top5_error": top5 / images, "count": images}
        if confusion:
            results[name]["confusion"] = matrices[name]
    return results


def view_logits(model, x, device, mirror=False):
    """The logits of every view of a batch as a (batch, views, classes) NumPy array. ``x``:
    (B, C, H, W) crops, one view each, or two with ``mirror`` (the crop, then the crop with
    its columns reversed); or (B, views, C, H, W), the ten views of each image."""
    x = x.astype(model.dtype, copy=False)          # the loader's float32, or the model's float64
    if mirror:
        # x (B, C, H, W) -> (B, 2, C, H, W): each crop, then the crop with its columns reversed
        x = np.stack([x, x[..., ::-1]], axis=1)
    if x.ndim == 4:
        x = x[:, None]                             # one view per image
    b, views = x.shape[:2]
    logits = model.forward(to_device(x.reshape(b * views, *x.shape[2:]), device), train=False)
    return to_numpy(logits).reshape(b, views, -1)


def score_views(logits, labels):
    """One batch scored over the views in ``logits`` (batch, views, classes): (top-1 misses,
    top-5 misses, mean loss, scores) with the scores a (batch, classes) array whose largest
    entry per row is the prediction. One view: the scores are its logits, the loss the softmax
    cross-entropy. Several: their softmax outputs are averaged, the scores are the log of the
    average and the loss is minus the log of its entry for the label."""
    labels = to_numpy(labels)
    if logits.shape[1] == 1:
        scores = logits[:, 0]
        loss = float(F.softmax_cross_entropy(scores, labels)[0])
    else:
        b = logits.shape[0]
        probabilities = F.softmax(logits.reshape(-1, logits.shape[2])).reshape(logits.shape).mean(axis=1)
        loss = float(-np.mean(np.log(probabilities[np.arange(b), labels] + 1e-12)))
        scores = np.log(probabilities + 1e-12)
    wrong1, wrong5 = top_k_errors(scores, labels)
    return wrong1, wrong5, loss, scores


def evaluate_batch(model, x, labels, device, ten_crop, mirror=False):
    """One batch: (top-1 misses, top-5 misses, mean loss, scores) with the scores a
    (batch, classes) NumPy array whose largest entry per row is the prediction (the logits,
    or with several views the log of their mean softmax)."""
    return score_views(view_logits(model, x, device, mirror and not ten_crop), labels)
