"""Pictures of a run: learning curves, the conv1 filters (the paper's Figure 3), a confusion
matrix. matplotlib with the Agg backend (no display needed); every function writes a PNG.

Each PNG is written under a temporary name and renamed over the old one, so a full or
read-only disk leaves the previous picture (or none), never half a file; the ``OSError``
propagates (``checkpoint.writing`` turns it into a message naming the PNG)."""
import os

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, figure, path):
    """Write ``figure`` to ``path`` atomically and close it, also when the write fails."""
    temporary = os.path.join(os.path.dirname(os.path.abspath(path)),
                             f".tmp-{os.path.basename(path)}")
    try:
        figure.savefig(temporary, dpi=100, format="png")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    finally:
        plt.close(figure)


def plot_curves(history, path):
    """Loss and top-1 error per epoch, training and validation, from the metrics history
    (validation at the epochs that have it: --val-every skips some)."""
    plt = pyplot()
    epochs = [row["epoch"] for row in history]
    validated = [r for r in history if r.get("val_loss") is not None]
    val_epochs = [r["epoch"] for r in validated]
    figure, (loss_axes, error_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axes.plot(epochs, [r["train_loss"] for r in history], "o-", label="training")
    if validated:
        loss_axes.plot(val_epochs, [r["val_loss"] for r in validated], "s-", label="validation")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    error_axes.plot(epochs, [100 * r["train_top1_error"] for r in history], "o-", label="training top-1")
    if validated:
        error_axes.plot(val_epochs, [100 * r["val_top1_error"] for r in validated], "s-", label="validation top-1")
        error_axes.plot(val_epochs, [100 * r["val_top5_error"] for r in validated], "^--", label="validation top-5")
    error_axes.set(xlabel="epoch", ylabel="error (%)", title="Error")
    for axes in (loss_axes, error_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    save_figure(plt, figure, path)


def filter_grid(weight, columns_per_row=8, pad=1):
    """Tile filters (F, C, KH, KW) into one (H, W, C) image, each filter scaled to [0, 1]."""
    f, c, kh, kw = weight.shape
    rows = int(np.ceil(f / columns_per_row))
    grid = np.ones((rows * (kh + pad) + pad, columns_per_row * (kw + pad) + pad, c))
    for index in range(f):
        tile = weight[index].transpose(1, 2, 0).astype(np.float64)
        low, high = tile.min(), tile.max()
        tile = (tile - low) / (high - low) if high > low else np.zeros_like(tile)
        r, col = divmod(index, columns_per_row)
        top, left = pad + r * (kh + pad), pad + col * (kw + pad)
        grid[top:top + kh, left:left + kw] = tile
    return grid[..., 0] if c == 1 else grid


def plot_conv1_filters(weight, path, columns=2):
    """The conv1 kernels as colour images, one block per column (paper's Figure 3: the first
    column's filters come out mostly colour-agnostic, the second's colour-specific)."""
    plt = pyplot()
    weight = np.asarray(weight)
    blocks = np.split(weight, columns) if weight.shape[0] % columns == 0 else [weight]
    figure, axes = plt.subplots(len(blocks), 1, figsize=(8, 2.2 * len(blocks) * max(1, len(weight) // 48)))
    axes = np.atleast_1d(axes)
    for k, (block, ax) in enumerate(zip(blocks, axes)):
        grid = filter_grid(block, columns_per_row=min(16, len(block)))
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, interpolation="nearest")
        ax.set_title(f"conv1 kernels, column {k + 1} ({len(block)} filters)")
        ax.axis("off")
    figure.tight_layout()
    save_figure(plt, figure, path)


def plot_confusion(matrix, classes, path, title="Confusion matrix"):
    """Rows: true class; columns: predicted class; counts written in each cell."""
    plt = pyplot()
    matrix = np.asarray(matrix)
    size = max(5, 0.5 * len(classes) + 2)
    figure, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, labels=classes, rotation=60, ha="right")
    ax.set_yticks(ticks, labels=classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if len(classes) <= 30:
        high = matrix.max() if matrix.size else 0
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > high / 2 else "black")
    figure.tight_layout()
    save_figure(plt, figure, path)
