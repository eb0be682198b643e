"""Baseline aggregators (DESIGN.md section 4): sum, mean, max, attention pooling and PNA.

Every aggregator maps a batch of sets (dense + mask, or segments) to ``[num_sets, out]``, is
invariant to element order, padding and batch companions, and gives finite values on empty
sets (0 for sum / mean / max / attention).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from setwise.reference import nn
from setwise.reference import validation as V
from setwise.reference.segments import (
    as_segments,
    segment_max,
    segment_min,
    segment_softmax,
    segment_sum,
)

PNA_STD_EPS = 1e-5


def sum_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_s = sum_{i in s} x_i``: ``[num_sets, dim]``.

    >>> sum_pool(np.array([[[1.], [2.]], [[3.], [9.]]]), np.array([[True, True], [True, False]]))
    array([[3.],
           [3.]])
    """
    seg = as_segments("sum_pool", x, mask, index, ptr, num_sets)
    return segment_sum(seg.weight[:, None] * seg.x, seg.index, seg.num_sets)


def mean_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_s = (1/N_s) sum_{i in s} x_i`` (0 for an empty set): ``[num_sets, dim]``."""
    seg = as_segments("mean_pool", x, mask, index, ptr, num_sets)
    total = segment_sum(seg.weight[:, None] * seg.x, seg.index, seg.num_sets)
    count = segment_sum(seg.weight, seg.index, seg.num_sets)
    return total / np.maximum(count, 1)[:, None]


def max_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    """``y_{s,d} = max_{i in s} x_{i,d}`` (0 for an empty set): ``[num_sets, dim]``."""
    seg = as_segments("max_pool", x, mask, index, ptr, num_sets)
    return segment_max(seg.x, seg.index, seg.num_sets, seg.weight)


def init_attention_pool(rng, in_dim, out_dim, *, num_heads=4, dtype="float32"):
    """Parameters of multi-head attention pooling with learned queries.

    Returns:
        ``key_w [in_dim, out_dim]``, ``key_b``, ``value_w [in_dim, out_dim]``, ``value_b``,
        ``query [num_heads, out_dim // num_heads]``.
    """
    op = "init_attention_pool"
    V.check_positive_int(op, "num_heads", num_heads)
    if out_dim % num_heads:
        V.fail(op, "out_dim", f"is {out_dim}", f"a multiple of num_heads = {num_heads}")
    rng, dtype = nn.as_rng(rng), nn.check_dtype(op, dtype)
    params = {}
    nn.init_linear(rng, params, "key", in_dim, out_dim, dtype)
    nn.init_linear(rng, params, "value", in_dim, out_dim, dtype)
    head = out_dim // num_heads
    params["query"] = nn.truncated_normal(rng, (num_heads, head), 1 / np.sqrt(head), dtype)
    return params


def attention_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None):
    """Multi-head attention pooling: one learned query per head, masked softmax over the set.

    .. math::

        k_i = x_i W_k + b_k, \\quad v_i = x_i W_v + b_v \\quad\\text{(split into H heads)},\\\\
        y_{s,h} = \\sum_{i \\in s} \\mathrm{softmax}_{i \\in s}
                  \\Big(\\frac{q_h \\cdot k_{i,h}}{\\sqrt{D/H}}\\Big) v_{i,h}

    Returns ``[num_sets, out_dim]`` (heads concatenated); 0 for an empty set.
    """
    op = "attention_pool"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    check_attention_args(op, params, seg.x.shape[1])
    heads, width = params["query"].shape
    k = (seg.x @ params["key_w"] + params["key_b"]).reshape(-1, heads, width)
    v = (seg.x @ params["value_w"] + params["value_b"]).reshape(-1, heads, width)
    logits = (k * params["query"]).sum(-1) / float(np.sqrt(width))
    p = segment_softmax(logits, seg.index, seg.num_sets, seg.weight)
    return segment_sum((p[..., None] * v).reshape(len(v), heads * width), seg.index,
                       seg.num_sets)


def check_attention_args(op, params, dim):
    """The whole attention-pooling mapping for elements of size ``dim``: ``key_w [dim, D]``,
    ``key_b [D]``, ``value_w [dim, D]``, ``value_b [D]``, ``query [H, D / H]``. Shared by
    every backend."""
    V.check_params(op, params, {"key_w": (None, None), "query": (None, None)})
    in_dim, out = V._shape_dtype(params["key_w"])[0]
    heads, width = V._shape_dtype(params["query"])[0]
    if dim != in_dim:
        V.fail(op, "x", f"has dim {dim}", f"{in_dim}, the rows of params['key_w']")
    if heads * width != out:
        V.fail(op, "params['query']", f"has shape {(heads, width)}",
               f"[num_heads, out_dim / num_heads] with num_heads * width = {out} (key_w's "
               "columns)")
    V.check_params(op, params, {"key_w": (dim, out), "key_b": (out,), "value_w": (dim, out),
                                "value_b": (out,), "query": (heads, width)})


def pna_delta(set_sizes):
    """PNA's ``delta``: the mean of ``log(N + 1)`` over the training sets' sizes.

    Refuses an empty list and negative or non-finite sizes (they would give NaN).
    """
    sizes = np.asarray(set_sizes, dtype=np.float64).reshape(-1)
    if sizes.size == 0:
        V.fail("pna_delta", "set_sizes", "is empty", "the sizes of at least one training set")
    if not (np.isfinite(sizes).all() and sizes.min() >= 0):
        V.fail("pna_delta", "set_sizes", f"has values in [{sizes.min()}, {sizes.max()}]",
               "finite sizes >= 0")
    return float(np.mean(np.log(sizes + 1)))


def init_pna_pool(rng, in_dim, out_dim, *, dtype="float32"):
    """Parameters of PNA pooling: the linear map ``weight [12 * in_dim, out_dim]``, ``bias``."""
    rng, dtype = nn.as_rng(rng), nn.check_dtype("init_pna_pool", dtype)
    params = {}
    nn.init_linear(rng, params, "pna", 12 * in_dim, out_dim, dtype)
    return {"weight": params["pna_w"], "bias": params["pna_b"]}


def check_pna_args(op, params, dim, delta):
    """PNA's ``weight [12 * dim, out]`` and ``bias [out]``, and ``delta > 0`` (a traced,
    non-numeric ``delta`` is left unchecked). Shared by every backend."""
    V.check_params(op, params, {"bias": (None,), "weight": (None, None)})
    rows = V._shape_dtype(params["weight"])[0][0]
    if rows % 12 == 0 and rows != 12 * dim:
        V.fail(op, "x", f"has dim {dim}", f"{rows // 12} (params['weight'] has 12 * "
               f"{rows // 12} rows)")
    V.check_params(op, params, {"bias": (None,),
                                "weight": (12 * dim, V._shape_dtype(params["bias"])[0][0])})
    if isinstance(delta, numbers.Real) and not delta > 0:
        V.fail(op, "delta", f"is {delta!r}", "a positive value (mean log(N + 1) of training sets)")


def pna_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None, delta=1.0):
    """Principal Neighbourhood Aggregation (Corso et al. 2020) as a global pooling.

    Four aggregators (mean, max, min, std) times three scalers (identity, amplification
    ``log(N+1)/delta``, attenuation ``delta/log(N+1)``), concatenated as
    ``[identity(aggs), amplification(aggs), attenuation(aggs)]`` (PyG's order), then
    ``@ weight + bias``. Returns ``[num_sets, out_dim]``.

    Notes:
        ``std = sqrt(relu(E[x^2] - E[x]^2) + 1e-5)`` as in PyG. An empty set has every
        aggregator 0 (std ``sqrt(1e-5)``) and its attenuation uses ``log 2`` (as for N = 1)
        instead of dividing by ``log 1 = 0``.
    """
    op = "pna_pool"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    check_pna_args(op, params, seg.x.shape[1], delta)
    w = seg.weight[:, None]
    count = segment_sum(seg.weight, seg.index, seg.num_sets)[:, None]
    mean = segment_sum(w * seg.x, seg.index, seg.num_sets) / np.maximum(count, 1)
    sq = segment_sum(w * seg.x**2, seg.index, seg.num_sets) / np.maximum(count, 1)
    std = np.sqrt(np.maximum(sq - mean**2, 0) + PNA_STD_EPS)
    aggs = np.concatenate([mean, segment_max(seg.x, seg.index, seg.num_sets, seg.weight),
                           segment_min(seg.x, seg.index, seg.num_sets, seg.weight), std], -1)
    log_n = np.log(count + 1)
    scaled = [aggs, aggs * (log_n / delta), aggs * (delta / np.maximum(log_n, math.log(2)))]
    return np.concatenate(scaled, -1) @ params["weight"] + params["bias"]
