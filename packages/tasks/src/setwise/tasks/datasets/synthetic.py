"""Synthetic molecule-like 3-D point sets (paper 2, section 5.3 and appendix D.2).

Each set is built by rejection sampling, point after point, uniformly in the box
``[-6, 6]^3``. The first point is always accepted; a candidate is rejected when

1. it is closer than ``min_dist`` (1) to a point of the set;
2. it has no point within ``neighbor_threshold`` (2): it would not be connected;
3. it has more neighbours than its own maximum valency (drawn from ``{1, 2, 3, 4}`` with
   probabilities ``(0.05, 0.05, 0.1, 0.8)``), or it would push a neighbour past that
   neighbour's maximum valency.

A set stops at ``n_max`` (35) points or after more than ``try_before_stop`` (30) rejections
in a row (more than 1000 while it has at most 4 points); sets of fewer than 2 points are
dropped. Sets are drawn in one stream until there are 2000 + 500: the first 2000 are the
training sets.
Each point carries its final degree ("valency", 1..4), one-hot encoded as in the authors'
files.

This follows the authors' released generator (``utils/generate_synthetic_dataset.py`` and
``config/config_synthetic.yaml`` of cvignac/Top-N) draw for draw: with a legacy
``numpy.random.RandomState(seed)`` the same random numbers are consumed in the same order, so
``seed=0`` reproduces their script's output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from setwise.tasks.datasets import files
from setwise.tasks.datasets.sets import RaggedSets

SPLITS = ("train", "test")
_VERSION = "synthetic-2"


@dataclass(frozen=True)
class SyntheticConfig:
    """Generator settings (defaults: the authors' ``config_synthetic.yaml``)."""

    num_train: int = 2000
    num_test: int = 500
    n_max: int = 35
    min_bound: float = -6.0
    max_bound: float = 6.0
    min_dist: float = 1.0
    neighbor_threshold: float = 2.0
    valencies: tuple = (1, 2, 3, 4)
    valency_probs: tuple = (0.05, 0.05, 0.1, 0.8)
    try_before_stop: int = 30
    translation_std: float = 0.0
    extrapolation_n: int = 10


class _Candidates:
    """The candidate points of one set, read ahead from the random stream in blocks.

    Each candidate consumes 4 uniforms, as ``rng.choice(valencies, p=...)`` then
    ``rng.uniform(size=3)`` do in the released script; :meth:`finish` rewinds the stream to
    just after the candidates actually used, so the stream stays identical to the script's.
    """

    def __init__(self, rng: np.random.RandomState, config: SyntheticConfig, block: int = 128):
        self.rng, self.config, self.block = rng, config, block
        self.state = rng.get_state()
        self.draws = np.zeros((0, 4))
        self.used = 0
        cdf = np.cumsum(np.asarray(config.valency_probs, dtype=np.float64))
        self.cdf = cdf / cdf[-1]

    def peek(self) -> tuple[np.ndarray, np.ndarray]:
        """``(valency [block], position [block, 3])`` of the next candidates."""
        while len(self.draws) < self.used + self.block:
            self.draws = np.concatenate([self.draws, self.rng.random_sample((self.block, 4))])
        draws = self.draws[self.used:self.used + self.block]
        valency = np.asarray(self.config.valencies)[np.searchsorted(self.cdf, draws[:, 0],
                                                                    side="right")]
        lo, hi = self.config.min_bound, self.config.max_bound
        return valency, lo + draws[:, 1:].astype(np.float32).astype(np.float64) * (hi - lo)

    def finish(self) -> None:
        self.rng.set_state(self.state)
        self.rng.random_sample(4 * self.used)


def _codes(points: np.ndarray, valency: np.ndarray, pos: np.ndarray, config) -> tuple:
    """Outcome of each candidate against ``points [n, 5]`` (x, y, z, degree, max valency):
    0 accepted, 1 too close, 2 unconnected, 3 valency; and the neighbour masks."""
    dist = np.sqrt(np.sum((points[None, :, :3] - pos[:, None, :]) ** 2, axis=2))
    nearest = dist.min(axis=1)
    near = dist < config.neighbor_threshold
    too_many = (near.sum(axis=1) > valency) | np.any(points[:, 3] + near > points[:, 4], axis=1)
    codes = np.where(nearest < config.min_dist, 1,
                     np.where(nearest > config.neighbor_threshold, 2, np.where(too_many, 3, 0)))
    return codes, near


def generate_set(rng: np.random.RandomState, config: SyntheticConfig = SyntheticConfig()):
    """One set by rejection sampling (the rules of the module docstring).

    Returns:
        ``(positions [n, 3] float64, degree [n] int64, counts [4] int64)``; ``counts`` are
        (accepted, rejected as too close, as unconnected, for valency).
    """
    candidates = _Candidates(rng, config)
    counts = np.zeros(4, np.int64)
    valency, pos = candidates.peek()
    points = np.array([[pos[0, 0], pos[0, 1], pos[0, 2], 0, valency[0]]])
    candidates.used, counts[0], failures = 1, 1, 0
    while len(points) < config.n_max:
        valency, pos = candidates.peek()
        codes, near = _codes(points, valency, pos, config)
        accepted = np.flatnonzero(codes == 0)
        first = int(accepted[0]) if accepted.size else len(codes)
        limit = config.try_before_stop if len(points) > 4 else 1000
        stop = limit - failures
        if stop < first:
            counts += np.bincount(codes[:stop + 1], minlength=4)
            candidates.used += stop + 1
            break
        counts += np.bincount(codes[:first + 1], minlength=4)
        candidates.used += min(first + 1, len(codes))
        if first == len(codes):
            failures += first
            continue
        points[:, 3] += near[first]
        new = [pos[first, 0], pos[first, 1], pos[first, 2], near[first].sum(), valency[first]]
        points, failures = np.vstack((points, [new])), 0
    candidates.finish()
    positions = points[:, :3] + rng.randn(1, 3) * config.translation_std
    return positions, points[:, 3].astype(np.int64), counts


def generate(config: SyntheticConfig = SyntheticConfig(), seed: int = 0, progress=True) -> dict:
    """All sets of one stream: ``{"positions", "degree", "ptr", "num_train", "counts"}``.

    Notes:
        The released script drops sets of fewer than 2 points without replacing them (with
        seed 0 it writes 499 test sets); here drawing goes on until there are
        ``num_train + num_test`` sets, so the first sets are identical to the released output.
    """
    rng = np.random.RandomState(seed)
    positions, degrees, sizes, counts = [], [], [], np.zeros(4, np.int64)
    total = config.num_train + config.num_test
    bar = files.progress(iter(int, 1), total, "synthetic sets", progress)
    for _ in bar:
        pos, degree, set_counts = generate_set(rng, config)
        counts += set_counts
        if len(pos) < 2:
            continue
        positions.append(pos)
        degrees.append(degree)
        sizes.append(len(pos))
        if len(sizes) == total:
            break
    if progress:
        bar.close()
    return {"positions": np.concatenate(positions).astype(np.float32),
            "degree": np.concatenate(degrees),
            "ptr": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "num_train": np.array(config.num_train),
            "counts": counts}


@dataclass(frozen=True)
class SyntheticMolecules:
    """The sets of one split.

    Attributes:
        points: :class:`RaggedSets` of positions, ``x [num_points, 3]`` float32.
        degree: ``[num_points]`` int64 final degree of each point, 1..4.
        config: the generator settings.
    """

    points: RaggedSets
    degree: np.ndarray
    config: SyntheticConfig

    def __len__(self) -> int:
        return len(self.points)

    @property
    def features(self) -> RaggedSets:
        """Positions and one-hot degree, ``x [num_points, 3 + 4]`` (the authors' layout)."""
        num_types = max(self.config.valencies)
        one_hot = np.eye(num_types, dtype=np.float32)[self.degree - 1]
        return RaggedSets(np.concatenate([self.points.x, one_hot], axis=1), self.points.ptr)

    def batches(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                drop_last: bool = False, form: str = "dense", same_size: bool = False,
                one_hot: bool = True):
        """Batches of :attr:`features` (``one_hot``) or of positions; see
        :meth:`RaggedSets.batches`. ``same_size=True`` is the authors' batching."""
        sets = self.features if one_hot else self.points
        return sets.batches(batch_size, seed, epoch, shuffle, drop_last, form,
                            self.config.n_max, same_size)

    def size_distribution(self) -> np.ndarray:
        """``[n_max + 1]`` fraction of sets of each size."""
        return np.bincount(self.points.sizes, minlength=self.config.n_max + 1) / len(self)

    def degree_distribution(self) -> np.ndarray:
        """``[max valency]`` fraction of points of degree 1, 2, ... (``val_statistics``)."""
        counts = np.bincount(self.degree - 1, minlength=max(self.config.valencies))
        return counts / counts.sum()

    def extrapolation_sizes(self, num_sets: int, seed: int = 0) -> np.ndarray:
        """Set sizes of the extrapolation setting: a size drawn from this split's size
        distribution plus ``extrapolation_n`` (10), as the authors' ``generate_n``."""
        rng = np.random.default_rng(seed)
        sizes = rng.choice(self.config.n_max + 1, size=num_sets, p=self.size_distribution())
        top = self.config.n_max + self.config.extrapolation_n
        return np.clip(sizes + self.config.extrapolation_n, 2, top)


def load_synthetic(split: str = "train", seed: int = 0, cache_dir=None,
                   config: SyntheticConfig = SyntheticConfig(),
                   progress: bool = True) -> SyntheticMolecules:
    """The generated sets of ``split`` (``"train"``: 2000, ``"test"``: 500), cached on disk.

    Notes:
        Appendix D.2 says 9 points per set on average; the released generator (which this
        follows) gives about 7.5 (see ``setwise data stats synthetic-molecules``).
    """
    if split not in SPLITS:
        raise ValueError(f"load_synthetic: split must be one of {SPLITS}, got {split!r}")
    key = files.cache_key(_VERSION, sorted(asdict(config).items()), seed)
    # a variant (Table 6's n_max 11) gets its own file, so it and the default never evict
    # each other's cache
    variant = "" if config.n_max == SyntheticConfig.n_max else f"_nmax{config.n_max}"
    path = files.cache_dir(cache_dir) / "synthetic" / f"synthetic_seed{seed}{variant}.npz"
    arrays = files.cached_arrays(path, key, lambda: generate(config, seed, progress))
    num_train = int(arrays["num_train"])
    everything = RaggedSets(arrays["positions"], arrays["ptr"])
    rows = np.arange(num_train) if split == "train" else np.arange(num_train, len(everything))
    points = everything.take(rows)
    start, stop = everything.ptr[rows[0]], everything.ptr[rows[-1] + 1]
    return SyntheticMolecules(points, arrays["degree"][start:stop], config)


def save_histograms(out_dir, seed: int = 0, cache_dir=None) -> list[Path]:
    """Save the size and degree histograms of both splits as PNG files in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {split: load_synthetic(split, seed, cache_dir) for split in SPLITS}
    paths = []
    for what in ("size", "degree"):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for split, sets in data.items():
            values = sets.points.sizes if what == "size" else sets.degree
            bins = np.arange(values.min(), values.max() + 2) - 0.5
            ax.hist(values, bins=bins, density=True, alpha=0.6,
                    label=f"{split} ({len(sets)} sets, mean {values.mean():.2f})")
        ax.set_xlabel("points per set" if what == "size" else "degree (valency) of a point")
        ax.set_ylabel("fraction")
        ax.set_title(f"synthetic molecule-like sets, seed {seed}: {what}")
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"synthetic_{what}_histogram.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def stats(seed: int = 0, cache_dir=None, **_) -> list[tuple[str, str]]:
    """Statistics printed by ``setwise data stats synthetic-molecules``."""
    rows = []
    for split in SPLITS:
        data = load_synthetic(split, seed, cache_dir)
        sizes = data.points.sizes
        hist = np.bincount(sizes, minlength=data.config.n_max + 1)
        rows += [(f"{split} sets", f"{len(data):,}"),
                 (f"{split} points per set (min / mean / max)",
                  f"{sizes.min()} / {sizes.mean():.2f} / {sizes.max()}"),
                 (f"{split} sets per size 2..{data.config.n_max}", " ".join(map(str, hist[2:]))),
                 (f"{split} degree 1/2/3/4 fraction",
                  " / ".join(f"{p:.3f}" for p in data.degree_distribution()))]
        extra = data.extrapolation_sizes(10_000, seed)
        rows.append((f"{split} extrapolation sizes (10,000 draws) min / mean / max",
                     f"{extra.min()} / {extra.mean():.2f} / {extra.max()}"))
    return rows
