"""JAX: linear, layer norm and the residual MLP of :mod:`setwise.tasks.layers.mlp`."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp

from setwise.tasks.layers.mlp import LN_EPS, MLPSpec, run_mlp


def activation(name, x):
    if name == "relu":
        return jax.nn.relu(x)
    return jnp.tanh(x) if name == "tanh" else x


def linear(params, prefix, x):
    """``x [..., in] @ w + b -> [..., out]``."""
    out = x @ params[f"{prefix}_w"]
    bias = params.get(f"{prefix}_b")
    return out if bias is None else out + bias


def layer_norm(params, prefix, x):
    """Layer norm of the last axis of ``x [..., width]``."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + LN_EPS) * params[f"{prefix}_ln_scale"] \
        + params[f"{prefix}_ln_offset"]


def mlp(params, prefix, spec: MLPSpec, x):
    """MLP ``{prefix}`` of ``spec`` on ``x [..., in] -> [..., sizes[-1]]``."""
    return run_mlp(sys.modules[__name__], params, prefix, spec, x)
