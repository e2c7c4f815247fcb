"""``python -m minitorch_alexnet.figures``: two figures of the AlexNet paper (Krizhevsky,
Sutskever and Hinton, 2012), drawn from a trained checkpoint.

``filters``: Figure 3, the kernels of the first convolutional layer, one block per column.
The paper's 96 kernels of 11 x 11 x 3 split into two groups: the 48 of column 1 came out
largely colour-agnostic (oriented edges, frequencies), the 48 of column 2 largely
colour-specific (colour blobs), in every run, whatever the random initialisation; only the
connectivity of the two columns (each conv2 sees its own column) separates them.

``neighbours``: Figure 4 (right). Each row starts with a test image (the query), followed by
the training images whose fc7 activations (the last hidden layer, 4096 units in the paper,
after its ReLU, without dropout) are nearest to the query's in Euclidean distance. The paper's
claim: images close in that feature space are close *semantically*, even when their pixels
are far apart (poses, colours, backgrounds differ), so the network has learnt features that
generalise beyond pixel similarity. Besides the picture, the command measures it: the
*nearest-neighbour accuracy* is the share, over every validation image (not only the rows
shown), of its k nearest training images that have its class; the *1-NN accuracy* the share of
validation images whose single nearest training image has their class.

Which queries are shown: the first validation image of each class, in label order, then the
second of each class, and so on, until ``--queries`` are chosen; with ``--seed S`` each
class's members are taken in a seeded random order instead of the data set's order.

Examples::

    python -m minitorch_alexnet.figures filters runs/builtin-small-20260101-120000
    python -m minitorch_alexnet.figures neighbours runs/fmnist/checkpoints/last.npz \\
        --limit-train 10000 --queries 8 --neighbours 6

CHECKPOINT is a checkpoint file or a run directory (its latest good checkpoint). The PNGs go
to the run directory unless ``--out`` says otherwise (``filters.png``; ``neighbours.png`` and
``neighbours.json`` with the numbers). Exit status: 0 drawn; 1 a file cannot be written; 2 an
unusable checkpoint or data set (missing, corrupt, other classes), in one line on stderr.
"""
import argparse
import json
import os
import sys

import numpy as np

from .backend import check_device, device_context, keep_freed_memory, to_device, to_numpy
from .checkpoint import CheckpointError, WriteError, write_text_atomically, writing
from .data import DATASETS, DataError, build_datasets
from .evaluate import check_same_classes
from .evaluation import evaluation_loader
from .plots import plot_conv1_filters, pyplot, save_figure
from .run_state import (MODEL, arrays_under, load_model, load_run_state, preprocess_from_checkpoint,
                        run_directory)

MATRIX_ELEMENTS = 2**23    # distances computed at a time: 8M float64 = 64 MB per chunk


def positive(text):
    """An argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minitorch_alexnet.figures",
        description="Figures 3 and 4 of the AlexNet paper from a checkpoint.")
    commands = parser.add_subparsers(dest="command", required=True)
    filters = commands.add_parser("filters",
                                  help="Figure 3: the conv1 kernels, one block per column")
    filters.add_argument("checkpoint", help="a checkpoint .npz or a run directory")
    filters.add_argument("--out", metavar="PATH",
                         help="PNG path (default: filters.png in the run directory)")
    near = commands.add_parser("neighbours", help="Figure 4: the training images nearest in fc7")
    add = near.add_argument
    add("checkpoint", help="a checkpoint .npz or a run directory")
    add("--dataset", choices=DATASETS, help="default: the training run's")
    add("--data-dir", metavar="DIR", help="default: the training run's")
    add("--queries", metavar="N", type=positive, default=8, help="rows of the figure (default 8)")
    add("--neighbours", metavar="K", type=positive, default=6,
        help="training images per row, and the k of the accuracy (default 6)")
    add("--limit-train", metavar="N", type=positive, help="search only the first N training images")
    add("--limit-val", metavar="N", type=positive, help="use only the first N validation images")
    add("--seed", metavar="S", type=int,
        help="pick each class's shown query at random with this seed (default: the first of "
             "each class)")
    add("--out", metavar="PATH", help="PNG path (default: neighbours.png in the run directory); "
                                      "the numbers go beside it as .json")
    add("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    add("--batch-size", metavar="N", type=positive, default=100,
        help="images per forward pass (default 100)")
    add("--workers", metavar="N", type=int, default=2,
        help="threads that prepare the batches (default 2)")
    return parser


# ---- Figure 3 ---------------------------------------------------------------------------------

def grey_share(weight):
    """For each kernel w (C, KH, KW): the share of its energy that is colourless.

    Split w into its mean over the channels, g = (1/C) sum_c w[c] (the same pattern in every
    channel: it responds to brightness, not colour), and the rest, w - g. The two parts are
    orthogonal, so ||w||^2 = C ||g||^2 + ||w - g||^2 and the grey share C ||g||^2 / ||w||^2
    lies in [0, 1]: 1 for a colour-agnostic kernel, near 0 for one that contrasts colours.
    Random kernels with independent entries average 1 / C (1/3 in colour)."""
    weight = np.asarray(weight, dtype=np.float64)
    channels = weight.shape[1]
    grey = weight.mean(axis=1)
    energy = (weight ** 2).sum(axis=(1, 2, 3))
    return channels * (grey ** 2).sum(axis=(1, 2)) / np.maximum(energy, 1e-300)


def draw_filters(saved, out):
    """Plot the checkpoint's conv1 kernels to ``out``; returns how many were drawn and each
    column's mean grey share (the paper: column 1 colour-agnostic, column 2 colour-specific),
    None for grey images (one channel: every kernel is grey)."""
    weight = arrays_under(saved.arrays, MODEL)["conv1.weight"]     # (F, C, KH, KW)
    # checkpoints written before the variants existed hold the paper's two columns
    columns = saved.meta["model"].get("variant", {}).get("columns", 2)
    plot_conv1_filters(weight, out, columns=columns)
    if weight.shape[1] == 1:
        return len(weight), None
    return len(weight), [float(grey_share(block).mean()) for block in np.split(weight, columns)]


# ---- fc7 features and their nearest neighbours ---------------------------------------------------

def fc7_features(model, loader, device):
    """The fc7 activations of every image the loader yields, in its order:
    ``(features (N, D) float64, labels (N,), indices (N,))``, indices into its data set (an
    unreadable image is skipped, so position and data-set index may differ). Memory: 8 bytes
    per unit per image, 245 MB for 60,000 images of the small preset's 512 fc7 units
    (``--limit-train`` keeps fewer; ``nearest_neighbours`` says why float64)."""
    features, labels, indices = [], [], []
    with device_context(device):
        for batch in loader.batches(0):
            if not len(batch.labels):
                continue
            x = to_device(batch.x.astype(model.dtype, copy=False), device)
            features.append(to_numpy(model.forward(x, train=False, until="fc7")).astype(np.float64))
            labels.append(batch.labels)
            indices.append(batch.indices)
    if not features:
        raise ValueError(f"no image of {loader.dataset!r} could be read")
    return np.concatenate(features), np.concatenate(labels), np.concatenate(indices)


def nearest_neighbours(queries, references, k):
    """The k references nearest to each query in Euclidean distance: ``(indices (Q, k),
    squared distances (Q, k))``, nearest first, ties by the lower index.

    The Q x R matrix of distances would not fit for 10,000 x 60,000, so it is made a few rows
    of queries at a time (at most MATRIX_ELEMENTS numbers), with one matrix product per chunk:

        |a - b|^2 = (a - b).(a - b) = |a|^2 + |b|^2 - 2 a.b

    ``|b|^2`` of every reference once, ``a.b`` for a whole chunk as ``A @ B.T``. The
    subtraction cancels (two large numbers, a small difference): in float32 two neighbours whose
    distances differ by less than about 1e-7 |a|^2 could swap, so the features are float64, and
    rounding can still leave a distance a little below 0, hence the clip."""
    queries, references = np.asarray(queries, np.float64), np.asarray(references, np.float64)
    if not 1 <= k <= len(references):
        raise ValueError(f"--neighbours {k} needs at least {k} training images, "
                         f"there are {len(references)}")
    squared_refs = np.einsum("rd,rd->r", references, references)          # |b|^2, (R,)
    rows = max(1, MATRIX_ELEMENTS // len(references))
    found = np.empty((len(queries), k), np.int64)
    distances = np.empty((len(queries), k))
    for start in range(0, len(queries), rows):
        a = queries[start:start + rows]                                    # (q, D)
        d = np.einsum("qd,qd->q", a, a)[:, None] + squared_refs[None, :] - 2.0 * (a @ references.T)
        np.maximum(d, 0.0, out=d)                                          # (q, R)
        # argpartition puts the k smallest of each row in its first k places, unordered,
        # in O(R) instead of a full O(R log R) sort; then sort those k by (distance, index).
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        near_d = np.take_along_axis(d, nearest, axis=1)
        order = np.lexsort((nearest, near_d), axis=1)                      # last key first
        found[start:start + len(a)] = np.take_along_axis(nearest, order, axis=1)
        distances[start:start + len(a)] = np.take_along_axis(near_d, order, axis=1)
    return found, distances


def neighbour_accuracy(query_labels, neighbour_labels):
    """``(nn accuracy, 1-NN accuracy, matches, first matches)``: the share of all (query,
    neighbour) pairs of the same class, and of queries whose nearest neighbour (column 0)
    has their class. ``neighbour_labels``: (Q, k), ``query_labels``: (Q,)."""
    same = neighbour_labels == np.asarray(query_labels)[:, None]          # (Q, k) bool
    matches, first = int(same.sum()), int(same[:, 0].sum())
    return matches / same.size, first / len(same), matches, first


def choose_queries(labels, count, seed=None):
    """Positions of the queries to show: the first of each class (label order), then the second
    of each, ... until ``count``; with ``seed``, each class's members in a seeded random order."""
    labels = np.asarray(labels)
    order = (np.arange(len(labels)) if seed is None
             else np.random.default_rng(seed).permutation(len(labels)))
    members = [order[labels[order] == c] for c in np.unique(labels)]       # per class, in order
    chosen = []
    for rank in range(max(len(m) for m in members)):                       # rank-th of each class
        chosen += [m[rank] for m in members if rank < len(m)]
    return np.asarray(chosen[:count], np.int64)


# ---- Figure 4: the data, the features, the picture --------------------------------------------

def neighbour_datasets(saved, args, stored_size):
    """``(name, training set, validation set)``: the training run's data set, folders and split
    unless the flags name others (as ``evaluate.validation_set`` chooses them), its images
    stored at ``stored_size``. Raises ValueError if its classes are not the checkpoint's."""
    config = saved.config
    dataset = args.dataset or config["dataset"]
    same = dataset == config["dataset"]
    data_dir = args.data_dir or (config["data_dir"] if same else None)
    val_dir = config["val_dir"] if same else None
    train_set, val_set = build_datasets(dataset, data_dir, val_dir, seed=config["seed"],
                                        limit_train=args.limit_train, limit_val=args.limit_val,
                                        val_fraction=config["val_fraction"], image_size=stored_size,
                                        crop_padding=config.get("crop_padding") or 0)
    check_same_classes(saved, list(train_set.classes), f"the {dataset} data set"
                       + (f" in {val_dir or data_dir}" if (val_dir or data_dir) else ""))
    return dataset, train_set, val_set


def find_neighbours(saved, args):
    """Everything Figure 4 needs: ``(numbers, rows)``, the numbers as written to the JSON and
    one row per shown query, ``(query image, label, [(neighbour image, label), ...])``, the
    images as stored (uint8 (H, W, C), before the mean is subtracted)."""
    check_device(args.device)
    model = load_model(saved, args.device)
    preprocess = preprocess_from_checkpoint(saved)       # the run's mean image, centre crop
    dataset, train_set, val_set = neighbour_datasets(saved, args, preprocess.stored_size)
    (train_f, train_y, train_i), (val_f, val_y, val_i) = (
        fc7_features(model, evaluation_loader(data, preprocess, args.batch_size,
                                              workers=args.workers), args.device)
        for data in (train_set, val_set))
    found, _ = nearest_neighbours(val_f, train_f, args.neighbours)      # positions in train_f
    nn_accuracy, one_nn, matches, first = neighbour_accuracy(val_y, train_y[found])
    shown = choose_queries(val_y, args.queries, args.seed)               # positions in val_f
    rows = [(val_set.load(int(val_i[q]))[0], int(val_y[q]),
             [(train_set.load(int(train_i[j]))[0], int(train_y[j])) for j in found[q]])
            for q in shown]
    numbers = {"checkpoint": saved.path, "dataset": dataset, "queries": len(val_y),
               "training_images": len(train_y), "k": args.neighbours,
               "nn_accuracy": nn_accuracy, "nn_matches": matches,
               "one_nn_accuracy": one_nn, "one_nn_matches": first,
               "shown_queries": [int(val_i[q]) for q in shown],
               "shown_neighbours": [[int(train_i[j]) for j in found[q]] for q in shown]}
    return numbers, rows


def _show(ax, image, title, colour, frame=False):
    """One stored image as a person sees it (0..255, grey for one channel), titled."""
    grey = image.shape[-1] == 1
    ax.imshow(image[..., 0] if grey else image, cmap="gray" if grey else None, vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_title(title, color=colour, fontsize=7, fontweight="bold" if frame else "normal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():             # a thick frame marks the query
        spine.set_visible(frame)
        spine.set_color(colour)
        spine.set_linewidth(4)


def plot_neighbours(rows, classes, path, title):
    """One row per query: the query (framed, blue), then its neighbours, nearest first, each
    titled with its class, in red when that is not the query's class."""
    plt = pyplot()
    k = max(len(found) for _, _, found in rows)
    figure, axes = plt.subplots(len(rows), k + 1, figsize=(1.5 * (k + 1), 1.6 * len(rows) + 0.6),
                                squeeze=False)
    for (query, label, found), row in zip(rows, axes):
        _show(row[0], query, f"query: {classes[label]}", "tab:blue", frame=True)
        for ax, (image, other) in zip(row[1:], found):
            _show(ax, image, classes[other], "black" if other == label else "red")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_figure(plt, figure, path)


# ---- the command line ---------------------------------------------------------------------------

def report(numbers):
    """Print what ``find_neighbours`` measured."""
    k, queries = numbers["k"], numbers["queries"]
    print(f"{numbers['checkpoint']}: fc7 of {queries} validation and "
          f"{numbers['training_images']} training images of {numbers['dataset']} (centre crop)")
    print(f"nearest-neighbour accuracy (k={k}): {100 * numbers['nn_accuracy']:.2f}% "
          f"({numbers['nn_matches']} of {queries * k} neighbours have the query's class)")
    print(f"1-NN accuracy: {100 * numbers['one_nn_accuracy']:.2f}% "
          f"({numbers['one_nn_matches']} of {queries} nearest neighbours have the query's class)")


def failed(error, status):
    """Print the one ``error: ...`` line; return the exit status."""
    print(f"error: {error}", file=sys.stderr)
    return status


def filters_main(args):
    try:
        saved = load_run_state(args.checkpoint)
    except (CheckpointError, FileNotFoundError) as error:
        return failed(error, 2)
    out = args.out or os.path.join(run_directory(saved.path), "filters.png")
    try:
        with writing(out):
            count, shares = draw_filters(saved, out)
    except WriteError as error:                     # a full or read-only disk, a missing folder
        return failed(error, 1)
    print(f"{count} conv1 kernels written to {out}")
    if shares is not None:
        print("grey share of the kernels' energy (1: colour-agnostic; random kernels: 1/3): "
              + ", ".join(f"column {k + 1} {share:.2f}" for k, share in enumerate(shares)))
    return 0


def neighbours_main(args):
    try:
        saved = load_run_state(args.checkpoint)
        numbers, rows = find_neighbours(saved, args)
    except (DataError, CheckpointError, ValueError, FileNotFoundError) as error:
        return failed(error, 2)
    report(numbers)
    out = args.out or os.path.join(run_directory(saved.path), "neighbours.png")
    numbers_path = os.path.splitext(out)[0] + ".json"
    title = (f"{numbers['dataset']}: nearest training images in fc7 (red: another class); "
             f"{numbers['k']}-NN accuracy {100 * numbers['nn_accuracy']:.1f}%")
    try:
        with writing(out):
            plot_neighbours(rows, saved.classes, out, title)
        write_text_atomically(numbers_path, json.dumps(numbers, indent=2) + "\n")
    except WriteError as error:
        return failed(error, 1)
    print(f"neighbours figure written to {out}, numbers to {numbers_path}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    keep_freed_memory()          # reuse the pages of freed arrays (backend.py says why)
    return filters_main(args) if args.command == "filters" else neighbours_main(args)


if __name__ == "__main__":
    sys.exit(main())
