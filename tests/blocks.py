"""Force the CPU layers' block split (``functional/_parallel.py``) down to one plane or element
per block, so that tests on small arrays run the split path: many blocks on the thread pool."""
import contextlib

from minitorch_alexnet.functional import _parallel


@contextlib.contextmanager
def one_item_per_block(block_bytes=1):
    """Blocks of ``block_bytes`` (one plane or element each by default)."""
    saved = _parallel.FORCED_BLOCK_BYTES
    _parallel.FORCED_BLOCK_BYTES = block_bytes
    try:
        yield
    finally:
        _parallel.FORCED_BLOCK_BYTES = saved
