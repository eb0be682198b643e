"""Baseline aggregators in PyTorch: sum, mean, max, attention pooling and PNA.

Same contract as :mod:`setwise.reference.pooling`; every op accepts dense + mask or segments
(``index`` / ``ptr``) tensors on any device and is differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from setwise.reference import pooling as ref_pool
from setwise.reference.pooling import PNA_STD_EPS, check_pna_args
from setwise.torch_backend.nn import as_params, init_params
from setwise.torch_backend.segments import (
    _segment_extreme,
    _segment_softmax,
    as_segments,
    set_sizes,
    set_sum,
)


def sum_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_s = sum_{i in s} x_i``: ``[num_sets, dim]``."""
    seg = as_segments("sum_pool", x, mask, index, ptr, num_sets)
    return set_sum(seg.weight[:, None] * seg.x, seg)


def mean_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_s = (1/N_s) sum_{i in s} x_i`` (0 for an empty set): ``[num_sets, dim]``."""
    seg = as_segments("mean_pool", x, mask, index, ptr, num_sets)
    total = set_sum(seg.weight[:, None] * seg.x, seg)
    return total / set_sizes(seg).clamp_min(1)[:, None]


def max_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_{s,d} = max_{i in s} x_{i,d}`` (0 for an empty set): ``[num_sets, dim]``."""
    seg = as_segments("max_pool", x, mask, index, ptr, num_sets)
    return _segment_extreme("amax", float("-inf"), seg.x, seg.index, seg.num_sets, seg.weight)


def init_attention_pool(rng, in_dim, out_dim, *, num_heads=4, dtype="float32"):
    """:func:`setwise.reference.init_attention_pool`, as tensors."""
    return init_params(ref_pool.init_attention_pool, rng, in_dim, out_dim,
                       num_heads=num_heads, dtype=dtype)


def attention_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None):
    """Multi-head attention pooling with learned queries (:func:`setwise.reference.
    attention_pool`): ``[num_sets, out_dim]``, 0 for an empty set."""
    op = "attention_pool"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    ref_pool.check_attention_args(op, params, seg.x.shape[1])
    params = as_params(params, seg.x)
    heads, width = params["query"].shape
    k = torch.addmm(params["key_b"], seg.x, params["key_w"]).reshape(-1, heads, width)
    v = torch.addmm(params["value_b"], seg.x, params["value_w"]).reshape(-1, heads, width)
    logits = (k * params["query"]).sum(-1) / math.sqrt(width)
    p = _segment_softmax(logits, seg.index, seg.num_sets, seg.weight)
    return set_sum((p[..., None] * v).reshape(len(v), heads * width), seg)


def pna_delta(set_sizes):
    """PNA's ``delta``: the mean of ``log(N + 1)`` over the training sets' sizes (a float)."""
    if isinstance(set_sizes, torch.Tensor):
        set_sizes = set_sizes.detach().cpu().double().numpy()
    return ref_pool.pna_delta(np.asarray(set_sizes))


def init_pna_pool(rng, in_dim, out_dim, *, dtype="float32"):
    """:func:`setwise.reference.init_pna_pool`, as tensors."""
    return init_params(ref_pool.init_pna_pool, rng, in_dim, out_dim, dtype=dtype)


def pna_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None, delta=1.0):
    """Principal Neighbourhood Aggregation as a global pooling (:func:`setwise.reference.
    pna_pool`): ``[num_sets, out_dim]``."""
    op = "pna_pool"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    check_pna_args(op, params, seg.x.shape[1], delta)
    params = as_params(params, seg.x)
    w = seg.weight[:, None]
    count = set_sizes(seg)[:, None]
    mean = set_sum(w * seg.x, seg) / count.clamp_min(1)
    sq = set_sum(w * seg.x.square(), seg) / count.clamp_min(1)
    std = torch.sqrt(torch.relu(sq - mean.square()) + PNA_STD_EPS)
    args = (seg.x, seg.index, seg.num_sets, seg.weight)
    aggs = torch.cat([mean, _segment_extreme("amax", float("-inf"), *args),
                      _segment_extreme("amin", float("inf"), *args), std], -1)
    log_n = torch.log(count + 1)
    scaled = [aggs, aggs * (log_n / delta), aggs * (delta / log_n.clamp_min(math.log(2)))]
    return torch.addmm(params["bias"], torch.cat(scaled, -1), params["weight"])
