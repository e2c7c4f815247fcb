"""What a run tells its user: the metrics.jsonl row of an epoch, its printed line, and the
final validation (``trainer.py`` calls these with itself)."""
from .evaluation import evaluate, evaluation_loader


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
    """Validation with the final weights (and the 10-view average with --ten-crop, the
    centre crop's with its mirror image with --flip-test)."""
    result = evaluate(trainer.model, trainer.val_loader, trainer.device, comm=trainer.comm)
    lines = [f"final validation accuracy: {100 * (1 - result['top1_error']):.2f}% top-1, "
             f"{100 * (1 - result['top5_error']):.2f}% top-5 ({result['count']} images, centre crop)"]
    c = trainer.config
    if c.ten_crop:
        ten = evaluation_loader(trainer.val_set, trainer.preprocess, c.batch_size, ten_crop=True,
                                workers=c.workers, seed=c.seed, part=trainer.part)
        r10 = evaluate(trainer.model, ten, trainer.device, ten_crop=True, comm=trainer.comm)
        lines.append(f"final validation accuracy with 10 views: {100 * (1 - r10['top1_error']):.2f}% "
                     f"top-1, {100 * (1 - r10['top5_error']):.2f}% top-5")
        result["ten_crop"] = r10
    if c.flip_test:
        both = evaluate(trainer.model, trainer.val_loader, trainer.device, comm=trainer.comm,
                        mirror=True)
        lines.append(f"final validation accuracy with the mirror images: "
                     f"{100 * (1 - both['top1_error']):.2f}% top-1, "
                     f"{100 * (1 - both['top5_error']):.2f}% top-5 (2 views)")
        result["flip_test"] = both
    for line in lines:
        trainer.log(line)
    return result
