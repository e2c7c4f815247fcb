"""``python -m minitorch_alexnet.predict CHECKPOINT IMAGE...``: the five most likely classes of
each image, with probabilities (class names come from the checkpoint).

Each image is decoded with Pillow (any mode), brought to the training run's stored size
(shorter side, centre crop), and its centre crop is classified (``--ten-crop``: the average
over the 10 views)::

    python -m minitorch_alexnet.predict runs/cats-dogs cat.jpg dog.png

Images need not match the training data: ``data.decode_image`` converts every mode to the
model's, so a grey photo given to an RGB model is repeated over three channels, an RGBA or
palette image is composited over white, and a colour image given to a grey (Fashion-MNIST)
model is turned grey; any size is scaled to the run's stored size.

Exit status: 0 every image classified; 2 bad input: some images could not be read (each gets
one line, ``error: PATH: cannot read the image: REASON``, and the others are still
classified), or the checkpoint cannot be used (missing, corrupt, another format version), one
line naming it.
"""
import argparse
import sys

import numpy as np

from . import functional as F
from .backend import check_device, device_context, to_device, to_numpy
from .checkpoint import CheckpointError
from .data import BadImageError, decode_image
from .run_state import load_model, load_run_state, preprocess_from_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minitorch_alexnet.predict",
                                     description="Classify images with a trained AlexNet.")
    parser.add_argument("checkpoint", help="a checkpoint .npz or a run directory")
    parser.add_argument("images", nargs="+", help="image files (jpg, png, ...)")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print")
    parser.add_argument("--ten-crop", action="store_true", help="average the softmax over 10 views")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        check_device(args.device)
        saved = load_run_state(args.checkpoint)
        model = load_model(saved, args.device)
        preprocess = preprocess_from_checkpoint(saved)
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    classes = saved.classes
    mode = "L" if model.in_channels == 1 else "RGB"
    status = 0
    for path in args.images:
        try:
            image = decode_image(path, mode=mode)
        except (BadImageError, OSError) as error:
            reason = error.reason if isinstance(error, BadImageError) else error.strerror or error
            print(f"error: {path}: cannot read the image: {reason}", file=sys.stderr)
            status = 2
            continue
        if image.ndim == 2:
            image = image[:, :, None]
        views = preprocess.eval_ten_crop(image) if args.ten_crop else preprocess.eval(image)[None]
        with device_context(args.device):
            logits = model.forward(to_device(np.ascontiguousarray(views, dtype=np.float32), args.device),
                                   train=False)
            probabilities = to_numpy(F.softmax(logits)).mean(axis=0)
        best = np.argsort(-probabilities)[:args.top]
        print(f"{path}:")
        for index in best:
            print(f"  {probabilities[index]:7.2%}  {classes[index]}")
    return status


if __name__ == "__main__":
    sys.exit(main())
