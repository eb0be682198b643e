"""Measures of a task model's set symmetries (measure, then assert; see assertions.py).

A task model (:class:`setwise.tasks.protocol.Model`) is driven through two NumPy closures:

- ``predict(batch) -> {name: float64 array}``: evaluation mode, float64 parameters and state,
  a fresh :class:`~setwise.tasks.rng.NumpyRng` of seed :data:`RNG_SEED` every call (fixed
  noise);
- ``grads(batch) -> {name: float64 array}``: the parameter gradients of the training loss,
  with the same fixed noise (``setwise check``'s machinery, :mod:`setwise.tasks.check`).

Each ``*_error`` returns the largest deviation scaled by ``1 + |reference|``
(:func:`conformance.assertions.scaled_error`): invariant outputs row against row, set-valued
outputs as sets (rows matched by the Hungarian assignment of squared distances).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from conformance.assertions import scaled_error
from conformance.set_batches import pad, permute, presence, take_sets
from setwise.tasks.check import RESULTS, Row, compare, float64_batch
from setwise.tasks.rng import NumpyRng
from setwise.tasks.symmetries import SetOutput, Symmetries

RNG_SEED = 1234
Outputs = Mapping[str, np.ndarray]


def converter(backend: str) -> Callable:
    """NumPy -> the backend's arrays (float64 kept)."""
    if backend == "torch":
        import torch

        return lambda a: torch.from_numpy(np.array(a, copy=True))
    import jax.numpy as jnp

    return jnp.asarray


def to_numpy(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach()
    return np.asarray(v)


def predictor(model, backend: str, params: Mapping, state: Mapping) -> Callable:
    """``predict(batch)`` of ``model`` on ``backend`` in float64 with fixed noise."""
    conv = converter(backend)
    p = {k: conv(v) for k, v in params.items()}
    s = {k: conv(v) for k, v in state.items()}

    def predict(batch):
        rng = NumpyRng(RNG_SEED, conv, "float64")
        out = model.predict(p, s, {k: conv(v) for k, v in float64_batch(batch).items()}, rng)
        return {k: to_numpy(v) for k, v in out.items()}

    return predict


def gradient(model, backend: str, params: Mapping, state: Mapping) -> Callable:
    """``grads(batch)``: the training loss's parameter gradients by name (fixed noise)."""
    def grads(batch):
        return RESULTS[backend](model, params, state, float64_batch(batch)).grads

    return grads


def _rows(mask_key, out: Outputs, batch, row: int, size: int) -> np.ndarray:
    if mask_key is None:
        return np.arange(size)
    source = out if mask_key in out else batch
    return np.flatnonzero(np.asarray(source[mask_key], bool)[row])


def set_error(spec: SetOutput, got: Outputs, got_batch, got_rows, want: Outputs, want_batch,
              want_rows) -> float:
    """Deviation of the sets ``got_rows`` of ``got`` from the sets ``want_rows`` of ``want``,
    each set's rows matched by the Hungarian assignment (a different element count is inf)."""
    worst = 0.0
    for g, w in zip(got_rows, want_rows):
        a = [np.asarray(got[k], np.float64)[g] for k in spec.arrays]
        b = [np.asarray(want[k], np.float64)[w] for k in spec.arrays]
        a = np.concatenate([x.reshape(x.shape[0], -1) for x in a], -1)
        b = np.concatenate([x.reshape(x.shape[0], -1) for x in b], -1)
        a = a[_rows(spec.mask, got, got_batch, g, len(a))]
        b = b[_rows(spec.mask, want, want_batch, w, len(b))]
        if len(a) != len(b):
            return float("inf")
        if len(a):
            cost = ((a[:, None] - b[None]) ** 2).sum(-1)
            i, j = linear_sum_assignment(cost)
            worst = max(worst, scaled_error(a[i], b[j]))
    return worst


def outputs_error(sym: Symmetries, got: Outputs, got_batch, got_rows, want: Outputs,
                  want_batch, want_rows) -> float:
    """The worst deviation over the declared outputs of the sets ``got_rows`` / ``want_rows``."""
    errs = [scaled_error(np.asarray(got[k])[got_rows], np.asarray(want[k])[want_rows])
            for k in sym.invariant]
    errs += [set_error(s, got, got_batch, got_rows, want, want_batch, want_rows)
             for s in sym.equivariant]
    return max(errs, default=0.0)


def real_rows(batch, sym: Symmetries) -> np.ndarray:
    return np.flatnonzero(presence(batch, sym.batch, sym))


def _transformed_error(predict, batch, sym, transform) -> float:
    rows = real_rows(batch, sym)
    changed = transform(batch)
    return outputs_error(sym, predict(changed), changed, rows, predict(batch), batch, rows)


def permutation_error(predict, batch, sym: Symmetries, axis, rng) -> float:
    """Deviation of the predictions when the elements of ``axis`` are shuffled."""
    return _transformed_error(predict, batch, sym, lambda b: permute(b, sym, axis, rng))


def padding_error(predict, batch, sym: Symmetries, axis, rng) -> float:
    """Deviation when ``axis``'s padding gets new junk (and new slots, if resizable)."""
    return _transformed_error(predict, batch, sym, lambda b: pad(b, sym, axis, rng))


def companion_error(predict, batch, sym: Symmetries, rng) -> float:
    """Deviation of each set's prediction between the batch and the sub-batch of the sets of
    a random half of it (its companions gone)."""
    rows = real_rows(batch, sym)
    if len(rows) < 2:
        return 0.0
    whole = predict(batch)
    half = np.sort(rng.permutation(rows)[: len(rows) // 2])
    part, positions = take_sets(batch, sym, half)
    return outputs_error(sym, predict(part), part, positions, whole, batch, half)


def gradient_permutation_error(grads, batch, sym: Symmetries, axis, rng) -> float:
    """Deviation of the training loss's parameter gradients (by name) when the elements of
    ``axis`` are shuffled, the noise fixed (paper 2, Lemma 1), relative to each gradient's
    largest entry."""
    want, got = grads(batch), grads(permute(batch, sym, axis, rng))
    worst = 0.0
    for name, w in want.items():
        scale = 1.0 + float(np.max(np.abs(w), initial=0.0))
        worst = max(worst, float(np.max(np.abs(got[name] - w), initial=0.0)) / scale)
    return worst


def undeclared_outputs(sym: Symmetries, outputs: Outputs) -> set[str]:
    """Predict outputs the declaration names neither invariant, set-valued nor diagnostic."""
    return set(outputs) - sym.declared_outputs()


def backend_disagreement(name: str, models: Mapping, params: Mapping, state: Mapping,
                         batch) -> Row:
    """``setwise check``'s comparison (:func:`setwise.tasks.check.compare`) of the ``torch``
    and ``jax`` models on ``batch``: loss, logs, gradients and state in float64."""
    batch = float64_batch(batch)
    results = {b: RESULTS[b](m, params, state, batch) for b, m in models.items()}
    return compare(name, "", params, state, results["torch"], results["jax"])
