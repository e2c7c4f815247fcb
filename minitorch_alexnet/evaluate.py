"""``python -m minitorch_alexnet.evaluate CHECKPOINT --dataset ...``: top-1 / top-5 error of a
trained model and a confusion-matrix PNG.

CHECKPOINT is a checkpoint file or a run directory (its latest good checkpoint). The data set
defaults to the one the model was trained on; its validation split is evaluated with the
training run's preprocessing (mean image, crop size)::

    python -m minitorch_alexnet.evaluate runs/builtin-small-20260101-120000
    python -m minitorch_alexnet.evaluate runs/fmnist/checkpoints/last.npz --dataset fashion-mnist --ten-crop

Images of another size than the run's are scaled to its stored size first, so only the
class names (and their order) must agree with the checkpoint's. Exit
status: 0 evaluated; 1 the confusion matrix cannot be written; 2 an unusable checkpoint
(missing, corrupt, another format version) or data set (missing, other classes), with one
line naming the file and what is wrong.
"""
import argparse
import os
import sys

from .backend import check_device, keep_freed_memory
from .checkpoint import CheckpointError, WriteError, writing
from .data import DATASETS, DataError, build_datasets
from .evaluation import evaluate, evaluation_loader
from .run_state import load_model, load_run_state, preprocess_from_checkpoint, run_directory


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m minitorch_alexnet.evaluate",
                                     description="Evaluate a trained AlexNet checkpoint.")
    parser.add_argument("checkpoint", help="a checkpoint .npz or a run directory")
    parser.add_argument("--dataset", choices=DATASETS, help="default: the training run's")
    parser.add_argument("--data-dir", help="default: the training run's")
    parser.add_argument("--val-dir", help="default: the training run's")
    parser.add_argument("--limit-val", type=int, help="evaluate only the first N images")
    parser.add_argument("--ten-crop", action="store_true", help="average the softmax over 10 views")
    parser.add_argument("--flip-test", action="store_true",
                        help="average the softmax of each centre crop and its mirror image")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--confusion", help="confusion-matrix PNG path (default: next to the checkpoint)")
    return parser


def validation_set(saved, args, stored_size):
    """``(data set name, validation split)`` to evaluate the ``SavedRun`` on: the training
    run's data set, folders and hold-out split unless the flags name others, its images stored
    at ``stored_size``. Raises ValueError if its class names are not the run's."""
    config = saved.config
    dataset = args.dataset or config["dataset"]
    same = dataset == config["dataset"]
    data_dir = args.data_dir or (config["data_dir"] if same else None)
    val_dir = args.val_dir or (config["val_dir"] if same else None)
    _, val_set = build_datasets(dataset, data_dir, val_dir, seed=config["seed"],
                                limit_val=args.limit_val, val_fraction=config["val_fraction"],
                                image_size=stored_size, crop_padding=config.get("crop_padding") or 0)
    check_same_classes(saved, list(val_set.classes), f"the {dataset} data set"
                       + (f" in {val_dir or data_dir}" if (val_dir or data_dir) else ""))
    return dataset, val_set


def check_same_classes(saved, classes, where):
    """Raise ValueError, in one line naming the checkpoint and the data, unless the data set's
    ``classes`` are the checkpoint's, in the same order (label k must mean the same class)."""
    if classes == saved.classes:
        return
    def shown(names):
        return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    if sorted(classes) == sorted(saved.classes):
        problem = "has the same classes in another label order"
    else:
        missing = [c for c in saved.classes if c not in classes]
        problem = (f"has {len(classes)} classes ({shown(classes)})"
                   + (f" and lacks {shown(missing)}" if missing else ""))
    raise ValueError(f"{saved.path} was trained on {len(saved.classes)} classes "
                     f"({shown(saved.classes)}), but {where} {problem}")


def confusion_path(args, checkpoint_path):
    """Where the confusion-matrix PNG goes: ``--confusion``, or the run directory."""
    return args.confusion or os.path.join(run_directory(checkpoint_path), "confusion.png")


def main(argv=None):
    args = build_parser().parse_args(argv)
    keep_freed_memory()          # reuse the pages of freed arrays (backend.py says why)
    try:
        saved = load_run_state(args.checkpoint)
        check_device(args.device)
        model = load_model(saved, args.device)
        preprocess = preprocess_from_checkpoint(saved)
        dataset, val_set = validation_set(saved, args, preprocess.stored_size)
        loader = evaluation_loader(val_set, preprocess, args.batch_size, ten_crop=args.ten_crop,
                                   workers=args.workers)
        result = evaluate(model, loader, args.device, ten_crop=args.ten_crop, confusion=True,
                          mirror=args.flip_test)
    except (DataError, CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    views = ("10 views" if args.ten_crop else
             "centre crop and its mirror image" if args.flip_test else "centre crop")
    print(f"{saved.path}: {result['count']} images of {dataset} ({views})")
    print(f"top-1 error {100 * result['top1_error']:.2f}%  (accuracy {100 * (1 - result['top1_error']):.2f}%)")
    print(f"top-5 error {100 * result['top5_error']:.2f}%  (accuracy {100 * (1 - result['top5_error']):.2f}%)")
    print(f"mean loss {result['loss']:.4f}")
    from .plots import plot_confusion

    out = confusion_path(args, saved.path)
    try:
        with writing(out):
            plot_confusion(result["confusion"], saved.classes, out,
                           title=f"{dataset}: top-1 error {100 * result['top1_error']:.1f}%")
    except WriteError as error:                     # a full or read-only disk
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"confusion matrix written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
