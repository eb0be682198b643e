"""Batches of the synthetic molecule-like sets, each a pure function of (seed, step).

Training batches hold sets of one size (appendix D.2), drawn epoch by epoch from
:func:`setwise.tasks.datasets.sets.same_size_batches` with the run's seed. Every batch is
padded to fixed shapes ``[batch_size, bucket]`` (``bucket``: the smallest of ``buckets``
(default :data:`BUCKETS`) and ``n_max`` that holds the sets) so JAX compiles once per
bucket; padding rows and padding sets (``n = 0``) are masked out of every statistic and loss.

A batch: ``x [B, P, 3]`` positions, ``feat [B, P, 7]`` positions and one-hot degree (the
encoder's input), ``mask [B, P]``, ``n [B]`` sizes. Evaluation batches also have ``z [B,
latent]`` (zeros, or the latents of a generation batch), ``generate`` (0-d bool), ``part``
(0-d int: which evaluation) and the training degree histogram ``degree_dist [4]``: the same
arrays for reconstruction and generation, so one compilation serves both.
"""

from __future__ import annotations

import functools

import numpy as np

from setwise.tasks.datasets.sets import same_size_batches
from setwise.tasks.datasets.synthetic import SyntheticConfig, load_synthetic

BUCKETS = (8, 16)
PARTS = ("test", "train", "generation", "extrapolation")
DATA_SEED = 0  # the authors' dataset (their generator with seed 0)


@functools.lru_cache(maxsize=4)
def dataset(split: str, n_max: int = 35):
    """The split's :class:`SyntheticMolecules` (``n_max`` 35: Table 4; 11: Table 6)."""
    return load_synthetic(split, DATA_SEED, config=SyntheticConfig(n_max=n_max), progress=False)


def bucket(size: int, n_max: int, buckets=BUCKETS) -> int:
    """The padded width of a batch whose largest set has ``size`` points."""
    return next((b for b in sorted(buckets) if size <= b < n_max), n_max)


def pack(split: str, indices, batch_size: int, n_max: int, buckets=BUCKETS) -> dict:
    """Sets ``indices`` of ``split`` as one padded batch."""
    feats = features(split, n_max)
    sizes = feats.sizes[indices]
    width = bucket(int(sizes.max()), n_max, buckets)
    feat = np.zeros((batch_size, width, feats.x.shape[1]), np.float32)
    for row, i in enumerate(indices):
        feat[row, :sizes[row]] = feats[i]
    n = np.zeros(batch_size, np.int64)
    n[:len(indices)] = sizes
    mask = np.arange(width)[None] < n[:, None]
    return {"x": feat[..., :3].copy(), "feat": feat, "mask": mask, "n": n}


@functools.lru_cache(maxsize=4)
def features(split: str, n_max: int = 35):
    """The split's positions and one-hot degree (a :class:`RaggedSets`), computed once."""
    return dataset(split, n_max).features


@functools.lru_cache(maxsize=8)
def _epoch(seed: int, epoch: int, batch_size: int, n_max: int) -> list[np.ndarray]:
    sizes = dataset("train", n_max).points.sizes
    return list(same_size_batches(sizes, batch_size, seed, epoch))


def train_batch(seed: int, step: int, batch_size: int, n_max: int = 35,
                buckets=BUCKETS) -> dict:
    """The training batch of ``step``: batch ``step % K`` of epoch ``step // K`` (``K``
    batches per epoch, fixed by the set sizes)."""
    per_epoch = len(_epoch(seed, 0, batch_size, n_max))
    chunk = _epoch(seed, step // per_epoch, batch_size, n_max)[step % per_epoch]
    return pack("train", chunk, batch_size, n_max, buckets)


def degree_distribution(n_max: int = 35) -> np.ndarray:
    """``[4]`` fraction of training points of degree 1..4 (float32)."""
    return dataset("train", n_max).degree_distribution().astype(np.float32)


def recon_batches(split: str, num_sets: int, batch_size: int, n_max: int, part: int,
                  latent_dim: int, buckets=BUCKETS):
    """The first ``num_sets`` sets of ``split`` (all if 0), grouped by size, as batches."""
    sets = dataset(split, n_max)
    rows = np.arange(len(sets) if num_sets <= 0 else min(num_sets, len(sets)))
    out = []
    for chunk in same_size_batches(sets.points.sizes[rows], batch_size, shuffle=False):
        batch = pack(split, rows[chunk], batch_size, n_max, buckets)
        out.append({**batch, "z": np.zeros((batch_size, latent_dim), np.float32),
                    "generate": np.array(False), "part": np.array(part),
                    "degree_dist": degree_distribution(n_max)})
    return out


def generation_sizes(num_sets: int, seed: int, n_max: int, extrapolation: bool) -> np.ndarray:
    """Sizes of generated sets: drawn from the training size distribution (appendix D.2);
    in the extrapolation setting 10 more, capped at ``n_max - 1`` (the authors' ``round_n``)."""
    train = dataset("train", n_max)
    rng = np.random.default_rng([seed, 7, int(extrapolation)])
    sizes = rng.choice(n_max + 1, size=num_sets, p=train.size_distribution())
    if extrapolation:
        sizes = sizes + train.config.extrapolation_n
    return np.clip(sizes, 2, n_max - 1 if extrapolation else n_max)


def generation_batches(num_sets: int, seed: int, latent_dim: int, batch_size: int,
                       n_max: int, extrapolation: bool, part: int, buckets=BUCKETS
                       ) -> list[dict]:
    """``num_sets`` latent draws ``z ~ N(0, I)`` with their sizes, as batches sorted by size."""
    sizes = np.sort(generation_sizes(num_sets, seed, n_max, extrapolation))
    degree = degree_distribution(n_max)
    z = np.random.default_rng([seed, 11, int(extrapolation)]).standard_normal(
        (num_sets, latent_dim)).astype(np.float32)
    out = []
    for start in range(0, num_sets, batch_size):
        n = np.zeros(batch_size, np.int64)
        n[:len(sizes[start:start + batch_size])] = sizes[start:start + batch_size]
        zz = np.zeros((batch_size, latent_dim), np.float32)
        zz[:len(n[n > 0])] = z[start:start + batch_size]
        width = bucket(int(n.max()), n_max, buckets)
        out.append({"x": np.zeros((batch_size, width, 3), np.float32),
                    "feat": np.zeros((batch_size, width, 7), np.float32),
                    "mask": np.arange(width)[None] < n[:, None], "n": n, "z": zz,
                    "generate": np.array(True), "part": np.array(part),
                    "degree_dist": degree})
    return out
