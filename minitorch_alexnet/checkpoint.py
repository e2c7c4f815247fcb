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

This module is the file format only; ``run_state.py`` decides which arrays and which meta a
training run stores, and reads them back for resuming, evaluating and predicting.
"""
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
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def load(path):
    """Read and verify a checkpoint: returns ``(arrays, meta)``; raises CheckpointError."""
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
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
    """Save as ``directory/last.npz``, keeping the one before as ``previous.npz``."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):          # leftovers of a write that was killed
        if name.startswith(".tmp-") and name.endswith(".npz"):
            os.unlink(os.path.join(directory, name))
    last, previous = os.path.join(directory, LAST), os.path.join(directory, PREVIOUS)
    # Write the new file first under a temporary name (inside save), then rotate: between the
    # two renames below last.npz is briefly missing, and load_latest then uses previous.npz.
    staging = os.path.join(directory, ".staging.npz")
    save(staging, arrays, meta)
    if os.path.exists(last):
        os.replace(last, previous)
    os.replace(staging, last)
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
