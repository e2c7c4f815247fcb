"""What a run tells its user: the metrics.jsonl row of an epoch, its printed line, and the
final validation (``trainer.py`` calls these with itself)."""
from .evaluation import CENTRE, VIEWS, evaluate, evaluate_views, evaluation_loader


def epoch_metrics(trainer, validation, bad_image_count):
    """The metrics.jsonl row of the epoch just trained: its training sums, ``validation``
    (a result of ``evaluate``; None for an epoch --val-every skips: its val_* are None), its
    last learning rate and its unreadable images."""
    sums = trainer.epoch_sums
    validation = validation or {"loss": None, "top1_error": None, "top5_error": None}
    return {
        "epoch": trainer.epoch + 1,
        "train_loss": sums["loss"] / max(1, sums["seen"]),
        "train_top1_error": 1.0 - sums["correct"] / max(1, sums["seen"]),
        "val_loss": validation["loss"], "val_top1_error": validation["top1_error"],
        "val_top5_error": validation["top5_error"],
        "lr": trainer.schedule.lr_for_step(trainer.epoch, max(0, trainer.batches_done - 1)),
        "bad_images": bad_image_count,
        "seconds": sums["seconds"],
        "images_per_second": sums["seen"] / max(1e-9, sums["seconds"]),
    }


def epoch_validation(trainer):
    """The validation of the epoch just trained (a result of ``evaluate``), or None for an
    epoch that --val-every skips: every N-th epoch is validated, and the last."""
    number, config = trainer.epoch + 1, trainer.config
    if number % config.val_every and number < config.epochs:
        return None
    return evaluate(trainer.model, trainer.val_loader, trainer.device, comm=trainer.comm)


def log_epoch(trainer, row, bad_images):
    """Print an epoch's line of metrics, and the first unreadable images if there were any."""
    validation = "" if row["val_loss"] is None else (
        f"val loss {row['val_loss']:.4f}, val top-1 error {100 * row['val_top1_error']:.1f}%, "
        f"top-5 error {100 * row['val_top5_error']:.1f}%, ")
    trainer.log(f"epoch {row['epoch']}/{trainer.config.epochs}: train loss {row['train_loss']:.4f}, "
                f"train error {100 * row['train_top1_error']:.1f}%, {validation}lr {row['lr']:.3g}, "
                f"{row['images_per_second']:.0f} img/s, {row['seconds']:.0f} s")
    if bad_images:
        shown = ", ".join(f"{path} ({reason})" for path, reason in bad_images[:3])
        trainer.log(f"  skipped {len(bad_images)} unreadable images this epoch: {shown}"
                    + (" ..." if len(bad_images) > 3 else ""))


def final_report(trainer):
    """Validation with the final weights: the centre crop, with --ten-crop the 10-view
    average, with --flip-test the centre crop's with its mirror image. The centre crop and its
    mirror are two of the ten views, so with --ten-crop one pass of ten views scores all three
    (``evaluate_views``); otherwise one pass of the centre crops, with their mirror images
    alongside for --flip-test."""
    c = trainer.config
    if c.ten_crop:
        loader = evaluation_loader(trainer.val_set, trainer.preprocess, c.batch_size, ten_crop=True,
                                   workers=c.workers, seed=c.seed, part=trainer.part)
        view_sets = {"centre": [CENTRE], "ten_crop": range(VIEWS)}
        mirror_views = [CENTRE, CENTRE + VIEWS // 2]    # the centre crop's mirror is 5 views on
    else:
        loader, view_sets, mirror_views = trainer.val_loader, {"centre": [0]}, [0, 1]
    if c.flip_test:
        view_sets["flip_test"] = mirror_views
    scores = evaluate_views(trainer.model, loader, trainer.device, view_sets,
                            mirror=c.flip_test and not c.ten_crop, comm=trainer.comm)
    result = scores.pop("centre")
    result.update(scores)
    trainer.log(f"final validation accuracy: {_accuracies(result)} ({result['count']} images, "
                f"centre crop)")
    if c.ten_crop:
        trainer.log(f"final validation accuracy with 10 views: {_accuracies(result['ten_crop'])}")
    if c.flip_test:
        trainer.log(f"final validation accuracy with the mirror images: "
                    f"{_accuracies(result['flip_test'])} (2 views)")
    return result


def _accuracies(result):
    return (f"{100 * (1 - result['top1_error']):.2f}% top-1, "
            f"{100 * (1 - result['top5_error']):.2f}% top-5")
