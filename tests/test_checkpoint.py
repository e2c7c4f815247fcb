"""Checkpoints: plain .npz files (no pickle), atomic writes, a SHA-256 checksum, and the
last/previous rotation that survives a corrupt or missing file."""
import contextlib
import io
import os
import zipfile

import numpy as np
import pytest

from minitorch_alexnet import checkpoint as ckpt
from minitorch_alexnet import train
from minitorch_alexnet.checkpoint import CheckpointError

import helpers_train as h

pytestmark = [pytest.mark.train, pytest.mark.faults]

META = {"epoch": 3, "batches_done": 7, "history": [{"loss": 1.5}], "classes": ["cat", "dog"],
        "config": {"lr": 0.01, "run_dir": None}}


def sample_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "model/conv1.weight": rng.standard_normal((4, 3, 5, 5)).astype(np.float32),
        "model/conv1.bias": np.zeros(4, np.float32),
        "optim/velocity": rng.standard_normal(10),                      # float64
        "preprocess/mean": rng.integers(0, 255, (6, 6, 3)).astype(np.float32),
        "counts": np.arange(5, dtype=np.int64),
        "scalar": np.float32(2.5),
    }


def assert_same_arrays(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name]), name


def listing(folder):
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------------------- round trip

def test_round_trip(tmp_path):
    arrays = sample_arrays()
    path = str(tmp_path / "sub" / "c.npz")             # the folder is created
    ckpt.save(path, arrays, META)
    loaded, meta = ckpt.load(path)
    assert_same_arrays(loaded, {k: np.asarray(v) for k, v in arrays.items()})
    assert meta == META
    assert listing(tmp_path / "sub") == ["c.npz"]      # no temporary file left


def test_plain_numpy_reads_a_checkpoint_without_pickle(tmp_path):
    path = str(tmp_path / "c.npz")
    arrays = sample_arrays()
    ckpt.save(path, arrays, META)
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == set(arrays) | {ckpt.META_KEY, ckpt.CHECKSUM_KEY}
        assert np.array_equal(data["model/conv1.weight"], arrays["model/conv1.weight"])
        assert data[ckpt.META_KEY].dtype == np.uint8
    with zipfile.ZipFile(path) as archive:               # a plain zip of .npy files
        assert archive.testzip() is None


def test_save_refuses_object_arrays_and_reserved_names(tmp_path):
    path = str(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"array 'bad' has dtype object"):
        ckpt.save(path, {"good": np.zeros(2), "bad": np.array([{"a": 1}, None], dtype=object)}, META)
    with pytest.raises(ValueError, match=r"reserved"):
        ckpt.save(path, {ckpt.META_KEY: np.zeros(2)}, META)
    assert listing(tmp_path) == []


# ---------------------------------------------------------------------------- damaged files

@pytest.fixture
def saved(tmp_path):
    path = str(tmp_path / "c.npz")
    arrays = sample_arrays()
    ckpt.save(path, arrays, META)
    with open(path, "rb") as handle:
        return path, handle.read(), arrays


def test_truncated_files(saved, tmp_path):
    path, data, _ = saved
    cut = str(tmp_path / "cut.npz")
    for length in (0, 1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 22,
                   len(data) - 1):
        with open(cut, "wb") as handle:
            handle.write(data[:length])
        with pytest.raises(CheckpointError, match=r"cut\.npz is truncated or corrupt"):
            ckpt.load(cut)


def test_flipped_bytes_in_array_data(saved, tmp_path):
    path, data, arrays = saved
    start = data.find(arrays["model/conv1.weight"].tobytes()[:16])
    assert start > 0
    flipped = bytearray(data)
    flipped[start + 40] ^= 0x10
    bad = str(tmp_path / "bad.npz")
    with open(bad, "wb") as handle:
        handle.write(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"bad\.npz is truncated or corrupt|checksum"):
        ckpt.load(bad)


def test_every_flipped_byte_is_caught_or_harmless(saved, tmp_path):
    """Flip each byte of a small checkpoint in turn: loading either fails with a
    CheckpointError or (a byte zip does not use, e.g. a timestamp) returns the same contents."""
    path, data, arrays = saved
    expected = {k: np.asarray(v) for k, v in arrays.items()}
    bad = str(tmp_path / "bad.npz")
    # Every byte of the zip headers (local, central directory, end record), every 5th elsewhere.
    positions = set(range(0, len(data), 5))
    start = data.find(b"PK")
    while start >= 0:
        positions.update(range(start, min(len(data), start + 100)))
        start = data.find(b"PK", start + 1)
    caught = 0
    for position in sorted(positions):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF if position % 2 else 0x01
        with open(bad, "wb") as handle:
            handle.write(bytes(flipped))
        try:
            loaded, meta = ckpt.load(bad)
        except CheckpointError as error:
            assert "bad.npz" in str(error)
            caught += 1
            continue
        assert_same_arrays(loaded, expected)
        assert meta == META
    assert caught > len(positions) // 2


def test_checksum_mismatch_in_a_valid_zip(saved, tmp_path):
    """Contents changed but the zip itself intact (its CRCs recomputed): the checksum catches it."""
    path, _, _ = saved
    with np.load(path, allow_pickle=False) as data:
        contents = {name: data[name] for name in data.files}
    contents["model/conv1.bias"] = contents["model/conv1.bias"] + 1
    forged = str(tmp_path / "forged.npz")
    np.savez(forged, **contents)
    with pytest.raises(CheckpointError, match=r"forged\.npz is corrupt: its checksum does not match"):
        ckpt.load(forged)
    # Changed meta text, same arrays.
    contents = dict(np.load(path, allow_pickle=False))
    contents[ckpt.META_KEY] = np.frombuffer(b'{"epoch": 99}', dtype=np.uint8)
    np.savez(forged, **contents)
    with pytest.raises(CheckpointError, match=r"checksum does not match"):
        ckpt.load(forged)


def test_not_a_checkpoint_and_missing(tmp_path):
    other = str(tmp_path / "other.npz")
    np.savez(other, a=np.zeros(3))
    with pytest.raises(CheckpointError, match=r"not a minitorch_alexnet checkpoint"):
        ckpt.load(other)
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*nothing\.npz"):
        ckpt.load(str(tmp_path / "nothing.npz"))
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=r"truncated or corrupt"):
        ckpt.load(str(text))


class CreatesMarker:
    """Unpickling this runs os.mkdir(marker)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickled_object_array_is_refused_and_runs_nothing(tmp_path, capsys):
    marker = str(tmp_path / "code-ran")
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    crafted = str(folder / "last.npz")
    # A real checkpoint's keys, with one array replaced by an object array holding a payload.
    ckpt.save(str(tmp_path / "real.npz"), sample_arrays(), META)
    contents = dict(np.load(str(tmp_path / "real.npz"), allow_pickle=False))
    contents["model/conv1.weight"] = np.array([CreatesMarker(marker)], dtype=object)
    np.savez(crafted, **contents)                      # allow_pickle: the object is pickled
    with np.load(crafted, allow_pickle=False) as data:   # (sanity: it really is an object array)
        with pytest.raises(ValueError, match="allow_pickle"):
            data["model/conv1.weight"]
    with pytest.raises(CheckpointError, match=r"last\.npz holds a pickled object array; it is refused"):
        ckpt.load(crafted)
    with pytest.raises(CheckpointError, match=r"no usable checkpoint in .*checkpoints"):
        ckpt.load_latest(str(folder), warn=None)
    # Through the command line: resuming from it stops with status 2, and nothing ran.
    status = train.main(["--resume", str(tmp_path / "run")])
    assert status == 2
    assert "no usable checkpoint" in capsys.readouterr().err
    assert not os.path.exists(marker)


# ---------------------------------------------------------------------------- rotation

def write_generations(folder, count):
    """Save ``count`` rotating checkpoints whose meta epoch is 1..count."""
    for epoch in range(1, count + 1):
        ckpt.save_rotating(str(folder), sample_arrays(epoch), dict(META, epoch=epoch))


def test_rotation_keeps_last_and_previous(tmp_path):
    write_generations(tmp_path, 3)
    assert listing(tmp_path) == ["last.npz", "previous.npz"]
    assert ckpt.load(str(tmp_path / "last.npz"))[1]["epoch"] == 3
    assert ckpt.load(str(tmp_path / "previous.npz"))[1]["epoch"] == 2
    arrays, meta, path = ckpt.load_latest(str(tmp_path), warn=None)
    assert meta["epoch"] == 3 and path.endswith("last.npz")
    assert_same_arrays(arrays, {k: np.asarray(v) for k, v in sample_arrays(3).items()})


def test_load_latest_falls_back_to_previous_with_a_warning(tmp_path):
    write_generations(tmp_path, 2)
    last = tmp_path / "last.npz"
    last.write_bytes(last.read_bytes()[:-50])            # truncated
    warnings = []
    arrays, meta, path = ckpt.load_latest(str(tmp_path), warn=warnings.append)
    assert meta["epoch"] == 1 and path.endswith("previous.npz")
    assert len(warnings) == 1
    assert "last.npz is truncated or corrupt" in warnings[0] and "falling back to" in warnings[0]
    # A missing last.npz (a crash between the two renames) falls back as well.
    last.unlink()
    arrays, meta, path = ckpt.load_latest(str(tmp_path), warn=warnings.append)
    assert meta["epoch"] == 1 and path.endswith("previous.npz")


def test_load_latest_uses_last_when_previous_is_missing(tmp_path):
    write_generations(tmp_path, 1)
    assert listing(tmp_path) == ["last.npz"]
    warnings = []
    _, meta, path = ckpt.load_latest(str(tmp_path), warn=warnings.append)
    assert meta["epoch"] == 1 and path.endswith("last.npz") and warnings == []


def test_load_latest_with_nothing_usable_names_the_folder(tmp_path):
    with pytest.raises(CheckpointError, match=rf"no usable checkpoint in {tmp_path}"):
        ckpt.load_latest(str(tmp_path), warn=None)
    write_generations(tmp_path, 2)
    for name in ("last.npz", "previous.npz"):
        path = tmp_path / name
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=rf"no usable checkpoint in {tmp_path}: .*last\.npz is truncated"
                                              rf".*previous\.npz is truncated"):
        ckpt.load_latest(str(tmp_path), warn=None)


def test_failed_write_keeps_the_old_checkpoint_and_leaves_no_temporary(tmp_path, monkeypatch):
    write_generations(tmp_path, 2)
    before = {name: (tmp_path / name).read_bytes() for name in ("last.npz", "previous.npz")}

    def broken_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    # The error names the file meant, not the temporary one that was being written.
    with pytest.raises(ckpt.WriteError, match=rf"^cannot write {tmp_path}/last\.npz: No space left on device$"):
        ckpt.save_rotating(str(tmp_path), sample_arrays(9), dict(META, epoch=9))
    with pytest.raises(ckpt.WriteError, match=rf"^cannot write {tmp_path}/last\.npz: No space left on device$"):
        ckpt.save(str(tmp_path / "last.npz"), sample_arrays(9), dict(META, epoch=9))
    monkeypatch.undo()
    assert listing(tmp_path) == ["last.npz", "previous.npz"]
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data
    assert ckpt.load_latest(str(tmp_path), warn=None)[1]["epoch"] == 2

    # An interruption (KeyboardInterrupt) during the write cleans up too.
    def interrupted_savez(handle, **arrays):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_rotating(str(tmp_path), sample_arrays(9), dict(META, epoch=9))
    monkeypatch.undo()
    assert listing(tmp_path) == ["last.npz", "previous.npz"]


# ---------------------------------------------------------------------------- resuming a run

def test_resume_from_previous_when_last_is_corrupt(tmp_path):
    """A run whose last.npz (end of epoch 2) is damaged resumes from previous.npz (end of
    epoch 1), trains epoch 2 again and ends with the uninterrupted run's weights."""
    run_dir = tmp_path / "run"
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        assert train.main(h.tiny_args(run_dir, train=48, val=16, epochs=2)) == 0
    reference_weights = h.final_weights(run_dir)
    reference_metrics = h.deterministic_metrics(run_dir)

    last = run_dir / "checkpoints" / "last.npz"
    damaged = bytearray(last.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    last.write_bytes(bytes(damaged))

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert train.main(["--resume", str(run_dir), "--workers", "1"]) == 0
    text = out.getvalue()
    assert "warning:" in text and "falling back to" in text and "previous.npz" in text
    assert "resuming" in text and "epoch 2, step 0" in text
    assert "epoch 2/2:" in text and "epoch 1/2:" not in text
    h.assert_same_weights(h.final_weights(run_dir), reference_weights)
    assert h.deterministic_metrics(run_dir) == reference_metrics


def test_a_checkpoint_of_another_format_is_refused_by_name(tmp_path):
    """A file that checks out but holds no run state of this version (another ``format``) is
    refused by train --resume, evaluate and predict with status 2, naming both formats."""
    from minitorch_alexnet import evaluate, predict
    from minitorch_alexnet.run_state import FORMAT

    run_dir = tmp_path / "run"
    ckpt.save(str(run_dir / "checkpoints" / "last.npz"), sample_arrays(),
              dict(META, format="minitorch_alexnet checkpoint 2"))
    image = h.write_image(str(tmp_path / "a.png"))
    for module, argv in ((train, ["--resume", str(run_dir)]), (evaluate, [str(run_dir)]),
                         (predict, [str(run_dir), image])):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            assert module.main(argv) == 2, module.__name__
        assert "'minitorch_alexnet checkpoint 2'" in err.getvalue(), err.getvalue()
        assert repr(FORMAT) in err.getvalue()
