"""JAX: masked multi-head attention and transformer layers of
:mod:`setwise.tasks.layers.transformer` (same layout, same structure; pure, jit-able)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp

from setwise.tasks.layers.jax.mlp import layer_norm, linear
from setwise.tasks.layers.transformer import run_attention, run_transformer_layer

einsum = jnp.einsum
where = jnp.where


def relu(x):
    return jax.nn.relu(x)


def masked_softmax(scores, mask):
    """Softmax over the last axis restricted to ``mask``; 0 where masked or empty."""
    s = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    top = jax.lax.stop_gradient(s.max(-1, keepdims=True))
    e = jnp.where(mask, jnp.exp(s - top), 0)
    return e / jnp.maximum(e.sum(-1, keepdims=True), 1e-30)


def attention(params, prefix, x, mask, num_heads, context=None, context_mask=None):
    """See :func:`setwise.tasks.layers.transformer.run_attention`."""
    return run_attention(sys.modules[__name__], params, prefix, x, mask, num_heads, context,
                         context_mask)


def transformer_layer(params, prefix, x, mask, num_heads, norm_first=False):
    """See :func:`setwise.tasks.layers.transformer.run_transformer_layer`."""
    return run_transformer_layer(sys.modules[__name__], params, prefix, x, mask, num_heads,
                                 norm_first)


__all__ = ["attention", "layer_norm", "linear", "masked_softmax", "transformer_layer"]
