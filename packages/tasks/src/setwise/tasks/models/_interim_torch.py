"""TEMPORARY stand-in for setwise.torch_backend (dense inputs only), used only while that
backend does not import. Same signatures as the reference; removed once the backend lands."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F


class EAInfo(NamedTuple):
    aux_loss: object
    grad_max_norm: object
    active_steps: object


def _weight(x, mask):
    return torch.ones(x.shape[:2], dtype=x.dtype, device=x.device) if mask is None \
        else mask.to(x.dtype)


def _potential(params, z):
    depth = 0
    while f"potential_{depth}_w" in params:
        depth += 1
    for i in range(depth):
        p = f"potential_{i}"
        a = z @ params[f"{p}_w"] + params[f"{p}_b"]
        if i < depth - 1:
            a = F.layer_norm(a, a.shape[-1:], params[f"{p}_ln_scale"], params[f"{p}_ln_offset"],
                             1e-5)
            a = torch.tanh(a)
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
    scale = torch.log2(count + 1) / (count + 1e-8) if scaled else torch.ones_like(count)
    lam = F.softplus(params["reg_weight_raw"])
    alpha = F.softplus(params["step_size_raw"])
    mu = torch.sigmoid(params["momentum_raw"])
    create_graph = torch.is_grad_enabled()
    y = x.new_zeros(b, out_dim)
    v = torch.zeros_like(y)
    aux = x.new_zeros(b)
    active_steps = torch.zeros(b, dtype=torch.int64, device=x.device)
    for _ in range(num_steps):
        with torch.enable_grad():
            yq = y + mu * v
            if not yq.requires_grad:
                yq.requires_grad_()
            f = _potential(params, torch.cat([x, yq[:, None].expand(b, n, out_dim)], -1))
            e = scale * (lam * (yq**2).sum(-1) + (w * f).sum(1))
            (g,) = torch.autograd.grad(e.sum(), yq, create_graph=create_graph)
        g_max = g.abs().amax(-1)
        active = (g_max >= gtol).to(x.dtype)
        v = mu * v - alpha * g
        y = y + active[:, None] * v
        if clip is not None:
            y = y.clamp(-clip, clip)
        aux = aux + (g**2).sum(-1)
        active_steps = active_steps + active.long()
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
        logits = logits.masked_fill(~mask[..., None], float("-inf"))
    p = torch.softmax(logits, 1).nan_to_num(0.0)
    return (p[..., None] * v).sum(1).reshape(b, heads * width)


def pna_pool(params, x, mask=None, *, index=None, ptr=None, num_sets=None, delta=1.0):
    w = _weight(x, mask)[..., None]
    count = w.sum(1)
    mean = (w * x).sum(1) / count.clamp(min=1)
    sq = (w * x**2).sum(1) / count.clamp(min=1)
    std = torch.sqrt(torch.relu(sq - mean**2) + 1e-5)
    big = torch.finfo(x.dtype).max
    mx = torch.where(w > 0, x, -big).amax(1)
    mn = torch.where(w > 0, x, big).amin(1)
    mx = torch.where(count > 0, mx, 0.0)
    mn = torch.where(count > 0, mn, 0.0)
    aggs = torch.cat([mean, mx, mn, std], -1)
    log_n = torch.log(count + 1)
    scaled = [aggs, aggs * (log_n / delta), aggs * (delta / log_n.clamp(min=math.log(2)))]
    return torch.cat(scaled, -1) @ params["weight"] + params["bias"]
