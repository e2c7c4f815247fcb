"""``DataLoader``: batches in a reproducible order, decoded and augmented in background threads.

Reproducibility is the design constraint. Every random choice is a pure function of
(seed, epoch, sample index)::

    order of epoch e          = default_rng([seed, e]).permutation(n)       (if shuffle)
    draws of epoch e          = transform.draw(n, default_rng([seed, e, AUGMENTATION_KEY]))
    augmentation of sample i  = transform.augment(image_i, *draws.row(i))   (a Preprocess)
                              = transform(image_i, default_rng([seed, e, i]))  (any other function)

where i is the sample's index in the data set, not its position in the batch, and n the size of
the data set. The draws of an epoch are arrays with one row per sample (crop top, crop left,
flip, the colour-shift ``a_i``), made once when the epoch starts: creating a generator per
image (what this loader did before, with ``default_rng([seed, e, i])`` for a ``Preprocess`` too)
takes 20-40 us, more than augmenting a small image, so runs and checkpoints made before that
change see other crops. Batch b of epoch e holds ``order[b * B : (b + 1) * B]``. So
``loader.epoch(e, start_batch=k)`` yields exactly the batches k, k+1, ... that an
uninterrupted ``loader.epoch(e)`` yields, whatever happened before: a run killed in the middle
of an epoch resumes bit for bit.

Two ways to build a batch, with the same result for images already at the stored size S:

- *whole batch* (``batch_path``), for an in-memory ``ArrayDataset`` with a ``Preprocess``
  (not ten-crop): the batch's images are gathered from ``dataset.images`` and augmented by
  ``Preprocess.train_batch`` / ``eval_batch`` in a few array operations. The images must be at
  the stored size S: if ``dataset.images`` is not, the loader stores the whole array once
  (``Preprocess.store_images``: resized as ``dataset_statistics`` does, or padded) and keeps
  it, when the result fits in ``max_stored_bytes`` (2 GiB by default; CIFAR-10 at 36 x 36 is
  194 MB); otherwise it stores each batch's images on their own. (Pillow, which resizes image by image, rounds
  some pixels one grey level away from ``resize_images``' vectorised bilinear enlargement.)
- *image by image*, for everything else (folder data sets decoded from disk, other
  transforms): ``dataset.load``, the transform of each image, ``np.stack``.

Workers: a pool of ``num_workers`` threads, each building whole batches (load, decode,
transform, stack). Threads suffice because Pillow's decoders and NumPy's array operations
release the GIL, and they share the data set without copying it. At most
``max(prefetch, num_workers)`` batches are in flight; batches are handed out strictly in order,
whichever worker finishes first. ``num_workers=0`` builds each batch in the calling thread.
The whole-batch path uses at most one thread: it builds a batch of 64 images of 36 x 36 in
about half a millisecond (1500-2000 batches/s alone on a 2-core machine, against 400 image by
image; ``python -m minitorch_alexnet.bench input``), hundreds of times what a training step on
the CPU consumes (2-3 batches/s), so a second thread could only take time from the step. (With
0, 1 or 2 threads the trainer's loop measured the same, within the 10% noise of that machine.)

Several processes (``part=(rank, size)``): each global batch (the B samples above) is cut
into ``size`` contiguous slices, as equal as they come (``np.array_split``), and this loader
builds only slice ``rank``. Since every random choice depends on the sample index alone, the
slices of all ranks together are exactly the batch one process builds. ``batches`` yields a
``Batch`` (x, labels, indices) for every scheduled batch, also an empty one, so that ranks
stay in step; the bad-image limit applies to this part's share of the epoch.

Bad images: a ``BadImageError`` from ``dataset.load`` (truncated, empty, not an image, ...)
skips that image, so its batch comes out one shorter (it is *not* replaced: replacing would
make batch contents depend on which files are broken elsewhere). A batch whose images are all
bad is not yielded at all. ``loader.bad_images`` lists the ``(path, reason)`` pairs of the
current epoch met by this call of ``epoch``, for the end-of-epoch report. If more than
``max_bad_fraction`` of the images of the whole epoch are bad, the loader raises ``DataError``
as soon as the count passes that limit. After a resume in the middle of an epoch the count
goes on from where it stood: ``epoch(e, start_batch=k, earlier_bad=pairs)`` takes the bad
images met in batches 0..k-1 (the trainer keeps them in its checkpoint), so the budget covers
the whole epoch whether or not the run was interrupted.
"""
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from .arrays import ArrayDataset
from .errors import BadImageError, DataError
from .transforms import Preprocess

# The last word of the augmentation generator's key [seed, epoch, AUGMENTATION_KEY]. It lies
# above any sample index, so the key never equals a per-sample key [seed, epoch, i].
AUGMENTATION_KEY = 2**32 - 1
MAX_STORED_BYTES = 2 * 2**30


class Batch(NamedTuple):
    """One batch: x float32 (B, C, H, W) (None when empty), labels int64 (B,), and indices
    (B,), each image's index in the data set (what keys its augmentation and dropout)."""
    x: object
    labels: np.ndarray
    indices: np.ndarray


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
        transform: a ``Preprocess`` (``draw``, ``augment``, ``train_batch``, ``eval``, ...), or
            a function ``f(image, rng)`` used in both modes (``rng`` is None when
            ``train=False``), or None (float32 CHW, no scaling).
        train: augment (random crops, flips, colour); otherwise ``transform.eval``.
        ten_crop: with ``train=False``, yield x of shape (B, 10, C, H, W) from
            ``transform.eval_ten_crop`` (average the ten softmax outputs per image).
        num_workers: background threads (0: build batches in the calling thread); the
            whole-batch path uses at most one.
        drop_last: drop the last batch if it has fewer than B images.
        prefetch: batches prepared ahead of the one being consumed.
        max_bad_fraction: the fraction of unreadable images tolerated per epoch.
        batch_path: build batches with ``Preprocess.train_batch`` / ``eval_batch`` (see the
            module docs). None: whenever possible; False: image by image; True: insist.
        max_stored_bytes: the most memory spent on a resized copy of ``dataset.images``.
        part: (rank, size): build only slice ``rank`` of ``size`` of every batch.
    """

    def __init__(self, dataset, batch_size, *, shuffle=None, seed=0, transform=None,
                 train=True, ten_crop=False, num_workers=2, drop_last=False, prefetch=2,
                 max_bad_fraction=0.01, batch_path=None, max_stored_bytes=MAX_STORED_BYTES,
                 part=(0, 1)):
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
        self.max_stored_bytes = int(max_stored_bytes)
        self.rank, self.size = (int(v) for v in part)
        if not 0 <= self.rank < self.size:
            raise ValueError(f"part must be (rank, size) with 0 <= rank < size, got {part}")
        self.bad_images = []
        why_not = self._why_not_batch_path()
        if batch_path and why_not:
            raise ValueError(f"batch_path=True is not possible here: {why_not}")
        self.batch_path = not why_not if batch_path is None else bool(batch_path)
        self._stored_images = None       # dataset.images at the stored size, made on first use

    def _why_not_batch_path(self):
        """Why batches cannot be built whole (an empty string when they can)."""
        if not isinstance(self.dataset, ArrayDataset):
            return "the data set is not an in-memory ArrayDataset"
        if not isinstance(self.transform, Preprocess):
            return "the transform is not a Preprocess"
        if self.ten_crop:
            return "ten_crop is built image by image"
        return ""

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

    def augmentation_draws(self, epoch):
        """The random choices of every sample in ``epoch`` (row i for data-set sample i), or
        None when the transform is not a ``Preprocess`` or nothing is augmented."""
        if not (self.train and isinstance(self.transform, Preprocess)):
            return None
        rng = np.random.default_rng([self.seed, epoch, AUGMENTATION_KEY])
        return self.transform.draw(len(self.dataset), rng)

    def sample_rng(self, epoch, index):
        """The generator a transform that is not a ``Preprocess`` gets for sample ``index``."""
        return np.random.default_rng([self.seed, epoch, int(index)])

    # ---- building one batch ------------------------------------------------------------------
    def _build_batch(self, epoch, indices, draws):
        """The samples ``indices`` as (x, labels, indices read, bad list), by either path."""
        if not len(indices):
            return None, np.zeros(0, np.int64), indices, []
        if self.batch_path:
            return self._build_whole_batch(indices, draws)
        return self._build_batch_image_by_image(epoch, indices, draws)

    def stored_images(self):
        """``dataset.images`` at the transform's stored size S: the array itself, or a stored
        (resized or padded: ``Preprocess.store_images``) copy made once and kept; None when
        that copy would exceed ``max_stored_bytes``."""
        images = self.dataset.images
        s = self.transform.stored_size
        if images.shape[1:3] == (s, s):
            return images
        if self._stored_images is None:
            n, channels = images.shape[0], images.shape[3]
            if n * s * s * channels * images.itemsize > self.max_stored_bytes:
                return None
            self._stored_images = self.transform.store_images(images)
        return self._stored_images

    def _build_whole_batch(self, indices, draws):
        """Gather the batch from memory and augment it in a few array operations."""
        stored = self.stored_images()
        if stored is not None:
            images = stored[indices]                                # (B, S, S, C) uint8
        else:                                     # too big to keep stored: store this batch
            images = self.transform.store_images(self.dataset.images[indices])
        if self.train:
            x = self.transform.train_batch(images, draws.take(indices))
        else:
            x = self.transform.eval_batch(images)
        return x, self.dataset.labels[indices], indices, []

    def _apply(self, image, epoch, index, draws):
        t = self.transform
        if self.train:
            if draws is not None:                             # a Preprocess: row i of the epoch
                return t.augment(image, *draws.row(index))
            rng = self.sample_rng(epoch, index)
            return t.train(image, rng) if hasattr(t, "train") else t(image, rng)
        if self.ten_crop:
            return t.eval_ten_crop(image)
        return t.eval(image) if hasattr(t, "eval") else t(image, None)

    def _build_batch_image_by_image(self, epoch, indices, draws):
        """Load and transform the samples ``indices`` one by one: (x, labels, indices read,
        bad list)."""
        xs, labels, read, bad = [], [], [], []
        for i in indices:
            try:
                image, label = self.dataset.load(int(i))
            except BadImageError as error:
                bad.append((error.path, error.reason))
                continue
            xs.append(self._apply(image, epoch, int(i), draws))
            labels.append(label)
            read.append(int(i))
        read = np.asarray(read, dtype=np.int64)
        if not xs:
            return None, np.zeros(0, np.int64), read, bad
        try:
            x = np.stack(xs).astype(np.float32, copy=False)
        except ValueError:
            shapes = sorted({tuple(v.shape) for v in xs})
            raise DataError(f"samples of one batch have different shapes {shapes[:3]}: give "
                            "the data set an image_size or use a Preprocess transform") from None
        return x, np.asarray(labels, dtype=np.int64), read, bad

    # ---- an epoch ------------------------------------------------------------------------------
    def epoch(self, epoch, start_batch=0, earlier_bad=()):
        """Yield the batches ``(x, labels)`` of ``epoch`` from batch ``start_batch`` on (see
        the module docs), leaving out empty ones. ``earlier_bad``: the ``(path, reason)`` pairs
        of the bad images met in the batches before ``start_batch`` (by a run that was
        interrupted); they count against the limit."""
        for batch in self.batches(epoch, start_batch, earlier_bad):
            if len(batch.labels):
                yield batch.x, batch.labels

    def my_part(self, chunk):
        """This loader's slice of a global batch's sample indices (all of them for one part)."""
        return np.array_split(chunk, self.size)[self.rank] if self.size > 1 else chunk

    def batches(self, epoch, start_batch=0, earlier_bad=()):
        """Like ``epoch``, but a ``Batch`` (x, labels, indices) for every batch from
        ``start_batch`` on, empty ones too (all images unreadable, or no share for this part)."""
        earlier_bad = [tuple(item) for item in earlier_bad]
        self.bad_images = []
        order = self.order(epoch)
        draws = self.augmentation_draws(epoch)    # the whole epoch's draws, before any batch
        if self.batch_path:
            self.stored_images()                  # resize once here, not in a worker
        n_batches = len(self)
        b = self.batch_size
        # Batch k covers positions [k * B, (k + 1) * B) of `order`, the last one clipped at n.
        parts = [self.my_part(order[k * b:(k + 1) * b]) for k in range(n_batches)]
        chunks = parts[start_batch:]
        scheduled = sum(len(part) for part in parts)    # this part's images of the whole epoch
        limit = self.max_bad_fraction * scheduled

        def account(bad):
            self.bad_images.extend(bad)
            met = earlier_bad + self.bad_images
            if bad and len(met) > limit:
                shown = "; ".join(f"{p}: {r}" for p, r in met[:3])
                raise DataError(
                    f"{len(met)} of the {scheduled} images of epoch {epoch} could "
                    f"not be read, more than max_bad_fraction={self.max_bad_fraction:g}; "
                    f"first ones: {shown}")

        built = self._built_in_order(chunks, lambda chunk: self._build_batch(epoch, chunk, draws))
        for x, y, indices, bad in built:
            account(bad)
            yield Batch(x, y, indices)

    def threads(self):
        """The background threads that build batches: ``num_workers``, at most one for whole
        batches (see the module docs)."""
        return min(self.num_workers, 1) if self.batch_path else self.num_workers

    def _built_in_order(self, chunks, build):
        """Yield ``build(chunk)`` for each chunk, in order: in the calling thread with no
        workers, else from a pool that keeps a window of batches in flight."""
        workers = self.threads()
        if workers <= 0:
            for chunk in chunks:
                yield build(chunk)
            return
        window = max(self.prefetch, workers, 1)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="data")
        pending = deque()
        todo = iter(chunks)
        try:
            for chunk in todo:
                pending.append(pool.submit(build, chunk))
                if len(pending) >= window:
                    break
            while pending:
                result = pending.popleft().result()      # strictly in batch order
                nxt = next(todo, None)
                if nxt is not None:                      # keep the window full while we yield
                    pending.append(pool.submit(build, nxt))
                yield result
        finally:
            # Also runs when the consumer stops early or an error is raised.
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self):
        """Epoch 0 from the start; use ``epoch(e, start_batch)`` in a training loop."""
        return self.epoch(0)
