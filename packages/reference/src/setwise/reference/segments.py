"""Sets as arrays: the dense and segment forms, and reductions over segments.

Two input forms give the same results (DESIGN.md section 2):

- dense: ``x [num_sets, max_size, dim]`` with ``mask [num_sets, max_size]`` (True = present);
- segments: ``x [num_elements, dim]`` with ``index [num_elements]`` in ``[0, num_sets)`` and
  ``num_sets``, or ``ptr [num_sets + 1]`` (PyG's CSR style, elements sorted by set).

Internally every op works on the segment form with a per-element ``weight`` (1 present,
0 padding), so a dense batch is flattened without moving data and keeps static shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from setwise.reference import validation as V


class Segments(NamedTuple):
    """A batch of sets in canonical segment form.

    Attributes:
        x: ``[num_elements, dim]`` element features (padding rows zeroed).
        index: ``[num_elements]`` int64 set id of each element.
        weight: ``[num_elements]`` 1.0 for present elements, 0.0 for padding.
        num_sets: number of sets (trailing empty sets included).
    """

    x: np.ndarray
    index: np.ndarray
    weight: np.ndarray
    num_sets: int


def index_from_ptr(ptr):
    """``ptr [num_sets + 1]`` (CSR offsets) -> ``index [ptr[-1]]`` of set ids.

    >>> index_from_ptr(np.array([0, 2, 2, 3])).tolist()
    [0, 0, 2]
    """
    op = "index_from_ptr"
    ptr = np.asarray(ptr)
    V.check_ptr(op, ptr)
    V.check_ptr_values(op, int(ptr[0]), int(ptr[-1]), bool(np.all(np.diff(ptr) >= 0)),
                       int(ptr[-1]))
    return np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))


def as_segments(op: str, x, mask=None, index=None, ptr=None, num_sets=None) -> Segments:
    """Validate a batch of sets in either form and return it as :class:`Segments`."""
    x = np.asarray(x)
    mask = None if mask is None else np.asarray(mask)
    index = None if index is None else np.asarray(index)
    ptr = None if ptr is None else np.asarray(ptr)
    layout = V.check_sets(op, x, mask, index, ptr, num_sets)
    if layout.dense:
        b, n, d = x.shape
        present = np.ones((b, n), bool) if mask is None else mask
        V.check_finite(op, "x", bool(np.isfinite(x[present]).all()))
        flat = np.where(present[..., None], x, 0).reshape(b * n, d)
        idx = np.repeat(np.arange(b), n)
        return Segments(flat, idx, present.reshape(-1).astype(x.dtype), b)
    if ptr is not None:
        V.check_ptr_values(op, int(ptr[0]), int(ptr[-1]), bool(np.all(np.diff(ptr) >= 0)),
                           x.shape[0])
        index = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    if index.size:
        V.check_index_values(op, "index", int(index.min()), int(index.max()), layout.num_sets)
    V.check_finite(op, "x", bool(np.isfinite(x).all()))
    return Segments(x, index.astype(np.int64), np.ones(x.shape[0], x.dtype), layout.num_sets)


def segment_sum(data, index, num_sets):
    """Sum ``data [num_elements, ...]`` into ``[num_sets, ...]`` by ``index``.

    .. math:: out_s = \\sum_{i: index_i = s} data_i

    >>> segment_sum(np.array([1., 2., 3.]), np.array([0, 0, 2]), 3).tolist()
    [3.0, 0.0, 3.0]
    """
    data, index = np.asarray(data), np.asarray(index)
    num_sets = _check_segments("segment_sum", data, index, num_sets)
    out = np.zeros((num_sets,) + data.shape[1:], dtype=data.dtype)
    np.add.at(out, index, data)
    return out


def _check_segments(op, data, index, num_sets, weight=None):
    """The public segment functions' checks (shapes, dtypes, index range); returns num_sets."""
    num_sets = V.check_segment_args(op, data, index, num_sets, weight)
    if index.size:
        V.check_index_values(op, "index", int(index.min()), int(index.max()), num_sets)
    return num_sets


def segment_max(data, index, num_sets, weight=None):
    """Max of present elements per set; empty sets give 0."""
    return _segment_extreme("segment_max", np.maximum, -np.inf, data, index, num_sets, weight)


def segment_min(data, index, num_sets, weight=None):
    """Min of present elements per set; empty sets give 0."""
    return _segment_extreme("segment_min", np.minimum, np.inf, data, index, num_sets, weight)


def _segment_extreme(op, ufunc, start, data, index, num_sets, weight):
    """The extreme of each set's present elements; 0 for an empty set. NaN and Inf in the
    data come out as they are (the true max / min), only empty sets are filled."""
    data, index = np.asarray(data), np.asarray(index)
    weight = None if weight is None else np.asarray(weight)
    num_sets = _check_segments(op, data, index, num_sets, weight)
    present = np.ones(data.shape[0], bool) if weight is None else weight > 0
    out = np.full((num_sets,) + data.shape[1:], start, dtype=data.dtype)
    index = index[present]
    ufunc.at(out, index, data[present])
    empty = np.bincount(index, minlength=num_sets)[:num_sets] == 0
    return np.where(empty.reshape((-1,) + (1,) * (out.ndim - 1)), 0, out).astype(data.dtype)


def segment_softmax(logits, index, num_sets, weight=None):
    """Softmax of ``logits [num_elements, ...]`` within each set; padding gets 0.

    .. math:: p_i = \\exp(l_i) / \\sum_{j: index_j = index_i} \\exp(l_j)
    """
    logits, index = np.asarray(logits), np.asarray(index)
    weight = None if weight is None else np.asarray(weight)
    num_sets = _check_segments("segment_softmax", logits, index, num_sets, weight)
    present = np.ones(logits.shape[0], bool) if weight is None else weight > 0
    present = present.reshape((-1,) + (1,) * (logits.ndim - 1))
    top = segment_max(np.where(present, logits, -np.inf), index, num_sets)
    top = np.where(np.isfinite(top), top, 0)
    e = np.where(present, np.exp(logits - top[index]), 0)
    return e / np.maximum(segment_sum(e, index, num_sets)[index], np.finfo(e.dtype).tiny)


def set_sizes(weight, index, num_sets):
    """Number of present elements per set, ``[num_sets]`` (float, the dtype of ``weight``)."""
    return segment_sum(np.asarray(weight), index, num_sets)


def to_dense(x, index, num_sets, max_size=None):
    """Segments -> dense: ``(x [num_sets, max_size, dim], mask [num_sets, max_size])``.

    Elements keep their order within each set.
    """
    op = "to_dense"
    x, index = np.asarray(x), np.asarray(index)
    num_sets = _check_segments(op, x, index, num_sets)
    index = index.astype(np.int64)
    counts = np.bincount(index, minlength=num_sets)
    size = int(counts.max(initial=0))
    if max_size is not None:
        max_size = V.check_positive_int(op, "max_size", max_size, minimum=0)
        if max_size < size:
            V.fail(op, "max_size", f"is {max_size}", f">= the largest set's size {size}")
        size = max_size
    order = np.argsort(index, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.empty_like(index)
    slot[order] = np.arange(len(index)) - starts[index[order]]
    dense = np.zeros((num_sets, size) + x.shape[1:], dtype=x.dtype)
    mask = np.zeros((num_sets, size), bool)
    dense[index, slot] = x
    mask[index, slot] = True
    return dense, mask


def to_segments(x, mask=None):
    """Dense -> segments: ``(x [num_present, dim], index [num_present], num_sets)``."""
    x = np.asarray(x)
    mask = np.ones(x.shape[:2], bool) if mask is None else np.asarray(mask)
    rows, _ = np.nonzero(mask)
    return x[mask], rows.astype(np.int64), x.shape[0]
