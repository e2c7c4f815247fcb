"""``python -m minitorch_alexnet.figures``: Figure 3 (the conv1 kernels) and Figure 4 (nearest
training images in fc7) from tiny checkpoints trained here, one on the built-in (colour) data
and one on generated Fashion-MNIST IDX files (grey). The fast neighbour search is compared
with a naive double loop; the accuracies with a hand count; bad input exits 2 with one line."""
import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from minitorch_alexnet import figures, train
from minitorch_alexnet.data import build_datasets
from minitorch_alexnet.evaluation import evaluation_loader
from minitorch_alexnet.run_state import load_model, load_run_state, preprocess_from_checkpoint

import helpers_train as h

pytestmark = [pytest.mark.experiments]


def trained(run, extra=()):
    status, _, err = h.run_main(train, h.tiny_args(run, train=128, val=64, batch=32,
                                                 extra=["--checkpoint-minutes", "0", *extra]))
    assert status == 0, err
    return run


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """One epoch on 128 built-in images (RGB, 10 classes)."""
    return trained(tmp_path_factory.mktemp("colour") / "run")


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    return h.write_fashion_mnist(str(tmp_path_factory.mktemp("fmnist")), n_train=60, n_test=20)


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory, fashion_dir):
    """One epoch on generated Fashion-MNIST files (1 channel)."""
    return trained(tmp_path_factory.mktemp("grey") / "run",
                   ["--dataset", "fashion-mnist", "--data-dir", fashion_dir])


def assert_png(path, min_bytes=2000):
    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes, (path, len(data))
    with Image.open(path) as image:
        image.verify()


def naive_neighbours(queries, references, k):
    """The k nearest references of each query by a double loop of np.linalg.norm, nearest
    first, ties to the lower index (a stable sort)."""
    found = []
    for a in queries:
        distances = [np.linalg.norm(a - b) for b in references]
        found.append(np.argsort(distances, kind="stable")[:k])
    return np.array(found)


# ---------------------------------------------------------------------------- the pieces

@pytest.mark.parametrize("chunk_elements", [7, 2**23])       # one query row per chunk; one chunk
def test_nearest_neighbours_equal_a_double_loop(monkeypatch, chunk_elements):
    monkeypatch.setattr(figures, "MATRIX_ELEMENTS", chunk_elements)
    rng = np.random.default_rng(0)
    references = np.maximum(rng.standard_normal((50, 12)), 0).astype(np.float32)
    references[30] = references[10]                # an exact tie: the lower index comes first
    queries = np.concatenate([np.maximum(rng.standard_normal((20, 12)), 0),
                              references[[10, 3]] + 1e-3]).astype(np.float32)
    found, distances = figures.nearest_neighbours(queries, references, 5)
    expected = naive_neighbours(queries.astype(np.float64), references.astype(np.float64), 5)
    assert np.array_equal(found, expected)
    assert list(found[20, :2]) == [10, 30]
    naive = [[np.sum((q - references[j].astype(np.float64)) ** 2) for j in row]
             for q, row in zip(queries.astype(np.float64), expected)]
    assert np.allclose(distances, naive, rtol=1e-9, atol=1e-12)


def test_too_few_references_for_k():
    with pytest.raises(ValueError, match="--neighbours 4 needs at least 4 training images, there are 3"):
        figures.nearest_neighbours(np.zeros((2, 3)), np.zeros((3, 3)), 4)


def test_neighbour_accuracy_by_hand():
    query_labels = np.array([0, 1, 2])
    neighbour_labels = np.array([[0, 1, 1], [0, 1, 1], [2, 0, 2]])
    # pairs of the same class: 1 + 2 + 2 = 5 of 9; nearest of the same class: queries 0 and 2
    assert figures.neighbour_accuracy(query_labels, neighbour_labels) == (5 / 9, 2 / 3, 5, 2)


def test_queries_are_the_first_of_each_class_then_the_second():
    labels = np.array([2, 0, 0, 1, 2, 1, 0])
    assert list(figures.choose_queries(labels, 5)) == [1, 3, 0, 2, 5]
    seeded = figures.choose_queries(labels, 3, seed=1)
    assert sorted(labels[seeded]) == [0, 1, 2]
    assert list(seeded) == list(figures.choose_queries(labels, 3, seed=1))


def test_grey_images_are_drawn_in_grey():
    plt = figures.pyplot()
    figure, (grey_axes, colour_axes) = plt.subplots(1, 2)
    figures._show(grey_axes, np.full((4, 4, 1), 7, np.uint8), "a", "red")
    figures._show(colour_axes, np.full((4, 4, 3), 7, np.uint8), "b", "black")
    grey, colour = grey_axes.images[0], colour_axes.images[0]
    assert grey.get_array().shape == (4, 4) and grey.get_cmap().name == "gray"
    assert grey.get_clim() == (0, 255)                  # 7 stays dark, not stretched to white
    assert colour.get_array().shape == (4, 4, 3)
    plt.close(figure)


# ---------------------------------------------------------------------------- Figure 3

def test_filters_figure(colour_run, tmp_path):
    kernels = load_run_state(str(colour_run)).arrays["model/conv1.weight"].shape[0]
    status, out, err = h.run_main(figures, ["filters", str(colour_run)])
    assert status == 0, err
    path = colour_run / "filters.png"                 # the run directory, not checkpoints/
    lines = out.strip().splitlines()
    assert lines[0] == f"{kernels} conv1 kernels written to {path}"
    assert lines[1].startswith("grey share of the kernels' energy") and "column 2" in lines[1]
    assert_png(path)
    other = tmp_path / "f.png"
    status, out, _ = h.run_main(figures, ["filters", str(colour_run / "checkpoints" / "last.npz"),
                                        "--out", str(other)])
    assert status == 0 and out.splitlines()[0] == f"{kernels} conv1 kernels written to {other}"
    assert_png(other)


def test_grey_share_against_a_loop():
    """The colourless share of each kernel's energy, against sums over every entry; a grey
    kernel has share 1, a kernel whose channels cancel has share 0, random ones about 1/3."""
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((6, 3, 5, 5))
    weight[0] = weight[0, :1]                              # the same pattern in every channel
    weight[1, 2] = -weight[1, 0] - weight[1, 1]           # channels sum to zero everywhere
    for f, share in enumerate(figures.grey_share(weight)):
        total = sum(weight[f, c, i, j] ** 2 for c in range(3) for i in range(5) for j in range(5))
        grey = sum((sum(weight[f, c, i, j] for c in range(3)) / 3) ** 2 for i in range(5) for j in range(5))
        assert share == pytest.approx(3 * grey / total, rel=1e-12)
    shares = figures.grey_share(weight)
    assert shares[0] == pytest.approx(1) and shares[1] == pytest.approx(0, abs=1e-15)
    assert figures.grey_share(rng.standard_normal((2000, 3, 5, 5))).mean() == pytest.approx(1 / 3, abs=0.01)


# ---------------------------------------------------------------------------- Figure 4

def neighbours(run, out, *extra):
    return h.run_main(figures, ["neighbours", str(run), "--limit-train", "90", "--limit-val", "30",
                              "--queries", "4", "--neighbours", "5", "--batch-size", "16",
                              "--workers", "1", "--out", str(out), *extra])


def features_of(saved, data, preprocess):
    """fc7 of every image of ``data`` the way the command computes them (same batches)."""
    model = load_model(saved)
    loader = evaluation_loader(data, preprocess, 16, workers=1)
    return figures.fc7_features(model, loader, "cpu")[:2]


def test_neighbours_figure_equals_a_naive_search(colour_run, tmp_path):
    out = tmp_path / "near.png"
    status, stdout, err = neighbours(colour_run, out)
    assert status == 0, err
    assert_png(out, min_bytes=10000)
    numbers = json.loads((tmp_path / "near.json").read_text())
    saved = load_run_state(str(colour_run))
    preprocess = preprocess_from_checkpoint(saved)
    train_set, val_set = build_datasets("builtin", seed=0, limit_train=90, limit_val=30,
                                        image_size=preprocess.stored_size)
    (train_f, train_y), (val_f, val_y) = (features_of(saved, data, preprocess)
                                          for data in (train_set, val_set))
    model = load_model(saved)                                         # the same, image by image
    fc7_units = next(layer.units for layer in model.layers if layer.name == "fc7")
    assert train_f.shape == (90, fc7_units) and (train_f >= 0).all()  # fc7 after its ReLU
    one = model.forward(preprocess.eval(val_set.images[3])[None], train=False, until="fc7")
    assert np.allclose(one[0], val_f[3], rtol=1e-4, atol=1e-5)
    expected = naive_neighbours(val_f, train_f, 5)                    # (30, 5) over ALL queries
    present = sorted(set(val_y.tolist()))          # 30 images need not hold all 10 classes
    shown = [int(np.flatnonzero(val_y == c)[0]) for c in present[:4]]   # first of each class
    assert numbers["shown_queries"] == shown
    assert numbers["shown_neighbours"] == expected[shown].tolist()
    same = sum(train_y[j] == val_y[q] for q in range(30) for j in expected[q])
    first = sum(train_y[expected[q, 0]] == val_y[q] for q in range(30))
    assert (numbers["nn_matches"], numbers["one_nn_matches"]) == (same, first)
    assert numbers["nn_accuracy"] == pytest.approx(same / 150)
    assert numbers["one_nn_accuracy"] == pytest.approx(first / 30)
    assert {k: numbers[k] for k in ("dataset", "queries", "training_images", "k")} == \
        {"dataset": "builtin", "queries": 30, "training_images": 90, "k": 5}
    assert f"nearest-neighbour accuracy (k=5): {100 * same / 150:.2f}% ({same} of 150" in stdout
    assert f"1-NN accuracy: {100 * first / 30:.2f}% ({first} of 30" in stdout


def test_neighbour_rows_are_the_stored_images(grey_run, fashion_dir, tmp_path):
    """Grey data: the rows hold the stored one-channel images, not mean-subtracted crops."""
    saved = load_run_state(str(grey_run))
    args = figures.build_parser().parse_args(
        ["neighbours", str(grey_run), "--queries", "3", "--neighbours", "2", "--workers", "1"])
    numbers, rows = figures.find_neighbours(saved, args)
    train_set, val_set = build_datasets("fashion-mnist", fashion_dir,
                                        image_size=preprocess_from_checkpoint(saved).stored_size)
    assert len(rows) == 3 and all(len(found) == 2 for _, _, found in rows)
    for (query, label, found), q, js in zip(rows, numbers["shown_queries"],
                                            numbers["shown_neighbours"]):
        assert query.shape[-1] == 1 and query.dtype == np.uint8
        assert np.array_equal(query, val_set.images[q]) and label == val_set.labels[q]
        for (image, other), j in zip(found, js):
            assert np.array_equal(image, train_set.images[j]) and other == train_set.labels[j]
    status, _, err = h.run_main(figures, ["neighbours", str(grey_run), "--workers", "1"])
    assert status == 0, err
    assert_png(grey_run / "neighbours.png", min_bytes=10000)
    assert json.loads((grey_run / "neighbours.json").read_text())["queries"] == 20


# ---------------------------------------------------------------------------- bad input

def test_a_missing_checkpoint(tmp_path):
    missing = tmp_path / "nowhere"
    for command in ("filters", "neighbours"):
        status, _, err = h.run_main(figures, [command, str(missing)])
        assert status == 2
        assert h.one_error_line(err) == f"error: no checkpoint at {missing}"


def test_a_corrupt_checkpoint(tmp_path):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(b"PK\x03\x04 not really a zip")
    status, _, err = h.run_main(figures, ["neighbours", str(cut)])
    assert status == 2
    assert h.one_error_line(err) == f"error: checkpoint {cut} is truncated or corrupt (not a .npz archive)"


def test_a_data_set_with_other_classes(colour_run, fashion_dir, tmp_path):
    status, _, err = neighbours(colour_run, tmp_path / "n.png", "--dataset", "fashion-mnist",
                                "--data-dir", fashion_dir)
    assert status == 2
    line = h.one_error_line(err)
    assert line.startswith(f"error: {colour_run}/checkpoints/last.npz was trained on 10 classes "
                           f"(circle, square, ")
    assert f"but the fashion-mnist data set in {fashion_dir} has 10 classes (T-shirt/top" in line
    assert not (tmp_path / "n.png").exists()


def test_an_unknown_data_set_and_too_many_neighbours(colour_run, tmp_path):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        figures.main(["neighbours", str(colour_run), "--dataset", "imagenet"])
    assert exit_.value.code == 2 and "invalid choice: 'imagenet'" in err.getvalue()
    status, _, err = neighbours(colour_run, tmp_path / "n.png", "--limit-train", "3")
    assert status == 2
    assert h.one_error_line(err) == "error: --neighbours 5 needs at least 5 training images, there are 3"


def test_an_unwritable_output_exits_1(colour_run, tmp_path):
    out = tmp_path / "no-such-folder" / "f.png"
    status, _, err = h.run_main(figures, ["filters", str(colour_run), "--out", str(out)])
    assert status == 1
    assert str(out) in h.one_error_line(err)
