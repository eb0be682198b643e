"""SetMNIST batches (DSPN's ``MNISTSet``), each a pure function of ``(seed, step)``.

A batch is ``{"x": [B, N, 2] float32, "mask": [B, N] bool, "size": [B] int64}``: the "on"
pixels of each image as ``(row, col) / 27`` (:mod:`setwise.tasks.datasets.mnist`), in a random
order (DSPN shuffles every set), padded with zeros to ``N = 342`` (or, downsampled for a CPU
budget, the pixels of a coarser image, see :func:`load`).

Notes:
    DSPN iterates over shuffled epochs; here training step ``s`` draws ``batch_size`` distinct
    sets uniformly from the first ``train_size`` training images with
    ``default_rng([seed, s])``, so a resumed run sees the same batches without replaying
    epochs. Evaluation uses the first ``eval_size`` test images (DSPN's default evaluation is
    the first tenth of the test set, 1000 sets).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from setwise.tasks.datasets import files, mnist
from setwise.tasks.datasets.sets import RaggedSets

#: The largest set of MNIST (train and test) at each downsampling factor.
MAX_SIZES = {1: mnist.DSPN_MAX_POINTS, 2: 96, 4: 31}


def max_size(downsample: int) -> int:
    """The padded set size at ``downsample`` (1: DSPN's 342)."""
    if downsample not in MAX_SIZES:
        raise ValueError(f"setmnist: downsample is {downsample!r}; expected one of "
                         f"{sorted(MAX_SIZES)}")
    return MAX_SIZES[downsample]


def resolve_data_dir(data_dir: str | None) -> Path:
    """``data_dir`` if given, else :func:`setwise.tasks.datasets.files.data_dir`'s default
    (``$SETWISE_DATA``, ``../shared/data`` beside the checkout, ``~/setwise-data``)."""
    return files.data_dir(data_dir or None)


@functools.lru_cache(maxsize=4)
def load(split: str, data_dir: str | None, downsample: int = 1) -> mnist.SetMNIST:
    """SetMNIST of ``split``, read once per process.

    ``downsample = f > 1``: a pixel of the ``28/f x 28/f`` image is on when any pixel of its
    ``f x f`` block passes DSPN's threshold; coordinates are divided by ``28/f - 1`` (so
    still in ``[0, 1]``). A CPU budget's smaller sets (f = 2: at most 96 points, 46 on
    average, instead of 342 and 133).
    """
    limit = max_size(downsample)
    data_dir = resolve_data_dir(data_dir)
    if downsample == 1:
        return mnist.load_setmnist(split, data_dir)
    images, labels = mnist.load_mnist(split, data_dir)
    side = 28 // downsample
    keep = mnist.dspn_pixel_mask(images).reshape(len(images), side, downsample, side,
                                                 downsample).any((2, 4))
    image_id, rows, cols = np.nonzero(keep)
    coords = np.stack([rows, cols], 1).astype(np.float32) / np.float32(side - 1)
    sizes = np.bincount(image_id, minlength=len(images))
    ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return mnist.SetMNIST(RaggedSets(coords, ptr), labels.astype(np.int64), limit)


def make_batch(data: mnist.SetMNIST, indices, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The sets ``indices`` of ``data``, each in the random order ``rng`` draws."""
    sub = data.points.take(indices)
    order = np.lexsort((rng.random(len(sub.x)), sub.index))
    shuffled = type(sub)(sub.x[order], sub.ptr)
    dense = shuffled.dense(max_size=data.max_size)
    return {"x": dense.x.astype(np.float32), "mask": dense.mask,
            "size": sub.sizes.astype(np.int64)}


def train_batch(seed: int, step: int, batch_size: int, train_size: int,
                data_dir: str | None = None, downsample: int = 1) -> dict[str, np.ndarray]:
    """Training batch of ``step``: ``batch_size`` distinct sets of the first ``train_size``."""
    data = load("train", data_dir, downsample)
    size = min(int(train_size), len(data))
    if batch_size > size:
        raise ValueError(f"setmnist: batch_size={batch_size} is larger than train_size={size}")
    rng = np.random.default_rng([int(seed), int(step)])
    return make_batch(data, rng.choice(size, batch_size, replace=False), rng)


def eval_batches(eval_size: int, batch_size: int, data_dir: str | None = None,
                 downsample: int = 1) -> list[dict[str, np.ndarray]]:
    """The first ``eval_size`` test sets in batches of ``batch_size`` (fixed point order)."""
    data = load("test", data_dir, downsample)
    size = min(int(eval_size), len(data))
    rng = np.random.default_rng(0)
    return [make_batch(data, np.arange(start, min(start + batch_size, size)), rng)
            for start in range(0, size, batch_size)]
