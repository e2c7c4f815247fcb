"""Evaluation: top-1 and top-5 error, the ten-view average, the confusion matrix.

The trainer validates with ``evaluate`` after every epoch (centre crops) and once more at the
end (also over the ten views with ``--ten-crop``, over two with ``--flip-test``);
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
    total_loss, top1, top5, count = 0.0, 0, 0, 0
    matrix = np.zeros((model.num_classes, model.num_classes), np.int64) if confusion else None
    with device_context(device):
        for x, labels in loader.epoch(0):
            wrong1, wrong5, loss, scores = evaluate_batch(model, x, labels, device, ten_crop,
                                                          mirror)
            total_loss += loss * len(labels)
            top1, top5, count = top1 + wrong1, top5 + wrong5, count + len(labels)
            if confusion:
                np.add.at(matrix, (labels, scores.argmax(axis=1)), 1)
    if comm is not None:
        total_loss, *counts = comm.sum_numbers([total_loss, top1, top5, count])
        top1, top5, count = (int(n) for n in counts)
    if count == 0:
        raise ValueError("the evaluation set is empty")
    result = {"loss": total_loss / count, "top1_error": top1 / count, "top5_error": top5 / count,
              "count": count}
    if confusion:
        result["confusion"] = matrix
    return result


def evaluate_batch(model, x, labels, device, ten_crop, mirror=False):
    """One batch: (top-1 misses, top-5 misses, mean loss, scores) with the scores a
    (batch, classes) NumPy array whose largest entry per row is the prediction (the logits,
    or with several views the log of their mean softmax)."""
    x = x.astype(model.dtype, copy=False)          # the loader's float32, or the model's float64
    if mirror and not ten_crop:                    # (the ten views hold the mirror images already)
        # x (B, C, H, W) -> (B, 2, C, H, W): each crop, then the crop with its columns reversed
        x = np.stack([x, x[..., ::-1]], axis=1)
    if x.ndim == 5:                                # x (B, views, C, H, W): average the views
        b, views = x.shape[:2]
        logits = model.forward(to_device(x.reshape(b * views, *x.shape[2:]), device), train=False)
        probabilities = to_numpy(F.softmax(logits)).reshape(b, views, -1).mean(axis=1)
        loss = float(-np.mean(np.log(probabilities[np.arange(b), labels] + 1e-12)))
        scores = np.log(probabilities + 1e-12)
    else:
        logits = model.forward(to_device(x, device), train=False)
        loss = float(F.softmax_cross_entropy(logits, to_device(labels, device))[0])
        scores = to_numpy(logits)
    wrong1, wrong5 = top_k_errors(scores, labels)
    return wrong1, wrong5, loss, scores
