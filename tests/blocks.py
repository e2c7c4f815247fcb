"""Force the CPU layers' block split (``functional/_parallel.py``) down to one plane or element
per block, so that tests on small arrays run the split path: many blocks on the thread pool."""
import contextlib

from minitorch_alexnet.functional import _parallel


@contextlib.contextmanager
def one_item_per_block():
    saved = _parallel.BLOCK_BYTES
    _parallel.BLOCK_BYTES = 1
    try:
        yield
    finally:
        _parallel.BLOCK_BYTES = saved
