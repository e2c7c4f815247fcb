"""Checkpoints: ``.npz`` files that load without pickle, written atomically, with a checksum.

A checkpoint holds named NumPy arrays (weights, optimizer velocities, the mean image, ...) and
one JSON document (``meta``: the configuration, the epoch and step, the learning-rate schedule,
random-generator states, metrics so far, class names). Everything is stored as plain arrays, so
``numpy.load(path, allow_pickle=False)`` reads it and loading never runs code.

Writing is atomic: the file is written under a temporary name in the same folder, flushed and
fsynced, and only then renamed over ``last.npz`` (``os.replace`` is atomic on POSIX), after the
previous ``last.npz`` has been renamed to ``previous.npz``. A crash at any moment leaves at least
one complete checkpoint. Each file carries a SHA-256 checksum of its contents; a truncated or
corrupt file is detected on load, reported, and ``load_latest`` falls back to the previous one.

A write that fails (a full disk, ENOSPC; a read-only one, EROFS; no permission, EACCES) removes
its temporary file, leaves ``last.npz`` and ``previous.npz`` as they were, and raises
``WriteError``, whose message names the file meant and the reason ("cannot write
runs/x/checkpoints/last.npz: No space left on device"). ``write_text_atomically`` gives the
run's small text files (``config.json``, ``metrics.jsonl``) the same treatment.

This module is the file format only; ``run_state.py`` decides which arrays and which meta a
training run stores, and reads them back for resuming, evaluating and predicting.
"""
import contextlib
import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

LAST, PREVIOUS = "last.npz", "previous.npz"
META_KEY, CHECKSUM_KEY = "__meta__", "__checksum__"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt, or not one of ours."""


class WriteError(OSError):
    """A file could not be written (disk full, read-only, no permission): ``path`` is the file
    meant (not a temporary name), ``reason`` the system's words for the error."""

    def __init__(self, path, error):
        self.path = str(path)
        self.reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        super().__init__(getattr(error, "errno", None), self.reason, self.path)

    def __str__(self):
        return f"cannot write {self.path}: {self.reason}"

    def __reduce__(self):
        return (type(self), (self.path, OSError(self.errno, self.reason)))


@contextlib.contextmanager
def writing(path):
    """Turn any OSError raised inside the block into a ``WriteError`` naming ``path``: the
    low-level error names a temporary file, or nothing at all (a failed ``write``)."""
    try:
        yield
    except OSError as error:
        raise WriteError(path, error) from None


def _remove_quietly(path):
    """Remove a temporary file if it is there; a failure to remove it is not a new error."""
    try:
        if os.path.exists(path):
            os.unlink(path)
    except OSError:
        pass


def write_text_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file and a rename, so a reader sees the
    old file or the new one, never half of one; raises ``WriteError`` (temporary removed)."""
    temporary = path + ".tmp"
    with writing(path):
        try:
            with open(temporary, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            _remove_quietly(temporary)
            raise


def _digest(arrays, meta_text):
    """SHA-256 over the meta JSON and every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256(meta_text.encode("utf-8"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode("utf-8"))
        digest.update(array.tobytes())
    return digest.hexdigest()


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(path, arrays, meta):
    """Write arrays (name -> array) and meta (JSON-serialisable dict) to ``path`` atomically."""
    for name, value in arrays.items():
        if name in (META_KEY, CHECKSUM_KEY):
            raise ValueError(f"array name {name!r} is reserved")
        if np.asarray(value).dtype == object:
            raise ValueError(f"array {name!r} has dtype object, which cannot be saved without pickle")
    meta_text = json.dumps(meta, sort_keys=True)
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload[META_KEY] = np.frombuffer(meta_text.encode("utf-8"), dtype=np.uint8)
    payload[CHECKSUM_KEY] = np.frombuffer(_digest(arrays, meta_text).encode("ascii"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    with writing(path):
        os.makedirs(directory, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            _fsync_directory(directory)
        except BaseException:
            _remove_quietly(temporary)
            raise


def load(path):
    """Read and verify a checkpoint: returns ``(arrays, meta)``; raises CheckpointError."""
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    if os.path.isdir(path) or not os.access(path, os.R_OK):
        raise CheckpointError(f"cannot read checkpoint {path}: "
                              f"{'it is a directory' if os.path.isdir(path) else 'permission denied'}")
    if not zipfile.is_zipfile(path):     # else numpy would guess at a pickle and say so
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt (not a .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError,
            NotImplementedError, RuntimeError) as error:
        # A flipped byte in a zip header can also read as an unsupported zip version or
        # compression (NotImplementedError) or as an encrypted member (RuntimeError).
        if "Object arrays" in str(error):
            raise CheckpointError(f"checkpoint {path} holds a pickled object array; it is refused "
                                  f"because unpickling can run code") from None
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({error})") from None
    if META_KEY not in arrays or CHECKSUM_KEY not in arrays:
        raise CheckpointError(f"{path} is not a minitorch_alexnet checkpoint (no metadata or checksum)")
    meta_text = arrays.pop(META_KEY).tobytes().decode("utf-8", errors="replace")
    stored = arrays.pop(CHECKSUM_KEY).tobytes().decode("ascii", errors="replace")
    if _digest(arrays, meta_text) != stored:
        raise CheckpointError(f"checkpoint {path} is corrupt: its checksum does not match its contents")
    return arrays, json.loads(meta_text)


def save_rotating(directory, arrays, meta):
    """Save as ``directory/last.npz``, keeping the one before as ``previous.npz``.

    Raises ``WriteError`` naming ``last.npz`` if the new file cannot be written; the old
    ``last.npz`` and ``previous.npz`` are then untouched and no temporary file is left."""
    last, previous = os.path.join(directory, LAST), os.path.join(directory, PREVIOUS)
    staging = os.path.join(directory, ".staging.npz")
    with writing(last):
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):          # leftovers of a write that was killed
            if name.startswith(".tmp-") and name.endswith(".npz"):
                os.unlink(os.path.join(directory, name))
        # Write the new file first under a temporary name (inside save), then rotate: between
        # the two renames below last.npz is briefly missing, and load_latest uses previous.npz.
        try:
            save(staging, arrays, meta)
            if os.path.exists(last):
                os.replace(last, previous)
            os.replace(staging, last)
        except BaseException:
            _remove_quietly(staging)
            raise
        _fsync_directory(directory)
    return last


def load_latest(directory, warn=print):
    """Load ``last.npz``, or ``previous.npz`` if the last one is missing or corrupt.

    Returns ``(arrays, meta, path)``; raises CheckpointError if neither loads.
    """
    problems = []
    for name in (LAST, PREVIOUS):
        path = os.path.join(directory, name)
        try:
            arrays, meta = load(path)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        if problems and warn is not None:
            warn(f"warning: {problems[0]}; falling back to {path}")
        return arrays, meta, path
    raise CheckpointError(f"no usable checkpoint in {directory}: " + "; ".join(problems))


def load_file_or_directory(path, warn=print):
    """A checkpoint file, or a run directory / its checkpoints folder (the latest good one)."""
    if os.path.isdir(path):
        folder = os.path.join(path, "checkpoints") if os.path.isdir(os.path.join(path, "checkpoints")) else path
        return load_latest(folder, warn=warn)
    arrays, meta = load(path)
    return arrays, meta, path
