"""Transformations of a task's batch driven by its declaration
(:class:`setwise.tasks.symmetries.Symmetries`): permute a set axis, pad it, take some sets.

Every function takes and returns NumPy batch mappings and never edits its input. Elements
are permuted *within* their kind: present elements among the present slots, padding among
the padding slots, so the masks are unchanged and a model whose data are prefix-padded (the
first ``n`` slots present) still sees prefix-padded data.
"""

from __future__ import annotations

import numpy as np

from setwise.tasks.symmetries import SetAxis, Symmetries

#: Scale of the junk written into padding slots of float arrays.
JUNK_SCALE = 10.0


def axis_size(batch, axis: SetAxis) -> int:
    key, ax = next(iter(axis.arrays.items()))
    return np.asarray(batch[key]).shape[ax]


def presence(batch, axis: SetAxis, sym: Symmetries) -> np.ndarray:
    """The axis's mask: ``[num_sets, size]`` (dense) or ``[size]`` (flat), True = present."""
    if axis.mask is not None:
        return np.asarray(batch[axis.mask], bool)
    size = axis_size(batch, axis)
    if axis is not sym.batch and sym.is_dense(axis):
        return np.ones((axis_size(batch, sym.batch), size), bool)
    return np.ones(size, bool)


def _shuffle_within(mask_row: np.ndarray, rng) -> np.ndarray:
    """A permutation of ``range(len(mask_row))`` mapping present to present, padding to padding."""
    perm = np.arange(len(mask_row))
    for group in (np.flatnonzero(mask_row), np.flatnonzero(~mask_row)):
        perm[group] = rng.permutation(group)
    return perm


def permute(batch, sym: Symmetries, axis: SetAxis, rng) -> dict:
    """``batch`` with the elements of ``axis`` shuffled (new slot ``i`` holds old ``perm[i]``);
    a flat axis's pointers are remapped so that they follow their elements."""
    out = dict(batch)
    mask = presence(batch, axis, sym)
    if sym.is_dense(axis):
        perm = np.stack([_shuffle_within(row, rng) for row in mask])
        rows = np.arange(len(perm))[:, None]
        for key, ax in axis.arrays.items():
            if ax != 1:
                raise ValueError(f"permute: dense set array {key!r} has its set axis at {ax}; "
                                 "expected 1 (axis 0 indexes the sets)")
            out[key] = np.asarray(batch[key])[rows, perm]
        return out
    perm = _shuffle_within(mask, rng)
    for key, ax in axis.arrays.items():
        out[key] = np.take(np.asarray(batch[key]), perm, axis=ax)
    new_position = np.empty_like(perm)
    new_position[perm] = np.arange(len(perm))
    for key in axis.pointers:
        out[key] = new_position[np.asarray(out[key])]
    return out


def _junk_like(arr: np.ndarray, rng) -> np.ndarray:
    return (JUNK_SCALE * rng.standard_normal(arr.shape)).astype(arr.dtype)


def _expand(mask: np.ndarray, arr: np.ndarray, ax: int, dense: bool) -> np.ndarray:
    """``mask`` broadcast against ``arr`` whose element axis is ``ax``."""
    if dense:
        return mask.reshape(mask.shape + (1,) * (arr.ndim - 2))
    shape = [1] * arr.ndim
    shape[ax] = len(mask)
    return mask.reshape(shape)


def pad(batch, sym: Symmetries, axis: SetAxis, rng, extra: int = 3) -> dict:
    """``batch`` with new junk in the padding of ``axis`` (float arrays) and, if the axis is
    resizable, ``extra`` padding slots appended: floats junk, the mask False, integer arrays
    copied from a padding slot (so that padding keeps its conventions, e.g. flat padding nodes
    in the padding graph), from any slot where there is no padding."""
    out = dict(batch)
    mask = presence(batch, axis, sym)
    dense = sym.is_dense(axis)
    for key, ax in axis.arrays.items():
        arr = np.asarray(batch[key])
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.where(_expand(mask, arr, ax, dense), arr, _junk_like(arr, rng))
        out[key] = arr
    if not axis.resizable or extra <= 0:
        return out
    if dense:
        source = np.stack([rng.choice(np.flatnonzero(~row) if (~row).any() else len(row), extra)
                           for row in mask])
    else:
        pool = np.flatnonzero(~mask) if (~mask).any() else np.arange(len(mask))
        source = rng.choice(pool, extra)
    for key, ax in axis.arrays.items():
        arr = out[key]
        if dense:
            added = arr[np.arange(len(arr))[:, None], source]
        else:
            added = np.take(arr, source, axis=ax)
        if key == axis.mask:
            added = np.zeros_like(added)
        elif np.issubdtype(arr.dtype, np.floating):
            added = _junk_like(added, rng)
        out[key] = np.concatenate([arr, added], axis=ax)
    return out


def _owner(sym: Symmetries, key: str) -> SetAxis:
    for axis in (sym.batch, *sym.sets):
        if key in axis.arrays:
            return axis
    raise ValueError(f"pointer array {key!r} belongs to no declared axis")


def _select(batch: dict, sym: Symmetries, axis: SetAxis, keep: np.ndarray) -> None:
    """Keep the elements ``keep`` (sorted positions) of ``axis`` in ``batch`` (in place), and
    drop the elements of other axes that point to a dropped one."""
    size = axis_size(batch, axis)
    for key, ax in axis.arrays.items():
        if key in batch:
            batch[key] = np.take(np.asarray(batch[key]), keep, axis=ax)
    new_position = np.full(size, -1)
    new_position[keep] = np.arange(len(keep))
    for key in axis.pointers:
        owner = _owner(sym, key)
        ax = owner.arrays[key]
        moved = new_position[np.asarray(batch[key])]
        alive = np.all(np.moveaxis(moved, ax, -1).reshape(-1, moved.shape[ax]) >= 0, axis=0)
        batch[key] = moved
        _select(batch, sym, owner, np.flatnonzero(alive))


def take_sets(batch, sym: Symmetries, rows) -> tuple[dict, np.ndarray]:
    """``(sub-batch, positions)``: the sets ``rows`` of the batch axis, with every absent set
    of the batch axis (padding sets, which flat padding elements belong to) and what belongs
    to them; ``positions[i]`` is the row of ``rows[i]`` in the sub-batch."""
    mask = presence(batch, sym.batch, sym)
    keep = np.union1d(np.asarray(rows, np.int64), np.flatnonzero(~mask))
    out = dict(batch)
    _select(out, sym, sym.batch, keep)
    return out, np.searchsorted(keep, rows)
