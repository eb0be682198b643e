"""Class-counting sets as a pure function of ``(seed, step)``, from
:mod:`setwise.tasks.datasets.omniglot`.

A batch is ``{"x": [B, 16, 32, 32] float32 ink in [0, 1], "mask": [B, 16] bool (all True),
"label": [B] int64 number of distinct characters in 1..10}``; evaluation batches add
``"split": [B] int64`` (an index of :data:`~setwise.tasks.omniglot_counting.metrics.SPLITS`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from setwise.tasks.datasets import files
from setwise.tasks.datasets.omniglot import OmniglotCounting, load_omniglot
from setwise.tasks.omniglot_counting.metrics import SPLITS

#: the evaluation sets are the same for every run (seed and backend): drawn from this seed
EVAL_SEED = 20_211_128
def resolve_data_dir(data_dir: str | None) -> Path:
    """``data_dir`` if given, else :func:`setwise.tasks.datasets.files.data_dir`'s default
    (``$SETWISE_DATA``, ``../shared/data`` beside the checkout, ``~/setwise-data``)."""
    return files.data_dir(data_dir or None)


@functools.lru_cache(maxsize=8)
def sampler(split: str, data_dir: Path) -> OmniglotCounting:
    """The split's images (read once per process; the loader caches the downsized images)."""
    return load_omniglot(split, data_dir=data_dir)


def as_batch(data: OmniglotCounting, num_sets: int, rng: np.random.Generator) -> dict:
    sets = data.sample(num_sets, rng)
    return {"x": sets.x, "mask": sets.mask, "label": sets.label}


def train_batch(seed: int, step: int, batch_size: int, data_dir: Path) -> dict:
    """Training sets of ``step`` (training characters), drawn from ``SeedSequence([seed,
    step])``: the same in a resumed run and in both backends."""
    rng = np.random.default_rng([int(seed), int(step)])
    return as_batch(sampler("train", data_dir), batch_size, rng)


@functools.lru_cache(maxsize=8)
def _eval_batches(sizes: tuple[tuple[str, int], ...], batch_size: int, data_dir: Path):
    batches = []
    for split, size in sizes:
        index = SPLITS.index(split)
        rng = np.random.default_rng([EVAL_SEED, index])
        for start in range(0, size, batch_size):
            batch = as_batch(sampler(split, data_dir), min(batch_size, size - start), rng)
            batch["split"] = np.full(len(batch["label"]), index, np.int64)
            batches.append(batch)
    return tuple(batches)


def eval_batches(sizes: dict[str, int], batch_size: int, data_dir: Path) -> list[dict]:
    """``sizes[split]`` fixed sets of each split (``train``: fresh sets of the training
    characters, ``valid``: the held-out background characters, ``test``: the evaluation
    alphabets), in batches of at most ``batch_size``; the same for every run."""
    cached = _eval_batches(tuple((s, int(n)) for s, n in sizes.items() if int(n) > 0),
                           int(batch_size), data_dir)
    return [dict(batch) for batch in cached]
