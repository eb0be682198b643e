"""Hypothesis strategies for the conformance suite: batches of sets in both forms.

A drawn :class:`SetBatch` holds the same sets three ways: dense with mask (random junk in the
padding), and segments with ``index`` and with ``ptr``. Set sizes include 0. Values are drawn
from a seeded NumPy generator so that examples are cheap, while hypothesis still shrinks the
sizes, the dimension and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st


@dataclass(frozen=True)
class SetBatch:
    """One batch of sets. ``sizes[s]`` present elements in set ``s``."""

    sizes: tuple[int, ...]
    dim: int
    seed: int
    low: float = -2.0
    high: float = 2.0
    padding: int = 1

    @property
    def num_sets(self) -> int:
        return len(self.sizes)

    def elements(self, dtype="float64") -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return [rng.uniform(self.low, self.high, (n, self.dim)).astype(dtype) for n in self.sizes]

    def dense(self, dtype="float64"):
        """``x [num_sets, max_size, dim]`` (junk in the padding), ``mask [num_sets, max_size]``."""
        rng = np.random.default_rng(self.seed + 1)
        size = max(self.sizes, default=0) + self.padding
        x = rng.normal(0, 50, (self.num_sets, size, self.dim)).astype(dtype)
        mask = np.zeros((self.num_sets, size), bool)
        for s, el in enumerate(self.elements(dtype)):
            x[s, : len(el)] = el
            mask[s, : len(el)] = True
        return x, mask

    def segments(self, dtype="float64"):
        """``x [num_elements, dim]``, ``index [num_elements]`` (sorted by set), ``ptr``."""
        els = self.elements(dtype)
        x = np.concatenate(els) if els else np.zeros((0, self.dim), dtype)
        index = np.repeat(np.arange(self.num_sets), self.sizes).astype(np.int64)
        ptr = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        return x.reshape(-1, self.dim), index, ptr


def set_batches(min_sets=1, max_sets=5, max_size=8, min_size=0, dims=(1, 4), low=-2.0,
                high=2.0, odd_sizes=False):
    """Strategy of :class:`SetBatch` with ``min_sets..max_sets`` sets of ``min_size..max_size``."""
    size = st.integers(min_size, max_size)
    if odd_sizes:
        size = size.map(lambda n: n | 1)
    return st.builds(
        SetBatch,
        sizes=st.lists(size, min_size=min_sets, max_size=max_sets).map(tuple),
        dim=st.integers(*dims),
        seed=st.integers(0, 2**31 - 1),
        low=st.just(low),
        high=st.just(high),
        padding=st.integers(0, 3),
    )


def permutations(n: int):
    """Strategy of permutations of ``range(n)`` as int64 arrays."""
    return st.permutations(list(range(n))).map(lambda p: np.asarray(p, np.int64))


seeds = st.integers(0, 2**31 - 1)
