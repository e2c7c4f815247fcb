"""``evaluate`` and ``predict`` given bad input, in-process on tiny generated files: a missing
path, a directory where a file is expected, a corrupt or truncated file, grey and RGBA images
for an RGB model (converted, not refused), a data set with other classes or another image
size than the checkpoint's, a checkpoint of an unknown format version. Each failure is one
line on stderr naming the file and what is wrong, with no traceback; status 2 for an unusable
checkpoint or data set, 1 for images predict cannot read (the others are still classified)."""
import errno
import os

import numpy as np
import pytest
from PIL import Image

from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet import evaluate as evaluate_cli
from minitorch_alexnet import predict as predict_cli
from minitorch_alexnet import train
from minitorch_alexnet.run_state import FORMAT

import helpers_train as h

pytestmark = [pytest.mark.train, pytest.mark.faults]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny run on an RGB image folder with the classes cats and dogs (40 x 40 images)."""
    root = tmp_path_factory.mktemp("folder")
    data = h.write_class_folders(str(root))
    run = root / "run"
    status, _, err = h.run_main(train, h.tiny_args(run, train=16, val=4, batch=8,
                                                 extra=["--dataset", "folder", "--data-dir", data]))
    assert status == 0, err
    return run


def evaluate(run, *extra):
    return h.run_main(evaluate_cli, [str(run), "--workers", "1", *extra])


# ---------------------------------------------------------------------------- checkpoints

def test_a_missing_checkpoint(tmp_path):
    missing = tmp_path / "nowhere"
    for module, argv in ((evaluate_cli, [str(missing)]),
                         (predict_cli, [str(missing), h.write_image(str(tmp_path / "a.png"))])):
        status, _, err = h.run_main(module, argv)
        assert status == 2
        assert h.one_error_line(err) == f"error: no checkpoint at {missing}"


def test_a_directory_without_a_checkpoint(tmp_path):
    status, _, err = evaluate(tmp_path)
    assert status == 2
    line = h.one_error_line(err)
    assert line.startswith(f"error: no usable checkpoint in {tmp_path}: no checkpoint at ")
    assert "last.npz" in line and "previous.npz" in line


def test_an_image_or_a_truncated_file_given_as_the_checkpoint(run_dir, tmp_path):
    picture = h.write_image(str(tmp_path / "picture.png"))
    data = (run_dir / "checkpoints" / "last.npz").read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:len(data) // 2])
    for path in (picture, str(cut)):
        for module, argv in ((evaluate_cli, [path]), (predict_cli, [path, picture])):
            status, _, err = h.run_main(module, argv)
            assert status == 2
            assert h.one_error_line(err) == f"error: checkpoint {path} is truncated or corrupt (not a .npz archive)"


def test_a_checkpoint_of_an_unknown_format_version(run_dir, tmp_path):
    arrays, meta = ckpt.load(str(run_dir / "checkpoints" / "last.npz"))
    future = str(tmp_path / "future.npz")
    ckpt.save(future, arrays, dict(meta, format="minitorch_alexnet checkpoint 9"))
    for module, argv in ((evaluate_cli, [future]),
                         (predict_cli, [future, h.write_image(str(tmp_path / "a.png"))])):
        status, _, err = h.run_main(module, argv)
        assert status == 2
        line = h.one_error_line(err)
        assert line.startswith(f"error: {future} holds format 'minitorch_alexnet checkpoint 9'")
        assert repr(FORMAT) in line


# ---------------------------------------------------------------------------- data sets

def folder_of(root, classes, size):
    """An image folder ``root/train`` with ``classes`` of 4 images of ``size`` x ``size``."""
    return h.write_class_folders(str(root), classes=classes, per_class=4, size=size)


def test_a_data_set_with_other_classes(run_dir, tmp_path):
    data = folder_of(tmp_path, ("birds", "cats"), 40)
    status, _, err = evaluate(run_dir, "--data-dir", data)
    assert status == 2
    assert h.one_error_line(err) == (
        f"error: {run_dir}/checkpoints/last.npz was trained on 2 classes (cats, dogs), but the "
        f"folder data set in {data} has 2 classes (birds, cats) and lacks dogs")


def test_a_data_set_of_another_image_size_is_scaled(run_dir, tmp_path):
    data = folder_of(tmp_path, ("cats", "dogs"), 64)
    confusion = str(tmp_path / "confusion.png")
    status, out, err = evaluate(run_dir, "--data-dir", data, "--confusion", confusion)
    assert status == 0, err
    assert "top-1 error" in out and err == ""


def test_a_missing_data_directory(run_dir, tmp_path):
    missing = str(tmp_path / "nowhere")
    status, _, err = evaluate(run_dir, "--data-dir", missing)
    assert status == 2
    line = h.one_error_line(err)
    assert missing in line and "does not exist" in line


# ---------------------------------------------------------------------------- images

def test_unreadable_images_get_one_line_each_and_the_rest_is_classified(run_dir, tmp_path):
    good = h.write_image(str(tmp_path / "good.png"))
    data = open(good, "rb").read()
    (tmp_path / "truncated.png").write_bytes(data[:len(data) // 2])
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    expected = {"missing.png": "cannot open file (No such file or directory)",
                "folder.png": "it is a directory, not an image file",
                "truncated.png": "truncated file (image file is truncated)",
                "junk.jpg": "not a recognised image file",
                "empty.png": "empty file (0 bytes)"}
    paths = [str(tmp_path / name) for name in expected]
    status, out, err = h.run_main(predict_cli, [str(run_dir), *paths, good])
    assert status == 2                                 # bad input; the good image is still classified
    assert "Traceback" not in err
    assert err.splitlines() == [f"error: {tmp_path / name}: cannot read the image: {reason}"
                                for name, reason in expected.items()]
    assert out.splitlines()[0] == f"{good}:"


def top_classes(run_dir, path):
    status, out, err = h.run_main(predict_cli, [str(run_dir), str(path), "--top", "2"])
    assert status == 0 and err == "", err
    return out.splitlines()[1:]


def test_grey_and_rgba_images_are_converted_for_an_rgb_model(run_dir, tmp_path):
    """A grey image is classified as the RGB image with three equal channels; an RGBA one as
    the RGB image of its colours composited over white."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, size=(40, 40), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2)).save(tmp_path / "grey_as_rgb.png")
    assert top_classes(run_dir, tmp_path / "grey.png") == top_classes(run_dir, tmp_path / "grey_as_rgb.png")

    rgba = rng.integers(0, 256, size=(40, 40, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    alpha = rgba[:, :, 3:].astype(np.float64) / 255
    over_white = np.rint(alpha * rgba[:, :, :3] + (1 - alpha) * 255).astype(np.uint8)
    Image.fromarray(over_white).save(tmp_path / "over_white.png")
    shown, expected = top_classes(run_dir, tmp_path / "rgba.png"), top_classes(run_dir, tmp_path / "over_white.png")
    assert [line.split()[-1] for line in shown] == [line.split()[-1] for line in expected]



def test_a_confusion_matrix_that_cannot_be_written(run_dir, tmp_path, monkeypatch):
    """A full disk when evaluate writes its PNG: status 1, one line naming the PNG."""
    real = os.replace

    def replace(source, destination, *args, **kwargs):
        if str(destination).endswith("confusion.png"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    out = str(tmp_path / "confusion.png")
    status, _, err = evaluate(run_dir, "--confusion", out)
    assert status == 1
    assert h.one_error_line(err) == f"error: cannot write {out}: No space left on device"
    assert os.listdir(tmp_path) == []                  # no temporary PNG left behind
