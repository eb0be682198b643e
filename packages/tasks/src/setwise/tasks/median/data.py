"""Median-estimation data (paper 1, section 5.1 and appendix D.1).

Each set holds ``set_size`` (paper: 100) numbers drawn from one of three distributions, chosen
at random per set: uniform(0, 1), gamma(shape 0.5, scale 0.2) or normal(mean 0.5, std 0.4).
The label is the set's median. Training sets are drawn fresh at every step.
"""

from __future__ import annotations

import numpy as np

DISTRIBUTIONS = ("uniform", "gamma", "normal")
TRAIN_STREAM, EVAL_STREAM = 0, 1
#: The held-out sample is drawn with this seed whatever the run's seed, so every run (every
#: seed, aggregator and backend) is evaluated on the same sets.
EVAL_SEED = 20_211_001


def sample_sets(rng: np.random.Generator, num_sets: int, set_size: int):
    """``num_sets`` sets of ``set_size`` numbers and their medians.

    Returns:
        ``x [num_sets, set_size, 1]`` float32, ``median [num_sets]`` float32 (the median of
        the float32 values), ``dist [num_sets]`` int (index into :data:`DISTRIBUTIONS`).
    """
    dist = rng.integers(len(DISTRIBUTIONS), size=num_sets)
    x = np.empty((num_sets, set_size))
    for k, name in enumerate(DISTRIBUTIONS):
        rows = dist == k
        shape = (int(rows.sum()), set_size)
        if name == "uniform":
            x[rows] = rng.uniform(0.0, 1.0, shape)
        elif name == "gamma":
            x[rows] = rng.gamma(0.5, 0.2, shape)
        else:
            x[rows] = rng.normal(0.5, 0.4, shape)
    x = x.astype(np.float32)
    return x[..., None], np.median(x, axis=1).astype(np.float32), dist


def batch(x, median):
    """A batch mapping: ``x [B, N, 1]``, ``mask [B, N]`` (all present), ``y [B]``."""
    return {"x": x, "mask": np.ones(x.shape[:2], bool), "y": median}


def train_batch(seed: int, step: int, batch_size: int, set_size: int) -> dict:
    """The training batch of ``step``, a pure function of ``(seed, step)``."""
    rng = np.random.default_rng([seed, TRAIN_STREAM, step])
    x, median, _ = sample_sets(rng, batch_size, set_size)
    return batch(x, median)


def eval_batches(num_sets: int, set_size: int, batch_size: int) -> list[dict]:
    """The fixed held-out sample (seed :data:`EVAL_SEED`), split into batches."""
    rng = np.random.default_rng([EVAL_SEED, EVAL_STREAM])
    x, median, _ = sample_sets(rng, num_sets, set_size)
    return [batch(x[i:i + batch_size], median[i:i + batch_size])
            for i in range(0, num_sets, batch_size)]
