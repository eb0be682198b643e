"""Top-n creation in PyTorch (paper 2, eqs. 5-10; the math is :mod:`setwise.reference.top_n`).

The selection (a stable descending sort) has no gradient; the angles, the angle MLP, the
reference points and the FiLM weights learn through ``c~`` and the gathered points.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from setwise.reference import top_n as ref_top_n
from setwise.reference import validation as V
from setwise.reference.top_n import COS_EPS
from setwise.torch_backend.nn import (
    as_params,
    as_tensor,
    can_read_values,
    checking_values,
    init_params,
    mlp,
)


def creation_sizes(op, z, n, max_n, limit, limit_name):
    """Validate ``z [num_sets, latent_dim]`` and sizes ``n`` (int, array or tensor).

    Returns ``(n [num_sets] int64 tensor, max_n, mask [num_sets, max_n] bool)``; the sizes are
    read on the host (they decide the output shape).
    """
    V.check_rank(op, "z", z.shape, (2,), "z [num_sets, latent_dim]")
    V.check_float(op, "z", z.dtype)
    if checking_values() and can_read_values(z):
        V.check_finite(op, "z", bool(torch.isfinite(z).all()))
    if isinstance(n, torch.Tensor):
        n = n.detach().cpu().numpy()
    sizes = np.broadcast_to(np.asarray(n), (z.shape[0],)) if np.ndim(n) == 0 else np.asarray(n)
    if sizes.ndim != 1 or (sizes.size and not np.issubdtype(sizes.dtype, np.integer)):
        V.fail(op, "n", f"is {n!r}", "an int or an int array [num_sets]", TypeError)
    if max_n is not None:
        max_n = V.check_positive_int(op, "max_n", max_n, minimum=0)
    V.check_set_sizes(op, sizes.tolist(), z.shape[0], limit, limit_name, max_n)
    max_n = int(sizes.max(initial=0)) if max_n is None else max_n
    sizes = torch.as_tensor(sizes.astype(np.int64), device=z.device)
    mask = torch.arange(max_n, device=z.device)[None, :] < sizes[:, None]
    return sizes, max_n, mask


def init_top_n_creation(rng, latent_dim, out_dim, num_points, *, angle_dim=None,
                        hidden=(64,), dtype="float32"):
    """:func:`setwise.reference.init_top_n_creation`, as tensors."""
    return init_params(ref_top_n.init_top_n_creation, rng, latent_dim, out_dim, num_points,
                       angle_dim=angle_dim, hidden=hidden, dtype=dtype)


def top_n_scores(params, z):
    """``c [num_sets, n0]``: cosine between every reference angle and ``a = MLP(z)``."""
    a = mlp(params, "angle_mlp", z)
    a = a / torch.linalg.vector_norm(a, dim=-1, keepdim=True).clamp_min(COS_EPS)
    phi = params["angles"]
    phi = phi / torch.linalg.vector_norm(phi, dim=-1, keepdim=True).clamp_min(COS_EPS)
    return a @ phi.T


def top_n_creation(params, z, n, *, max_n=None, rng=None):
    """Create one set per latent vector by Top-n selection.

    See :func:`setwise.reference.top_n_creation` (same values). Returns ``(x [num_sets, max_n,
    out_dim], mask [num_sets, max_n])``; rows in order of decreasing cosine, padding rows 0.

    Notes:
        ``max_n`` larger than ``n0`` pads with zero rows (the reference raises a shape error).
    """
    op = "top_n_creation"
    z = as_tensor(z)
    num_points = ref_top_n.check_top_n_params(op, params, z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n0 (reference points)")
    params = as_params(params, z)
    scores = top_n_scores(params, z)
    sel = torch.argsort(scores, dim=-1, descending=True, stable=True)[:, :max_n]
    sel = F.pad(sel, (0, max_n - sel.shape[1]))
    c = torch.where(mask, torch.take_along_dim(scores, sel, -1), float("-inf"))
    top = c.amax(-1, keepdim=True) if max_n else c.new_zeros((z.shape[0], 1))
    e = torch.where(mask, torch.exp(c - torch.where(torch.isfinite(top), top, 0)), 0)
    c_tilde = (e / e.sum(-1, keepdim=True).clamp_min(COS_EPS))[..., None]
    x = params["points"][sel] * (c_tilde * params["w1"]) + c_tilde * params["w2"]
    x = x * (z @ params["w3"])[:, None] + (z @ params["w4"])[:, None]
    return torch.where(mask[..., None], x, 0), mask
