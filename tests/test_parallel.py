"""The block split of the CPU's memory-bound layers (``functional/_parallel.py``): blocks
cover every item once, in order, errors reach the caller, and a layer computed block by block
equals the same layer computed in one block, bit for bit."""
import platform
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alexnet import functional as F
from minitorch_alexnet.functional import _parallel

from blocks import one_item_per_block

pytestmark = [pytest.mark.pool, pytest.mark.lrn, pytest.mark.relu]


@given(count=st.integers(1, 500), item_bytes=st.integers(1, 5000), block_bytes=st.integers(1, 20000))
def test_blocks_cover_every_item_once_in_order(count, item_bytes, block_bytes):
    blocks = _parallel.blocks_of_planes(count, item_bytes, block_bytes)
    assert blocks[0][0] == 0 and blocks[-1][1] == count
    assert all(first < last for first, last in blocks)
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))      # no gap, no overlap
    if count >= _parallel.worker_count():
        assert len(blocks) >= _parallel.worker_count()               # every core gets work


def test_run_blocks_calls_every_block_and_reraises(monkeypatch):
    monkeypatch.setenv("MINITORCH_THREADS", "2")
    seen, lock = [], threading.Lock()

    def record(first, last):
        with lock:
            seen.append((first, last))

    blocks = [(0, 3), (3, 5), (5, 9)]
    _parallel.run_blocks(record, blocks)
    assert sorted(seen) == blocks

    def fail(first, last):
        if first == 3:
            raise ValueError("block 3 failed")

    with pytest.raises(ValueError, match="block 3 failed"):
        _parallel.run_blocks(fail, blocks)


def test_forcing_small_blocks_splits_every_layer(monkeypatch):
    # the tests' one_item_per_block must reach every call site, whatever block size it asks for
    calls = []
    original = _parallel.run_blocks
    monkeypatch.setattr(_parallel, "run_blocks", lambda f, blocks: (calls.append(len(blocks)), original(f, blocks)))
    for module in ("activation", "pooling", "lrn", "conv"):
        monkeypatch.setattr(f"minitorch_alexnet.functional.{module}.run_blocks", _parallel.run_blocks)
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 5))
    with one_item_per_block():
        for forward, backward in ((F.relu_forward, F.relu_backward), (F.max_pool2d_forward, F.max_pool2d_backward),
                                  (F.lrn_forward, F.lrn_backward)):
            y, cache = forward(x)
            backward(np.ones_like(y), cache)
        F.bias_gradient(x)
    assert len(calls) == 6 and min(calls) >= 3, calls      # pooling's backward is one np.add.at


def test_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MINITORCH_THREADS", "3")
    assert _parallel.worker_count() == 3
    monkeypatch.setenv("MINITORCH_THREADS", "1")
    assert _parallel.worker_count() == 1


shapes = st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(3, 9), st.integers(3, 9))


def forward_backward(forward, backward, x, **options):
    y, cache = forward(x, **options)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    return y, backward(dy, cache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=shapes, seed=st.integers(0, 100),
       layer=st.sampled_from(["pool 3/2", "pool 2/2 pad 1", "lrn", "relu"]))
def test_block_by_block_equals_one_block(shape, seed, layer, dtype):
    # a few distinct integers: many ties for the pooling's tie rule
    x = np.random.default_rng(seed).integers(-3, 4, size=shape).astype(dtype)
    forward, backward, options = {
        "pool 3/2": (F.max_pool2d_forward, F.max_pool2d_backward, dict(size=3, stride=2)),
        "pool 2/2 pad 1": (F.max_pool2d_forward, F.max_pool2d_backward, dict(size=2, stride=2, pad=1)),
        "lrn": (F.lrn_forward, F.lrn_backward, dict(size=5, alpha=0.1, beta=0.75, k=2.0)),
        "relu": (F.relu_forward, F.relu_backward, {}),
    }[layer]
    y_one, dx_one = forward_backward(forward, backward, x, **options)
    with one_item_per_block():
        y_split, dx_split = forward_backward(forward, backward, x, **options)
    np.testing.assert_array_equal(y_split, y_one)
    np.testing.assert_array_equal(dx_split, dx_one)


def test_keep_freed_memory_is_idempotent_and_says_whether_it_applied():
    from minitorch_alexnet.backend import keep_freed_memory
    first = keep_freed_memory()
    assert isinstance(first, bool) and keep_freed_memory() is first
    if platform.libc_ver()[0] == "glibc":
        assert first                       # glibc's mallopt took both settings
    # a kept-memory process still allocates and frees as before
    arrays = [np.ones(2**20, np.float32) for _ in range(3)]
    del arrays
    assert np.zeros(2**22, np.float32).sum() == 0


def test_one_pass_layers_split_only_arrays_worth_a_thread(monkeypatch):
    monkeypatch.setenv("MINITORCH_THREADS", "2")
    assert _parallel.one_block_per_worker(1000, 4000) == [(0, 1000)]        # under SMALL_BYTES
    big = _parallel.SMALL_BYTES // 4
    assert _parallel.one_block_per_worker(big, 4 * big) == [(0, big // 2), (big // 2, big)]


def test_blocks_see_the_callers_numpy_error_state(monkeypatch):
    # np.errstate lives in a context variable: the worker threads must run in the caller's
    monkeypatch.setenv("MINITORCH_THREADS", "2")
    seen = []

    def record(first, last):
        seen.append(np.geterr()["invalid"])

    with np.errstate(invalid="raise"):
        _parallel.run_blocks(record, [(0, 1), (1, 2), (2, 3)])
    assert seen == ["raise"] * 3
