"""The training command line end to end on tiny runs: what a run directory holds, every data
format, the paper preset, the learning-rate schedules, evaluation and prediction from a run,
bad input with clear messages, and two CPU columns equal to one device."""
import contextlib
import io
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet import evaluate as evaluate_cli
from minitorch_alexnet import predict as predict_cli
from minitorch_alexnet import train
from minitorch_alexnet.backend import cuda_available
from minitorch_alexnet.data import build_datasets
from minitorch_alexnet.run_state import load_run_state, preprocess_from_checkpoint
from minitorch_alexnet.schedule import Schedule
from minitorch_alexnet.train_config import TrainConfig
from minitorch_alexnet.trainer import Trainer

import helpers_train as h

pytestmark = pytest.mark.train


def run_main(module, argv):
    """``module.main(argv)`` with its standard output and error captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = module.main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def builtin_run(tmp_path_factory):
    """Two epochs on the built-in data, with the 10-view and 2-view reports at the end."""
    run_dir = tmp_path_factory.mktemp("builtin") / "run"
    status, out, err = run_main(train, h.tiny_args(run_dir, train=64, val=32, epochs=2,
                                                   extra=["--ten-crop", "--flip-test"]))
    return run_dir, status, out, err


# ---------------------------------------------------------------------------- a run directory

def test_builtin_run_writes_everything(builtin_run):
    run_dir, status, out, err = builtin_run
    assert status == 0, err
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "small" and config["epochs"] == 2 and config["batch_size"] == 16
    assert config["run_dir"] == str(run_dir)

    rows = h.read_metrics(run_dir)
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        for key in ("train_loss", "val_top1_error", "val_top5_error", "lr"):
            assert isinstance(row[key], float) and math.isfinite(row[key]), key
        assert 0.0 <= row["val_top5_error"] <= row["val_top1_error"] <= 1.0
    # the small preset's default schedule: cosine decay from 0.02 over the run's steps
    assert config["schedule"] == "cosine"
    assert 0.0 < rows[1]["lr"] < rows[0]["lr"] < 0.02

    for name in ("curves.png", "conv1_filters.png"):
        with Image.open(run_dir / name) as image:
            image.verify()
            assert image.format == "PNG"
        with Image.open(run_dir / name) as image:
            assert min(image.size) > 16

    last = run_dir / "checkpoints" / "last.npz"
    previous = run_dir / "checkpoints" / "previous.npz"
    assert last.exists() and previous.exists()
    _, meta = ckpt.load(str(last))
    assert meta["epoch"] == 2 and meta["batches_done"] == 0 and meta["global_step"] == 8
    _, meta_previous = ckpt.load(str(previous))
    assert meta_previous["epoch"] == 1
    assert len(meta["history"]) == 2
    assert not [name for name in os.listdir(run_dir / "checkpoints") if name not in ("last.npz", "previous.npz")]

    assert "epoch 1/2:" in out and "epoch 2/2:" in out
    assert "final validation accuracy:" in out and "(32 images, centre crop)" in out


def test_ten_crop_report(builtin_run):
    _, status, out, _ = builtin_run
    assert status == 0
    line = [l for l in out.splitlines() if l.startswith("final validation accuracy with 10 views:")]
    assert len(line) == 1 and "top-1" in line[0] and "top-5" in line[0]


def test_flip_test_report_agrees_with_evaluate(builtin_run):
    run_dir, status, out, _ = builtin_run
    line = [l for l in out.splitlines()
            if l.startswith("final validation accuracy with the mirror images:")]
    assert status == 0 and len(line) == 1 and line[0].endswith("(2 views)")
    accuracy = line[0].split(": ")[1].split("%")[0]
    status, out, err = run_main(evaluate_cli, [str(run_dir), "--workers", "1", "--limit-val", "32",
                                               "--flip-test"])
    assert status == 0, err
    assert "(centre crop and its mirror image)" in out and f"(accuracy {accuracy}%)" in out


def test_evaluate_a_run_directory(builtin_run):
    run_dir, _, _, _ = builtin_run
    # evaluate defaults to the whole validation split; the run used its first 32 images.
    status, out, err = run_main(evaluate_cli, [str(run_dir), "--workers", "1", "--limit-val", "32"])
    assert status == 0, err
    assert "32 images of builtin" in out
    assert "top-1 error" in out and "top-5 error" in out
    with Image.open(run_dir / "confusion.png") as image:
        assert image.format == "PNG"
    # The centre-crop accuracy agrees with the trainer's final report.
    rows = h.read_metrics(run_dir)
    assert f"top-1 error {100 * rows[-1]['val_top1_error']:.2f}%" in out


def test_predict_top5_and_missing_image(builtin_run, tmp_path):
    run_dir, _, _, _ = builtin_run
    picture = h.write_image(str(tmp_path / "picture.png"), size=40)
    status, out, err = run_main(predict_cli, [str(run_dir), picture])
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{picture}:"
    _, meta = ckpt.load(str(run_dir / "checkpoints" / "last.npz"))
    probabilities = []
    for line in lines[1:6]:
        percent, name = line.split(maxsplit=1)
        assert name in meta["classes"]
        probabilities.append(float(percent.rstrip("%")) / 100)
    assert len(lines) == 6
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1.0 + 1e-3      # printed with 2 decimals

    missing = str(tmp_path / "nowhere.jpg")
    status, out, err = run_main(predict_cli, [str(run_dir), missing, picture])
    assert status == 2                               # bad input, like every other command
    assert f"{missing}: cannot read the image" in err
    assert f"{picture}:" in out                      # the readable image is still classified


# ---------------------------------------------------------------------------- data formats

def run_on(tmp_path, dataset, data_dir, *extra, train_images=32, val_images=16):
    run_dir = tmp_path / "run"
    status, out, err = run_main(train, h.tiny_args(run_dir, train=train_images, val=val_images,
                                                   extra=["--dataset", dataset, "--data-dir", str(data_dir), *extra]))
    assert status == 0, err
    rows = h.read_metrics(run_dir)
    assert len(rows) == 1 and math.isfinite(rows[0]["train_loss"])
    assert (run_dir / "checkpoints" / "last.npz").exists()
    return run_dir, out


def test_cifar10_batches(tmp_path):
    folder = h.write_cifar(str(tmp_path / "data"), n=8)
    for where in (folder, os.path.dirname(folder)):       # the batches folder or its parent
        run_dir, out = run_on(tmp_path / os.path.basename(where), "cifar10", where)
        assert "on cifar10: 32 training / 8 validation images, 10 classes" in out
    _, meta = ckpt.load(str(run_dir / "checkpoints" / "last.npz"))
    assert meta["classes"][0] == "airplane" and meta["model"]["in_channels"] == 3


def test_crop_padding_pads_the_images_and_evaluate_reads_them_as_training_did(tmp_path):
    folder = h.write_fashion_mnist(str(tmp_path / "data"), n_train=32, n_test=16)
    run_dir, out = run_on(tmp_path, "fashion-mnist", folder, "--crop-padding", "2")
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["crop_padding"], config["image_size"], config["stored_size"]) == (2, 28, 32)
    # the stored images: each 28x28 image unresized inside a black border of 2 pixels
    train_set, val_set = build_datasets("fashion-mnist", folder, image_size=32, crop_padding=2)
    plain, plain_val = build_datasets("fashion-mnist", folder)
    for padded, images in ((train_set, plain.images), (val_set, plain_val.images)):
        assert padded.images.shape == (len(images), 32, 32, 1)
        np.testing.assert_array_equal(padded.images[:, 2:30, 2:30], images)
        assert padded.images.sum() == images.sum()                # the border is black
    saved = load_run_state(str(run_dir))
    assert preprocess_from_checkpoint(saved).padding == 2
    final = [l for l in out.splitlines() if l.startswith("final validation accuracy:")][0]
    status, evaluated, err = run_main(evaluate_cli, [str(run_dir), "--workers", "1"])
    assert status == 0, err
    assert f"(accuracy {final.split(': ')[1].split('%')[0]}%)" in evaluated


def test_crop_padding_errors_name_the_conflict(tmp_path):
    for extra, message in ((["--dataset", "folder", "--crop-padding", "2"], "--crop-padding pads "
                            "the data sets held in memory"),
                           (["--crop-padding", "2", "--stored-size", "30"], "--crop-padding 2 "
                            "stores 32x32 crops at 36x36, not --stored-size 30"),
                           (["--crop-padding", "-1"], "--crop-padding must be a number of pixels")):
        status, _, err = run_main(train, h.tiny_args(tmp_path / "run", extra=extra))
        assert status == 2 and message in err, err


def test_image_folder_class_subfolders(tmp_path):
    top = h.write_class_folders(str(tmp_path / "data"), per_class=8)
    run_dir, out = run_on(tmp_path, "folder", top)
    assert "2 classes" in out
    _, meta = ckpt.load(str(run_dir / "checkpoints" / "last.npz"))
    assert meta["classes"] == ["cats", "dogs"]


def test_image_folder_flat_files(tmp_path):
    folder = h.write_flat_folder(str(tmp_path / "data"), per_class=8)
    run_dir, _ = run_on(tmp_path, "folder", folder)
    _, meta = ckpt.load(str(run_dir / "checkpoints" / "last.npz"))
    assert meta["classes"] == ["cat", "dog"]


def test_fashion_mnist_idx(tmp_path):
    folder = h.write_fashion_mnist(str(tmp_path / "data"))
    run_dir, out = run_on(tmp_path, "fashion-mnist", folder)
    _, meta = ckpt.load(str(run_dir / "checkpoints" / "last.npz"))
    assert meta["model"]["in_channels"] == 1 and meta["model"]["input_size"] == 28
    assert meta["classes"][9] == "Ankle boot"


@pytest.mark.parametrize("dataset, write, crop", [
    ("fashion-mnist", lambda root: h.write_fashion_mnist(root, n_train=40, n_test=8), 28),
    ("cifar10", lambda root: h.write_cifar(root, n=8), 32),
    ("folder", lambda root: h.write_class_folders(root, per_class=8), 32),
])
def test_real_data_gets_the_small_recipe_grey_or_colour(tmp_path, dataset, write, crop):
    # the 30-minute recipe (train_config.SMALL_RECIPE) is every real data set's default: the
    # same settings for 28x28 grey and 32x32 colour images, the crop margin 1 pixel for both
    folder = write(str(tmp_path / "data"))
    run_dir = tmp_path / "run"
    status, _, err = run_main(train, ["--dataset", dataset, "--data-dir", folder, "--epochs", "1",
                                      "--workers", "1", "--no-progress", "--run-dir", str(run_dir)])
    assert status == 0, err
    config = json.loads((run_dir / "config.json").read_text())
    assert {k: config[k] for k in ("width", "fc_width", "std", "batch_size", "lr", "warmup",
                                   "warmup_min_steps", "label_smoothing", "weight_decay",
                                   "flip_test", "ten_crop", "image_size", "stored_size")} == {
        "width": 0.5, "fc_width": 2.0, "std": True, "batch_size": 256, "lr": 0.16, "warmup": 0.5,
        "warmup_min_steps": 100, "label_smoothing": 0.1, "weight_decay": 2.5e-4,
        "flip_test": True, "ten_crop": True, "image_size": crop, "stored_size": crop + 2}
    assert math.isfinite(h.read_metrics(run_dir)[0]["train_loss"])


def test_builtin_data_gets_the_recipe_gently_and_the_paper_preset_its_own():
    builtin = TrainConfig().resolved()
    assert (builtin.width, builtin.fc_width, builtin.std, builtin.warmup, builtin.label_smoothing,
            builtin.flip_test, builtin.ten_crop) == (0.5, 2.0, True, 0.5, 0.1, True, True)
    assert (builtin.batch_size, builtin.lr, builtin.epochs, builtin.stored_size,
            builtin.weight_decay) == (64, 0.02, 10, 36, 5e-4)
    paper = TrainConfig(preset="paper", dataset="folder").resolved()
    assert (paper.width, paper.fc_width, paper.batch_size, paper.lr, paper.warmup, paper.std,
            paper.flip_test, paper.ten_crop, paper.stored_size, paper.weight_decay) == \
        (1.0, None, 128, 0.01, 0.0, False, False, False, 256, 5e-4)
    # a flag given wins over the recipe
    given = TrainConfig(dataset="cifar10", width=1.0, lr=0.01, stored_size=36, std=False).resolved()
    assert (given.width, given.lr, given.stored_size, given.batch_size, given.std) == \
        (1.0, 0.01, 36, 256, False)


def test_the_recipes_warm_up_lasts_100_steps_at_least_and_half_the_run_at_most():
    recipe = TrainConfig(dataset="fashion-mnist").resolved()
    assert (recipe.warmup, recipe.warmup_min_steps, recipe.epochs) == (0.5, 100, 20)
    assert recipe.warmup_steps(235) == 118          # Fashion-MNIST: half an epoch is longer
    assert recipe.warmup_steps(30) == 100           # 7,680 images: half an epoch is 15 steps
    assert recipe.warmup_steps(8) == 80             # 20 epochs of 8 steps: half the run
    assert TrainConfig(dataset="cifar10", epochs=3).resolved().warmup_steps(40) == 60
    # --warmup given is exactly that many epochs; the built-in pictures and the paper: no floor
    given = TrainConfig(dataset="fashion-mnist", warmup=0.5).resolved()
    assert (given.warmup_min_steps, given.warmup_steps(30)) == (0, 15)
    assert TrainConfig(dataset="fashion-mnist", warmup=0.0).resolved().warmup_steps(30) == 0
    assert TrainConfig().resolved().warmup_steps(30) == 15
    assert TrainConfig(preset="paper", dataset="folder").resolved().warmup_steps(30) == 0


def test_the_trainer_warms_up_over_the_recipes_steps(tmp_path):
    folder = h.write_fashion_mnist(str(tmp_path / "data"), n_train=64)
    config = TrainConfig(dataset="fashion-mnist", data_dir=folder, width=0.125, batch_size=16,
                         epochs=20, workers=1, progress=False, run_dir=str(tmp_path / "run"))
    schedule = Trainer(config, out=io.StringIO()).schedule     # 4 steps an epoch, 80 in all
    assert schedule.warmup_steps == 40                          # not round(0.5 * 4) = 2
    assert schedule.lr_for_step(0, 0) == pytest.approx(0.16 / 40)


def test_a_checkpoint_from_before_the_recipe_resumes_as_it_trained():
    saved = {"preset": "small", "dataset": "fashion-mnist", "width": 0.75, "batch_size": 64,
             "lr": 0.02, "warmup": 0.0, "label_smoothing": 0.0, "epochs": 15, "stored_size": 30}
    config = TrainConfig.from_dict(saved).resolved()
    assert (config.fc_width, config.std, config.flip_test, config.ten_crop) == (0.75, False, False, False)
    assert (config.width, config.batch_size, config.lr) == (0.75, 64, 0.02)
    assert config.warmup_steps(30) == 0                # no warm-up floor: it had none


def test_paper_preset_on_a_folder(tmp_path):
    top = h.write_class_folders(str(tmp_path / "data"), per_class=6, size=64)
    run_dir = tmp_path / "run"
    status, out, err = run_main(train, [
        "--preset", "paper", "--width", "0.0625", "--limit-train", "8", "--limit-val", "4",
        "--batch-size", "4", "--epochs", "1", "--workers", "1", "--no-progress",
        "--dataset", "folder", "--data-dir", top, "--run-dir", str(run_dir)])
    assert status == 0, err
    _, meta = ckpt.load(str(run_dir / "checkpoints" / "last.npz"))
    assert meta["model"]["input_size"] == 227 and meta["preprocess"]["stored_size"] == 256
    assert "paper preset" in out and "final validation accuracy:" in out


# ---------------------------------------------------------------------------- the command line

def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--epochs", "--batch-size", "--lr", "--image-size", "--seed",
                 "--device", "--columns", "--run-dir", "--resume", "--ten-crop", "--limit-train",
                 "--limit-val", "--dataset", "--data-dir", "--val-dir"):
        assert flag in text, flag


def test_help_states_each_default_once(capsys):
    """Each flag's help names its default at most once, and never as "(default: None)" (the
    flags without a fixed default explain theirs in words)."""
    import re

    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    # One entry per flag: its lines joined, so that a default wrapped onto the next line counts.
    entries = re.split(r"\n(?=  -)", text.split("options:", 1)[1])
    assert len(entries) > 30
    for line in text.splitlines():
        assert line.lower().count("default") <= 1, line
    for entry in entries:
        words = " ".join(entry.split())
        assert "(default: None)" not in words, words
        if "(default:" in words:                       # appended: the help said none before
            before = words[:words.index("(default:")].lower()
            assert "default" not in before, words
    assert "(default: 10.0)" in " ".join(text.split())     # --checkpoint-minutes


def test_command_modules_import_only_library_modules():
    """train, evaluate and predict share code through library modules (run_state, evaluation,
    backend, ...), never by importing one another."""
    import ast

    commands = {"train", "evaluate", "predict"}
    package = os.path.dirname(train.__file__)
    for name in sorted(commands):
        with open(os.path.join(package, name + ".py")) as handle:
            tree = ast.parse(handle.read())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[-1])
                if not node.module:                             # from . import x, y
                    imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[-1] for alias in node.names)
        assert not (imported & (commands - {name})), f"{name}.py imports {imported & commands}"


# ---------------------------------------------------------------------------- schedules

def test_plateau_divides_after_patience_epochs():
    s = Schedule("plateau", 0.1, epochs=20, steps_per_epoch=5, patience=2)
    assert s.lr_for_step(0, 0) == 0.1
    assert s.end_epoch(0.5) is None                       # first epoch: the best so far
    assert s.end_epoch(0.4) is None                       # improved
    assert s.end_epoch(0.4) is None and s.lr_for_step(3, 0) == 0.1   # 1 epoch without
    message = s.end_epoch(0.45)                           # 2 epochs without improvement
    assert message and "divided by 10" in message
    assert s.lr_for_step(4, 2) == pytest.approx(0.01)
    assert s.end_epoch(0.3) is None and s.lr_for_step(5, 0) == pytest.approx(0.01)
    # At most three divisions (the paper's count).
    for _ in range(10):
        s.end_epoch(0.9)
    assert s.decays == 3 and s.lr_for_step(20, 0) == pytest.approx(1e-4)
    # The state travels in checkpoints.
    other = Schedule("plateau", 0.1, epochs=20, steps_per_epoch=5, patience=2)
    other.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert other.state_dict() == s.state_dict() and other.lr_for_step(0, 0) == s.lr_for_step(0, 0)


def test_plateau_patience_one_and_tiny_improvements():
    s = Schedule("plateau", 1.0, epochs=5, steps_per_epoch=1, patience=1)
    s.end_epoch(0.5)
    assert s.end_epoch(0.5 - 1e-6) is not None            # below min_improvement: no progress
    assert s.lr_for_step(2, 0) == pytest.approx(0.1)


def test_step_and_cosine_values():
    s = Schedule("step", 0.1, epochs=90, steps_per_epoch=10, step_epochs=30)
    assert [s.lr_for_step(e, 3) for e in (0, 29)] == [0.1, 0.1]
    assert s.lr_for_step(30, 0) == pytest.approx(0.01)
    assert s.lr_for_step(89, 9) == pytest.approx(0.001)
    assert s.end_epoch(0.1) is None and s.lr_for_step(0, 0) == 0.1   # validation is ignored

    c = Schedule("cosine", 0.2, epochs=4, steps_per_epoch=10)
    assert c.lr_for_step(0, 0) == pytest.approx(0.2)
    assert c.lr_for_step(2, 0) == pytest.approx(0.1)                  # halfway
    assert c.lr_for_step(1, 0) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert c.lr_for_step(4, 0) == pytest.approx(0.0, abs=1e-12)
    values = [c.lr_for_step(e, k) for e in range(4) for k in range(10)]
    assert all(a > b for a, b in zip(values, values[1:]))

    assert Schedule("constant", 0.3, epochs=1, steps_per_epoch=1).lr_for_step(7, 7) == 0.3
    with pytest.raises(ValueError, match="schedule must be one of"):
        Schedule("exponential", 0.1, epochs=1, steps_per_epoch=1)


# ---------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("dataset, layout", [
    ("folder", "one subfolder per class"),
    ("cifar10", "cifar-10-batches-py"),
    ("fashion-mnist", "train-images-idx3-ubyte"),
])
def test_missing_or_empty_data_directory(tmp_path, dataset, layout):
    missing = tmp_path / "nowhere"
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (missing, empty):
        status, out, err = run_main(train, h.tiny_args(tmp_path / f"run-{folder.name}",
                                                      extra=["--dataset", dataset, "--data-dir", str(folder)]))
        assert status == 2
        assert err.startswith("error: ")
        assert str(folder) in err and layout in err
        assert not (tmp_path / f"run-{folder.name}" / "checkpoints").exists()


@pytest.mark.skipif(cuda_available(), reason="CuPy with a GPU is present")
def test_cuda_without_cupy(tmp_path):
    for flags in (["--device", "cuda"], ["--columns", "cuda:0,cuda:1"]):
        status, _, err = run_main(train, h.tiny_args(tmp_path / "run", extra=flags))
        assert status == 2
        assert "CuPy with a CUDA GPU is not available" in err and "--device cpu" in err


def test_existing_run_directory_needs_resume(builtin_run):
    run_dir, _, _, _ = builtin_run
    before = (run_dir / "checkpoints" / "last.npz").read_bytes()
    status, _, err = run_main(train, h.tiny_args(run_dir))
    assert status == 2
    assert "already holds a run" in err and f"--resume {run_dir}" in err
    assert (run_dir / "checkpoints" / "last.npz").read_bytes() == before


def test_val_every_validates_every_nth_epoch_and_the_last(tmp_path):
    run_dir = tmp_path / "run"
    status, out, err = run_main(train, h.tiny_args(run_dir, epochs=5, extra=["--val-every", "2"]))
    assert status == 0, err
    rows = h.read_metrics(run_dir)
    validated = [row["epoch"] for row in rows if row["val_top1_error"] is not None]
    assert validated == [2, 4, 5]
    assert all(row["val_loss"] is None and row["val_top5_error"] is None
               for row in rows if row["epoch"] not in validated)
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert ["val top-1 error" in line for line in lines] == [False, True, False, True, True]
    assert (run_dir / "curves.png").stat().st_size > 0
    assert "final validation accuracy:" in out


def test_val_every_needs_a_schedule_that_does_not_watch_validation(tmp_path):
    status, _, err = run_main(train, h.tiny_args(tmp_path / "run", extra=[
        "--val-every", "2", "--schedule", "plateau"]))
    assert status == 2 and "--val-every 2 needs another --schedule" in err
    status, _, err = run_main(train, h.tiny_args(tmp_path / "run2", extra=["--val-every", "0"]))
    assert status == 2 and "--val-every must be a positive number of epochs, got 0" in err


def test_columns_need_two_devices(tmp_path):
    status, _, err = run_main(train, h.tiny_args(tmp_path / "run", extra=["--columns", "cpu"]))
    assert status == 2 and "--columns takes two devices" in err


# ---------------------------------------------------------------------------- two columns

def test_two_cpu_columns_equal_one_device(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    # float64: in float32 two training runs whose sums are ordered differently drift apart by
    # more than rounding within a few steps of a tiny network
    assert run_main(train, h.tiny_args(one, epochs=2, extra=["--dtype", "float64"]))[0] == 0
    status, out, err = run_main(train, h.tiny_args(two, epochs=2, extra=["--columns", "cpu:0,cpu:1",
                                                                      "--dtype", "float64"]))
    assert status == 0, err
    assert "columns on cpu:0 and cpu:1" in out
    rows_one, rows_two = h.deterministic_metrics(one), h.deterministic_metrics(two)
    assert len(rows_one) == len(rows_two) == 2
    for a, b in zip(rows_one, rows_two):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-9), key
    weights_one, weights_two = h.final_weights(one), h.final_weights(two)
    for name in weights_one:
        assert weights_one[name].shape == weights_two[name].shape
        np.testing.assert_allclose(weights_two[name], weights_one[name], rtol=1e-8, atol=1e-10, err_msg=name)
