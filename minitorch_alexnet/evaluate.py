"""``python -m minitorch_alexnet.evaluate CHECKPOINT --dataset ...``: top-1 / top-5 error of a
trained model and a confusion-matrix PNG.

CHECKPOINT is a checkpoint file or a run directory (its latest good checkpoint). The data set
defaults to the one the model was trained on; its validation split is evaluated with the
training run's preprocessing (mean image, crop size)::

    python -m minitorch_alexnet.evaluate runs/builtin-small-20260101-120000
    python -m minitorch_alexnet.evaluate runs/fmnist/checkpoints/last.npz --dataset fashion-mnist --ten-crop
"""
import argparse
import os
import sys

from .backend import check_device, keep_freed_memory
from . import checkpoint as ckpt
from .data import DATASETS, DataError, build_datasets
from .evaluation import evaluate, evaluation_loader
from .model import AlexNet
from .trainer import preprocess_from_checkpoint


def load_model(arrays, meta, device="cpu"):
    """Rebuild the AlexNet and the preprocessing of a checkpoint."""
    spec = meta["model"]
    model = AlexNet(spec["num_classes"], spec["preset"], devices=[device], width=spec["width"],
                    in_channels=spec["in_channels"], input_size=spec["input_size"],
                    init=spec.get("init", "paper"))
    model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
    return model, preprocess_from_checkpoint(arrays, meta)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minitorch_alexnet.evaluate",
                                     description="Evaluate a trained AlexNet checkpoint.")
    parser.add_argument("checkpoint", help="a checkpoint .npz or a run directory")
    parser.add_argument("--dataset", choices=DATASETS, help="default: the training run's")
    parser.add_argument("--data-dir", help="default: the training run's")
    parser.add_argument("--val-dir", help="default: the training run's")
    parser.add_argument("--limit-val", type=int, help="evaluate only the first N images")
    parser.add_argument("--ten-crop", action="store_true", help="average the softmax over 10 views")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--confusion", help="confusion-matrix PNG path (default: next to the checkpoint)")
    args = parser.parse_args(argv)
    keep_freed_memory()          # reuse the pages of freed arrays (backend.py says why)
    try:
        arrays, meta, path = ckpt.load_file_or_directory(args.checkpoint)
        check_device(args.device)
        config = meta["config"]
        dataset = args.dataset or config["dataset"]
        same = dataset == config["dataset"]
        data_dir = args.data_dir or (config["data_dir"] if same else None)
        val_dir = args.val_dir or (config["val_dir"] if same else None)
        model, preprocess = load_model(arrays, meta, args.device)
        _, val_set = build_datasets(dataset, data_dir, val_dir, seed=config["seed"],
                                    limit_val=args.limit_val, val_fraction=config["val_fraction"],
                                    image_size=preprocess.stored_size)
        if list(val_set.classes) != list(meta["classes"]):
            raise ValueError(f"the data set's classes {list(val_set.classes)[:5]}... differ from the "
                             f"checkpoint's {meta['classes'][:5]}...")
        loader = evaluation_loader(val_set, preprocess, args.batch_size, ten_crop=args.ten_crop,
                                   workers=args.workers)
        result = evaluate(model, loader, args.device, ten_crop=args.ten_crop, confusion=True)
    except (DataError, ckpt.CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    views = "10 views" if args.ten_crop else "centre crop"
    print(f"{path}: {result['count']} images of {dataset} ({views})")
    print(f"top-1 error {100 * result['top1_error']:.2f}%  (accuracy {100 * (1 - result['top1_error']):.2f}%)")
    print(f"top-5 error {100 * result['top5_error']:.2f}%  (accuracy {100 * (1 - result['top5_error']):.2f}%)")
    print(f"mean loss {result['loss']:.4f}")
    from .plots import plot_confusion

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.basename(folder) == "checkpoints":          # a run directory's checkpoint
        folder = os.path.dirname(folder)
    out = args.confusion or os.path.join(folder, "confusion.png")
    plot_confusion(result["confusion"], meta["classes"], out,
                   title=f"{dataset}: top-1 error {100 * result['top1_error']:.1f}%")
    print(f"confusion matrix written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
