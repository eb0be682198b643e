"""JAX: the Set2Graph layer of :mod:`setwise.tasks.layers.set2graph` (same layout, same
structure; pure, jit-able)."""

from __future__ import annotations

import sys

import jax.numpy as jnp

from setwise.tasks.layers.jax.mlp import mlp
from setwise.tasks.layers.set2graph import MLPSpec, pair_mask, run_set2graph

__all__ = ["mlp", "pair_mask", "set2graph"]

broadcast_to = jnp.broadcast_to
where = jnp.where


def concat(xs, axis):
    return jnp.concatenate(xs, axis=axis)


def swap_pairs(e):
    return jnp.swapaxes(e, 1, 2)


def eye_bool(n, like):
    return jnp.eye(n, dtype=bool)


def set2graph(params, prefix, spec: MLPSpec, x, mask, symmetric=True):
    """See :func:`setwise.tasks.layers.set2graph.run_set2graph`."""
    return run_set2graph(sys.modules[__name__], params, prefix, spec, x, mask, symmetric)
