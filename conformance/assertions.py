"""Measuring helpers and the assertions built on them (e3nn's pattern: measure, then assert).

Each ``*_error`` returns a number, the largest deviation scaled by ``1 + |reference|``; each
``assert_*`` thresholds it with the tolerance table and, on failure, names the op, its keyword
arguments and a snippet that reproduces the case. The helpers take a *set function*
``fn(x [num_sets, max_size, dim], mask [num_sets, max_size]) -> [num_sets, ...]`` working on
NumPy arrays (:func:`set_function` wraps any backend's op into one).
"""

from __future__ import annotations

import numpy as np

from conformance.tolerances import tolerance


def scaled_error(got, want) -> float:
    """``max |got - want| / (1 + |want|)`` elementwise (0 for empty arrays)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"shape mismatch: {got.shape} vs {want.shape}")
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want) / (1 + np.abs(want))))


def set_function(B, op_name, *args, **kwargs):
    """Wrap ``B.<op_name>(*args, x, mask, **kwargs)`` as a NumPy set function.

    ``args`` (parameters) are converted with ``B.convert_params`` when they are mappings.
    """
    op = getattr(B, op_name)
    conv = [B.convert_params(a) if isinstance(a, dict) else a for a in args]

    def fn(x, mask):
        out = op(*conv, B.asarray(x), B.asarray(mask), **kwargs)
        return B.to_numpy(out[0] if isinstance(out, tuple) else out)

    fn.__name__ = op_name
    return fn


def permutation_error(fn, x, mask, rng) -> float:
    """Deviation of ``fn`` when the slots of every set are shuffled (padding moves too)."""
    perm = np.stack([rng.permutation(x.shape[1]) for _ in range(x.shape[0])])
    xp = np.take_along_axis(x, perm[..., None], 1)
    mp = np.take_along_axis(mask, perm, 1)
    return scaled_error(fn(xp, mp), fn(x, mask))


def padding_error(fn, x, mask, rng, extra=3) -> float:
    """Deviation of ``fn`` when padding slots get new junk values and ``extra`` slots are added."""
    junk = rng.normal(0, 100, (x.shape[0], x.shape[1] + extra, x.shape[2])).astype(x.dtype)
    xp = junk.copy()
    xp[:, : x.shape[1]][mask] = x[mask]
    mp = np.zeros(xp.shape[:2], bool)
    mp[:, : x.shape[1]] = mask
    return scaled_error(fn(xp, mp), fn(x, mask))


def companion_error(fn, x, mask, rng) -> float:
    """Deviation of each set's result between the batch and a batch of that set alone."""
    whole = fn(x, mask)
    alone = np.concatenate([fn(x[s : s + 1], mask[s : s + 1]) for s in range(x.shape[0])])
    del rng
    return scaled_error(alone, whole)


def backend_mismatch(got, want) -> float:
    """Deviation of a backend's result from the reference's (same shape)."""
    return scaled_error(got, want)


def assert_close(got, want, quantity, dtype, op=None, context=""):
    """``|got - want| <= atol + rtol |want|`` with the table's tolerance, else a full report."""
    rtol, atol = tolerance(quantity, dtype, op)
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{op}: shape {got.shape} != expected {want.shape}. {context}")
    bad = np.abs(got - want) > atol + rtol * np.abs(want)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"{op or quantity}: {int(bad.sum())} of {bad.size} values off ({quantity}, {dtype}, "
            f"rtol={rtol}, atol={atol}); first at {where}: got {got[where]!r}, want "
            f"{want[where]!r}, max scaled error {scaled_error(got, want):.3g}. {context}")


def assert_invariant(measure, fn, x, mask, dtype, rng, context=""):
    """Threshold one of the ``*_error`` measures with the invariance tolerance."""
    rtol, atol = tolerance("invariance", dtype)
    err = measure(fn, x, mask, rng)
    if err > atol + rtol:
        raise AssertionError(
            f"{getattr(fn, '__name__', fn)}: {measure.__name__} = {err:.3g} > {atol + rtol:.3g} "
            f"({dtype}). Reproduce: x, mask = SetBatch(...).dense() as in {context}")
