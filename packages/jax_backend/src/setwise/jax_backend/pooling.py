"""Baseline aggregators in JAX: sum, mean, max, attention pooling and PNA.

Same functions and math as :mod:`setwise.reference.pooling`; jit-compatible (``num_sets``
static) and vmap-compatible. Dense batches reduce with reshapes, segment batches with
``jax.ops.segment_*``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from setwise.jax_backend.api import cast_params, converted
from setwise.jax_backend.segments import as_segments
from setwise.reference import pooling as ref
from setwise.reference.pooling import PNA_STD_EPS, check_pna_args, pna_delta

__all__ = ["attention_pool", "init_attention_pool", "init_pna_pool", "max_pool", "mean_pool",
           "pna_delta", "pna_pool", "sum_pool"]

init_attention_pool = converted(ref.init_attention_pool)
init_pna_pool = converted(ref.init_pna_pool)


def sum_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_s = sum_{i in s} x_i``: ``[num_sets, dim]`` (see the reference)."""
    return _sum_pool(as_segments("sum_pool", x, mask, index, ptr, num_sets))


@jax.jit
def _sum_pool(seg):
    return seg.sum(seg.weight[:, None] * seg.x)


def mean_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_s = (1/N_s) sum_{i in s} x_i`` (0 for an empty set): ``[num_sets, dim]``."""
    return _mean_pool(as_segments("mean_pool", x, mask, index, ptr, num_sets))


@jax.jit
def _mean_pool(seg):
    total = seg.sum(seg.weight[:, None] * seg.x)
    return total / jnp.maximum(seg.sizes(), 1)[:, None]


def max_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_{s,d} = max_{i in s} x_{i,d}`` (0 for an empty set): ``[num_sets, dim]``."""
    return _max_pool(as_segments("max_pool", x, mask, index, ptr, num_sets))


@jax.jit
def _max_pool(seg):
    return seg.extreme(seg.x, largest=True)


def attention_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None):
    """Multi-head attention pooling with learned queries: ``[num_sets, out_dim]``.

    See :func:`setwise.reference.attention_pool`.
    """
    op = "attention_pool"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    ref.check_attention_args(op, params, seg.x.shape[1])
    return _attention_pool(cast_params(params, seg.x.dtype), seg)


@jax.jit
def _attention_pool(params, seg):
    heads, width = params["query"].shape
    k = (seg.x @ params["key_w"] + params["key_b"]).reshape(seg.x.shape[0], heads, width)
    v = (seg.x @ params["value_w"] + params["value_b"]).reshape(seg.x.shape[0], heads, width)
    logits = (k * params["query"]).sum(-1) / float(np.sqrt(width))
    p = seg.softmax(logits)
    return seg.sum((p[..., None] * v).reshape(v.shape[0], heads * width))


def pna_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None, delta=1.0):
    """Principal Neighbourhood Aggregation as a global pooling: ``[num_sets, out_dim]``.

    See :func:`setwise.reference.pna_pool` (PyG's order and std; empty sets as there).
    ``delta`` may be a number (checked) or a JAX array (traced, unchecked).
    """
    op = "pna_pool"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    check_pna_args(op, params, seg.x.shape[1], delta)
    if not isinstance(delta, jax.Array):
        delta = float(delta)
    return _pna_pool(cast_params(params, seg.x.dtype), seg, delta)


@jax.jit
def _pna_pool(params, seg, delta):
    w = seg.weight[:, None]
    count = seg.sizes()[:, None]
    mean = seg.sum(w * seg.x) / jnp.maximum(count, 1)
    sq = seg.sum(w * seg.x**2) / jnp.maximum(count, 1)
    std = jnp.sqrt(jnp.maximum(sq - mean**2, 0) + PNA_STD_EPS)
    aggs = jnp.concatenate([mean, seg.extreme(seg.x, largest=True),
                            seg.extreme(seg.x, largest=False), std], -1)
    log_n = jnp.log(count + 1)
    scaled = [aggs, aggs * (log_n / delta),
              aggs * (delta / jnp.maximum(log_n, float(np.log(2))))]
    return jnp.concatenate(scaled, -1) @ params["weight"] + params["bias"]
