"""Small building blocks of the JAX ops (the initialisers stay in the reference).

Parameters are the reference's flat mappings, weights ``[in, out]`` applied as ``x @ W + b``.
"""

from __future__ import annotations

import jax.numpy as jnp


def mlp_depth(params, prefix) -> int:
    """Number of linear layers ``{prefix}_{i}_w`` held in ``params``."""
    depth = 0
    while f"{prefix}_{depth}_w" in params:
        depth += 1
    return depth


def mlp(params, prefix, x, activate_final=False):
    """ReLU MLP over the last axis (no activation after the last layer unless asked)."""
    depth = mlp_depth(params, prefix)
    for i in range(depth):
        x = x @ params[f"{prefix}_{i}_w"] + params[f"{prefix}_{i}_b"]
        if i < depth - 1 or activate_final:
            x = jnp.maximum(x, 0)
    return x


def safe_norm(a, floor):
    """``max(||a||, floor)`` over the last axis, with a finite gradient at ``a = 0``."""
    return jnp.sqrt(jnp.maximum((a * a).sum(-1, keepdims=True), floor * floor))


def pad_rows(a, size, axis):
    """``a`` cut or zero-padded to ``size`` along ``axis``."""
    have = a.shape[axis]
    if have >= size:
        return jnp.take(a, jnp.arange(size), axis=axis)
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, size - have)
    return jnp.pad(a, widths)
