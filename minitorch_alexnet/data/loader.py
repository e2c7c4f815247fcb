"""``DataLoader``: batches in a reproducible order, decoded and augmented in background threads.

Reproducibility is the design constraint. Every random choice is a pure function of
(seed, epoch, sample index)::

    order of epoch e          = default_rng([seed, e]).permutation(n)       (if shuffle)
    augmentation of sample i  = transform.train(image, default_rng([seed, e, i]))

where i is the sample's index in the data set, not its position in the batch. Batch b of
epoch e holds ``order[b * B : (b + 1) * B]``. So ``loader.epoch(e, start_batch=k)`` yields
exactly the batches k, k+1, ... that an uninterrupted ``loader.epoch(e)`` yields, whatever
happened before: a run killed in the middle of an epoch resumes bit for bit.

Workers: a pool of ``num_workers`` threads, each building whole batches (load, decode,
transform, stack). Threads suffice because Pillow's decoders and NumPy's array operations
release the GIL, and they share the data set without copying it. At most
``max(prefetch, num_workers)`` batches are in flight; batches are handed out strictly in order,
whichever worker finishes first. ``num_workers=0`` builds each batch in the calling thread.

Bad images: a ``BadImageError`` from ``dataset.load`` (truncated, empty, not an image, ...)
skips that image, so its batch comes out one shorter (it is *not* replaced: replacing would
make batch contents depend on which files are broken elsewhere). A batch whose images are all
bad is not yielded at all. ``loader.bad_images`` lists the ``(path, reason)`` pairs of the
current epoch, for the end-of-epoch report. If more than ``max_bad_fraction`` of the images
scheduled for the epoch (from ``start_batch`` on) are bad, the loader raises ``DataError`` as
soon as the count passes that limit.
"""
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import BadImageError, DataError


def _default_transform(image, rng=None):
    """No preprocessing: uint8 (H, W, C) -> float32 (C, H, W), values left at 0..255."""
    return np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1))


class DataLoader:
    """Iterate over a data set in batches ``(x float32 (B, C, H, W), labels int64 (B,))``.

    Args:
        dataset: an object with ``__len__`` and ``load(index) -> (image uint8 (H, W, C), label)``.
        batch_size: B.
        shuffle: a new seeded order every epoch (default: ``train``).
        seed: the seed of the order and of the augmentation.
        transform: a ``Preprocess`` (``train(image, rng)``, ``eval(image)``,
            ``eval_ten_crop(image)``), or a function ``f(image, rng)`` used in both modes
            (``rng`` is None when ``train=False``), or None (float32 CHW, no scaling).
        train: augment with ``transform.train``; otherwise ``transform.eval``.
        ten_crop: with ``train=False``, yield x of shape (B, 10, C, H, W) from
            ``transform.eval_ten_crop`` (average the ten softmax outputs per image).
        num_workers: background threads (0: build batches in the calling thread).
        drop_last: drop the last batch if it has fewer than B images.
        prefetch: batches prepared ahead of the one being consumed.
        max_bad_fraction: the fraction of unreadable images tolerated per epoch.
    """

    def __init__(self, dataset, batch_size, *, shuffle=None, seed=0, transform=None,
                 train=True, ten_crop=False, num_workers=2, drop_last=False, prefetch=2,
                 max_bad_fraction=0.01):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if ten_crop and train:
            raise ValueError("ten_crop is a test-time view: use it with train=False")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = train if shuffle is None else bool(shuffle)
        self.seed = int(seed)
        self.transform = transform if transform is not None else _default_transform
        self.train = bool(train)
        self.ten_crop = bool(ten_crop)
        self.num_workers = int(num_workers)
        self.drop_last = bool(drop_last)
        self.prefetch = int(prefetch)
        self.max_bad_fraction = float(max_bad_fraction)
        self.bad_images = []

    def __len__(self):
        """Batches per epoch: floor(n / B) with ``drop_last``, else ceil(n / B)."""
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    @property
    def num_bad(self):
        """How many images of the current epoch could not be read."""
        return len(self.bad_images)

    def order(self, epoch):
        """The sample indices of ``epoch`` in the order they are visited."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def sample_rng(self, epoch, index):
        """The random generator that augments data-set sample ``index`` in ``epoch``."""
        return np.random.default_rng([self.seed, epoch, int(index)])

    def _apply(self, image, epoch, index):
        t = self.transform
        if self.train:
            rng = self.sample_rng(epoch, index)
            return t.train(image, rng) if hasattr(t, "train") else t(image, rng)
        if self.ten_crop:
            return t.eval_ten_crop(image)
        return t.eval(image) if hasattr(t, "eval") else t(image, None)

    def _build_batch(self, epoch, indices):
        """Load and transform the samples ``indices``: (x, labels, bad list)."""
        xs, labels, bad = [], [], []
        for i in indices:
            try:
                image, label = self.dataset.load(int(i))
            except BadImageError as error:
                bad.append((error.path, error.reason))
                continue
            xs.append(self._apply(image, epoch, i))
            labels.append(label)
        if not xs:
            return None, np.zeros(0, np.int64), bad
        try:
            x = np.stack(xs).astype(np.float32, copy=False)
        except ValueError:
            shapes = sorted({tuple(v.shape) for v in xs})
            raise DataError(f"samples of one batch have different shapes {shapes[:3]}: give "
                            "the data set an image_size or use a Preprocess transform") from None
        return x, np.asarray(labels, dtype=np.int64), bad

    def epoch(self, epoch, start_batch=0):
        """Yield the batches of ``epoch`` from batch ``start_batch`` on (see the module docs)."""
        self.bad_images = []
        order = self.order(epoch)
        n_batches = len(self)
        b = self.batch_size
        # Batch k covers positions [k * B, (k + 1) * B) of `order`, the last one clipped at n.
        chunks = [order[k * b:(k + 1) * b] for k in range(start_batch, n_batches)]
        scheduled = sum(len(c) for c in chunks)
        limit = self.max_bad_fraction * scheduled

        def account(bad):
            self.bad_images.extend(bad)
            if bad and len(self.bad_images) > limit:
                shown = "; ".join(f"{p}: {r}" for p, r in self.bad_images[:3])
                raise DataError(
                    f"{len(self.bad_images)} of the {scheduled} images of epoch {epoch} could "
                    f"not be read, more than max_bad_fraction={self.max_bad_fraction:g}; "
                    f"first ones: {shown}")

        if self.num_workers <= 0:
            for chunk in chunks:
                x, y, bad = self._build_batch(epoch, chunk)
                account(bad)
                if len(y):
                    yield x, y
            return

        window = max(self.prefetch, self.num_workers, 1)
        pool = ThreadPoolExecutor(max_workers=self.num_workers, thread_name_prefix="data")
        pending = deque()
        todo = iter(chunks)
        try:
            for chunk in todo:
                pending.append(pool.submit(self._build_batch, epoch, chunk))
                if len(pending) >= window:
                    break
            while pending:
                x, y, bad = pending.popleft().result()   # strictly in batch order
                nxt = next(todo, None)
                if nxt is not None:                      # keep the window full while we yield
                    pending.append(pool.submit(self._build_batch, epoch, nxt))
                account(bad)
                if len(y):
                    yield x, y
        finally:
            # Also runs when the consumer stops early or an error is raised.
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self):
        """Epoch 0 from the start; use ``epoch(e, start_batch)`` in a training loop."""
        return self.epoch(0)
