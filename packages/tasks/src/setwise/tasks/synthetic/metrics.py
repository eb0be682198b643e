"""Table 4's metrics (paper 2, section 5.3) on NumPy point sets, shared by both backends.

- ``w2``: the Wasserstein-2 distance between a set and its reconstruction (uniform weights,
  equal sizes): ``sqrt(min_pi mean_i ||x_i - y_pi(i)||^2)``, averaged over sets.
- valency of a point: the number of other points of its set closer than the neighbour
  distance (2), as the dataset's bonds.
- ``valency_loss``: W1 between the histogram of valencies of the generated points and the
  dataset's degree histogram (``scipy.stats.wasserstein_distance``, as the authors).
- ``incorrect_valency``: % of generated points of valency 0 or more than 4.
- ``diversity``: mean exact optimal-transport distance (Euclidean ground cost, uniform
  weights) between random pairs of generated sets (pairs drawn with replacement, as the
  authors' ``constrained_loss``).

Notes:
    The authors' code reports as "W2" the mean matched Euclidean distance (matching on
    Euclidean costs), which is at most the W2 reported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog
from scipy.stats import wasserstein_distance

NEIGHBOR_DIST = 2.0
MAX_VALENCY = 4


def _cost(x, y, power):
    d2 = ((np.asarray(x, np.float64)[:, None] - np.asarray(y, np.float64)[None]) ** 2).sum(-1)
    return d2 if power == 2 else np.sqrt(d2)


def w2(x, y) -> float:
    """W2 between two equal-size sets ``x, y [n, dim]`` (uniform weights)."""
    if len(x) != len(y):
        raise ValueError(f"w2: sets of {len(x)} and {len(y)} points; expected equal sizes")
    if len(x) == 0:
        return 0.0
    cost = _cost(x, y, 2)
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def exact_ot(x, y) -> float:
    """Exact optimal-transport cost between uniform measures on ``x [n, d]`` and ``y [m, d]``
    with Euclidean ground cost (an assignment when ``n == m``, a linear program otherwise)."""
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        raise ValueError(f"exact_ot: sets of {n} and {m} points; expected non-empty sets")
    cost = _cost(x, y, 1)
    if n == m:
        rows, cols = linear_sum_assignment(cost)
        return float(cost[rows, cols].mean())
    rows = np.kron(np.eye(n), np.ones((1, m)))
    cols = np.kron(np.ones((1, n)), np.eye(m))
    res = linprog(cost.ravel(), A_eq=np.vstack([rows, cols]),
                  b_eq=np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)]),
                  bounds=(0, None), method="highs")
    if not res.success:
        raise RuntimeError(f"exact_ot: the linear program failed ({res.message})")
    return float(res.fun)


def valencies(points, neighbor_dist: float = NEIGHBOR_DIST) -> np.ndarray:
    """``[n]`` number of other points of the set ``points [n, 3]`` closer than
    ``neighbor_dist``."""
    d = _cost(points, points, 1)
    return (d < neighbor_dist).sum(1) - 1


def valency_stats(sets: Sequence[np.ndarray], dataset_degree: np.ndarray,
                  neighbor_dist: float = NEIGHBOR_DIST, max_valency: int = MAX_VALENCY
                  ) -> dict[str, float]:
    """``valency_loss`` and ``incorrect_valency`` (%) of generated ``sets``.

    Args:
        sets: generated sets, each ``[n_i, 3]``.
        dataset_degree: ``[max_valency]`` fraction of dataset points of degree 1, 2, ...
    """
    vals = np.concatenate([valencies(s, neighbor_dist) for s in sets if len(s)])
    top = max(int(vals.max(initial=0)), len(dataset_degree)) + 1
    generated = np.bincount(vals, minlength=top).astype(np.float64)
    data = np.zeros(top)
    data[1:len(dataset_degree) + 1] = dataset_degree
    support = np.arange(top)
    loss = wasserstein_distance(support, support, generated / generated.sum(), data / data.sum())
    wrong = np.mean((vals == 0) | (vals > max_valency)) * 100
    return {"valency_loss": float(loss), "incorrect_valency": float(wrong)}


def diversity(sets: Sequence[np.ndarray], num_pairs: int, seed: int = 0) -> float:
    """Mean :func:`exact_ot` between ``num_pairs`` random pairs of ``sets`` (with
    replacement)."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, len(sets), (num_pairs, 2))
    return float(np.mean([exact_ot(sets[i], sets[j]) for i, j in pairs]))


def generation_metrics(sets, dataset_degree, num_pairs: int, seed: int = 0) -> dict[str, float]:
    """``valency_loss``, ``incorrect_valency``, ``diversity`` of generated ``sets``."""
    return {**valency_stats(sets, dataset_degree), "diversity": diversity(sets, num_pairs, seed)}


def unpad(points, mask) -> list[np.ndarray]:
    """The present rows of each set of ``points [num_sets, P, 3]`` (sets with none dropped)."""
    return [p[m] for p, m in zip(np.asarray(points), np.asarray(mask, bool)) if m.any()]
