"""TEMPORARY stand-in for setwise.jax_backend (dense inputs only), used only while that
backend does not import. Same signatures as the reference; removed once the backend lands."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


class EAInfo(NamedTuple):
    aux_loss: object
    grad_max_norm: object
    active_steps: object


def _weight(x, mask):
    return jnp.ones(x.shape[:2], x.dtype) if mask is None else mask.astype(x.dtype)


def _potential(params, z):
    depth = 0
    while f"potential_{depth}_w" in params:
        depth += 1
    for i in range(depth):
        p = f"potential_{i}"
        a = z @ params[f"{p}_w"] + params[f"{p}_b"]
        if i < depth - 1:
            mu = a.mean(-1, keepdims=True)
            var = ((a - mu) ** 2).mean(-1, keepdims=True)
            a = (a - mu) / jnp.sqrt(var + 1e-5) * params[f"{p}_ln_scale"] \
                + params[f"{p}_ln_offset"]
            a = jnp.tanh(a)
        skip = z @ params[f"{p}_proj_w"] + params[f"{p}_proj_b"] if f"{p}_proj_w" in params else z
        z = skip + a
    return (z**2).mean(-1)


def equilibrium_aggregation(params, x, mask=None, *, index=None, ptr=None, num_sets=None,
                            potential="residual", num_steps=5, scaled=True, gtol=1e-3,
                            clip=None, out_dim=None, grad_mode="unrolled", truncate_steps=None,
                            return_info=False):
    w = _weight(x, mask)
    b, n, _ = x.shape
    out_dim = params["potential_0_w"].shape[0] - x.shape[-1]
    count = w.sum(1)
    scale = jnp.log2(count + 1) / (count + 1e-8) if scaled else jnp.ones_like(count)
    lam = jax.nn.softplus(params["reg_weight_raw"])
    alpha = jax.nn.softplus(params["step_size_raw"])
    mu = jax.nn.sigmoid(params["momentum_raw"])

    def total_energy(y):
        f = _potential(params, jnp.concatenate([x, jnp.broadcast_to(y[:, None],
                                                                     (b, n, out_dim))], -1))
        return (scale * (lam * (y**2).sum(-1) + (w * f).sum(1))).sum()

    y = jnp.zeros((b, out_dim), x.dtype)
    v = jnp.zeros_like(y)
    aux = jnp.zeros(b, x.dtype)
    active_steps = jnp.zeros(b, jnp.int32)
    for _ in range(num_steps):
        g = jax.grad(total_energy)(y + mu * v)
        g_max = jnp.abs(g).max(-1)
        active = (g_max >= gtol).astype(x.dtype)
        v = mu * v - alpha * g
        y = y + active[:, None] * v
        if clip is not None:
            y = jnp.clip(y, -clip, clip)
        aux = aux + (g**2).sum(-1)
        active_steps = active_steps + active.astype(jnp.int32)
    if not return_info:
        return y
    return y, EAInfo(aux / num_steps, g_max, active_steps)


def sum_pool(x, mask=None, *, index=None, ptr=None, num_sets=None):
    return (_weight(x, mask)[..., None] * x).sum(1)


def attention_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None):
    heads, width = params["query"].shape
    b, n, _ = x.shape
    k = (x @ params["key_w"] + params["key_b"]).reshape(b, n, heads, width)
    v = (x @ params["value_w"] + params["value_b"]).reshape(b, n, heads, width)
    logits = (k * params["query"]).sum(-1) / math.sqrt(width)
    if mask is not None:
        logits = jnp.where(mask[..., None], logits, -jnp.inf)
    p = jax.nn.softmax(logits, 1)
    p = jnp.where(jnp.isfinite(p), p, 0.0)
    return (p[..., None] * v).sum(1).reshape(b, heads * width)


def pna_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None, delta=1.0):
    w = _weight(x, mask)[..., None]
    count = w.sum(1)
    mean = (w * x).sum(1) / jnp.maximum(count, 1)
    sq = (w * x**2).sum(1) / jnp.maximum(count, 1)
    std = jnp.sqrt(jax.nn.relu(sq - mean**2) + 1e-5)
    big = jnp.finfo(x.dtype).max
    mx = jnp.where(count > 0, jnp.where(w > 0, x, -big).max(1), 0.0)
    mn = jnp.where(count > 0, jnp.where(w > 0, x, big).min(1), 0.0)
    aggs = jnp.concatenate([mean, mx, mn, std], -1)
    log_n = jnp.log(count + 1)
    scaled = [aggs, aggs * (log_n / delta), aggs * (delta / jnp.maximum(log_n, math.log(2)))]
    return jnp.concatenate(scaled, -1) @ params["weight"] + params["bias"]
