"""Variable-size sets as NumPy arrays, and their batches in the dense and the segment form.

The two forms are those of DESIGN.md section 2 (and of :mod:`setwise.reference.segments`,
whose ``to_dense`` / ``to_segments`` / ``index_from_ptr`` are reused here):

- dense: ``x [batch, max_size, ...]`` with ``mask [batch, max_size]`` (True = present);
- segments: ``x [num_elements, ...]`` with ``index [num_elements]`` in ``[0, num_sets)``.

For JAX, :func:`pad_segments` gives the segment form static shapes (jraph's convention: the
padding elements belong to one extra padding set).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from setwise.reference.segments import index_from_ptr, to_dense


class DenseBatch(NamedTuple):
    """``x [batch, max_size, ...]``, ``mask [batch, max_size]`` bool, ``indices [batch]``."""

    x: np.ndarray
    mask: np.ndarray
    indices: np.ndarray


class SegmentBatch(NamedTuple):
    """``x [num_elements, ...]``, ``index [num_elements]`` int64, ``num_sets``, ``indices``."""

    x: np.ndarray
    index: np.ndarray
    num_sets: int
    indices: np.ndarray


@dataclass(frozen=True)
class RaggedSets:
    """Sets of different sizes stored back to back (CSR layout).

    Attributes:
        x: ``[num_elements, ...]`` the elements of every set, set after set.
        ptr: ``[num_sets + 1]`` int64 offsets; set ``i`` is ``x[ptr[i]:ptr[i + 1]]``.
    """

    x: np.ndarray
    ptr: np.ndarray

    def __post_init__(self):
        ptr = np.asarray(self.ptr)
        if ptr.ndim != 1 or ptr.size == 0 or ptr[0] != 0 or ptr[-1] != len(self.x) or np.any(
                np.diff(ptr) < 0):
            raise ValueError(f"RaggedSets: ptr must rise from 0 to len(x)={len(self.x)}, "
                             f"got shape {ptr.shape}")

    @classmethod
    def from_list(cls, sets: Sequence, dtype=None) -> RaggedSets:
        """Stack a list of ``[size_i, ...]`` arrays."""
        sizes = np.array([len(s) for s in sets], dtype=np.int64)
        ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if len(sets):
            x = np.concatenate([np.asarray(s, dtype=dtype) for s in sets])
        else:
            x = np.zeros((0,), dtype=dtype)
        return cls(x, ptr)

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.x[self.ptr[i]:self.ptr[i + 1]]

    @property
    def sizes(self) -> np.ndarray:
        """``[num_sets]`` int64 number of elements of each set."""
        return np.diff(self.ptr)

    @property
    def index(self) -> np.ndarray:
        """``[num_elements]`` int64 set id of each element."""
        return index_from_ptr(self.ptr)

    def take(self, indices) -> RaggedSets:
        """The sets ``indices`` (in that order) as a new :class:`RaggedSets`."""
        indices = np.asarray(indices, dtype=np.int64)
        sizes = self.sizes[indices]
        ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        starts = np.repeat(self.ptr[indices], sizes)
        offsets = np.arange(ptr[-1]) - np.repeat(ptr[:-1], sizes)
        return RaggedSets(self.x[starts + offsets], ptr)

    def dense(self, indices=None, max_size: int | None = None) -> DenseBatch:
        """Dense form of the sets ``indices`` (all by default), padded to ``max_size``."""
        indices = np.arange(len(self)) if indices is None else np.asarray(indices, np.int64)
        sub = self.take(indices)
        largest = int(sub.sizes.max(initial=0))
        if max_size is not None and largest > max_size:
            raise ValueError(f"RaggedSets.dense: a set has {largest} elements, more than "
                             f"max_size={max_size}")
        x, mask = to_dense(sub.x, sub.index, len(sub), max_size)
        return DenseBatch(x, mask, indices)

    def segments(self, indices=None) -> SegmentBatch:
        """Segment form of the sets ``indices`` (all by default)."""
        indices = np.arange(len(self)) if indices is None else np.asarray(indices, np.int64)
        sub = self.take(indices)
        return SegmentBatch(sub.x, sub.index, len(sub), indices)

    def batches(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                drop_last: bool = False, form: str = "dense", max_size: int | None = None,
                same_size: bool = False) -> Iterator[DenseBatch | SegmentBatch]:
        """Yield batches in ``form`` ``"dense"`` (padded to ``max_size``) or ``"segments"``.

        With ``same_size``, every batch holds sets of one size (the Top-n authors' batching
        for the synthetic sets and QM9), see :func:`same_size_batches`.
        """
        if form not in ("dense", "segments"):
            raise ValueError(f"RaggedSets.batches: form must be 'dense' or 'segments', "
                             f"got {form!r}")
        chunks = (same_size_batches(self.sizes, batch_size, seed, epoch, shuffle, drop_last)
                  if same_size else
                  batch_indices(len(self), batch_size, seed, epoch, shuffle, drop_last))
        for indices in chunks:
            yield self.dense(indices, max_size) if form == "dense" else self.segments(indices)


def batch_indices(num_items: int, batch_size: int, seed: int = 0, epoch: int = 0,
                  shuffle: bool = True, drop_last: bool = False) -> Iterator[np.ndarray]:
    """Yield arrays of item indices, one per batch; the order depends only on (seed, epoch)."""
    if batch_size < 1:
        raise ValueError(f"batch_indices: batch_size must be >= 1, got {batch_size}")
    order = (np.random.default_rng([seed, epoch]).permutation(num_items) if shuffle
             else np.arange(num_items))
    stop = num_items - num_items % batch_size if drop_last else num_items
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def same_size_batches(sizes, batch_size: int, seed: int = 0, epoch: int = 0,
                      shuffle: bool = True, drop_last: bool = False) -> Iterator[np.ndarray]:
    """Batches of indices whose items all have the same size; order depends on (seed, epoch).

    Items are shuffled within each size, cut into batches of at most ``batch_size``, and
    the batches are shuffled.
    """
    sizes = np.asarray(sizes)
    rng = np.random.default_rng([seed, epoch, 2])
    chunks = []
    for size in np.unique(sizes):
        members = np.flatnonzero(sizes == size)
        if shuffle:
            members = rng.permutation(members)
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            if len(chunk) == batch_size or not drop_last:
                chunks.append(chunk)
    order = rng.permutation(len(chunks)) if shuffle else range(len(chunks))
    for k in order:
        yield chunks[k]


def pad_segments(batch: SegmentBatch, max_elements: int) -> tuple[SegmentBatch, np.ndarray]:
    """Give a segment batch a static number of elements (for ``jax.jit``).

    Padding elements are zeros that belong to one extra set, ``num_sets`` (jraph's padding
    graph), so every ``index`` stays valid and real sets are unaffected.

    Returns:
        ``(SegmentBatch with x [max_elements, ...], index [max_elements],
        num_sets = batch.num_sets + 1), element_mask [max_elements]`` (True = real element).
    """
    count = len(batch.x)
    if count > max_elements:
        raise ValueError(f"pad_segments: {count} elements do not fit in max_elements="
                         f"{max_elements}")
    x = np.zeros((max_elements,) + batch.x.shape[1:], dtype=batch.x.dtype)
    x[:count] = batch.x
    index = np.full(max_elements, batch.num_sets, dtype=np.int64)
    index[:count] = batch.index
    mask = np.arange(max_elements) < count
    return SegmentBatch(x, index, batch.num_sets + 1, batch.indices), mask
