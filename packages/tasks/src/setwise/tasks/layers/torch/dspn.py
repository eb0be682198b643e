"""PyTorch: DSPN's FSPool encoder and inner loop (:mod:`setwise.tasks.layers.dspn`).

:func:`dspn_refine` differentiates the representation loss w.r.t. the set with
``torch.autograd.grad(..., create_graph=True)`` when ``differentiable``, so the outer loss
back-propagates through every inner step (second order).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from setwise.tasks.layers.dspn import FSPOOL_FILL, FSEncoderSpec
from setwise.tasks.layers.torch import mlp as mlp_layers


def fspool_ratios(sizes, max_size, dtype):
    """See :func:`setwise.tasks.layers.dspn.fspool_ratios`."""
    r = torch.arange(max_size, dtype=dtype, device=sizes.device)[None, :] \
        / torch.clamp(sizes - 1, min=1).to(dtype)[:, None]
    return torch.clamp(r, max=1), r <= 1


def fspool_weights(pool_w, ratios):
    """See :func:`setwise.tasks.layers.dspn.fspool_weights`: ``[num_sets, N, C]``."""
    pieces = pool_w.shape[1] - 1
    index = pieces * ratios
    left = torch.floor(index).long()
    frac = (index - left.to(index.dtype))[..., None]
    right = torch.clamp(left + 1, max=pieces)
    table = pool_w.T
    return (1 - frac) * table[left] + frac * table[right]


def fspool(params, prefix, h, valid=None):
    """FSPool of ``h [num_sets, N, C]`` over ``valid [num_sets, N]`` (None: all slots)."""
    num_sets, max_size, _ = h.shape
    if valid is None:
        sizes = torch.full((num_sets,), max_size, dtype=h.dtype, device=h.device)
    else:
        sizes = valid.sum(1).to(h.dtype)
        h = torch.where(valid[..., None], h, FSPOOL_FILL)
    ratios, keep = fspool_ratios(sizes, max_size, h.dtype)
    ordered = torch.sort(h, dim=1, descending=True, stable=True).values
    weight = fspool_weights(params[f"{prefix}_pool_w"], ratios)
    return (ordered * weight * keep[..., None]).sum(1)


def fs_encoder(params, prefix, spec: FSEncoderSpec, x, m, valid=None):
    """DSPN's ``FSEncoder``: ``MLP([x, m]) / N``, FSPool. Returns ``[num_sets, latent]``."""
    h = mlp_layers.mlp(params, f"{prefix}_mlp", spec.mlp, torch.cat([x, m[..., None]], -1))
    return fspool(params, prefix, h / x.shape[1], valid)


def repr_loss(pred, target):
    """``sum_b mean_k smooth_l1(pred - target)`` (see the NumPy module's Notes)."""
    return F.smooth_l1_loss(pred, target, reduction="none").mean(-1).sum()


def dspn_refine(encode, z, x0, m0, *, num_steps, step_size, differentiable=True):
    """DSPN's inner loop: refine ``(x0, m0)`` so that ``encode(x, m)`` approaches ``z``.

    Args:
        encode: ``(x, m) -> [num_sets, latent]``, the set encoder (parameters closed over).
        z: ``[num_sets, latent]`` target representations.
        x0: ``[num_sets, N, c]`` initial set; ``m0 [num_sets, N]`` initial mask (clipped to
            ``[0, 1]`` first).
        num_steps: inner gradient steps ``T``; ``step_size``: ``eta``.
        differentiable: build the graph of every inner gradient (training: second order);
            False detaches each step (evaluation, as DSPN in ``eval`` mode).

    Returns:
        ``(sets, masks, info)``: ``T + 1`` sets ``[num_sets, N, c]`` and masks (the initial
        ones first), and ``info`` with ``repr_loss [T]`` (the loss before each step, per set
        mean) and ``grad_norm [T]`` (norm of the set's gradient at each step).
    """
    x, m = x0, torch.clamp(m0, 0, 1)
    sets, masks, losses, norms = [x], [m], [], []
    for _ in range(num_steps):
        with torch.enable_grad():
            if not differentiable or not x.requires_grad:
                x, m = x.detach().requires_grad_(True), m.detach().requires_grad_(True)
            loss = repr_loss(encode(x, m), z)
            gx, gm = torch.autograd.grad(loss, [x, m], create_graph=differentiable)
        x = x - step_size * gx
        m = torch.clamp(m - step_size * gm, 0, 1)
        if not differentiable:
            x, m, loss, gx = x.detach(), m.detach(), loss.detach(), gx.detach()
        sets.append(x)
        masks.append(m)
        losses.append(loss / z.shape[0])
        norms.append(torch.linalg.vector_norm(gx))
    info = {"repr_loss": torch.stack(losses) if losses else x.new_zeros(0),
            "grad_norm": torch.stack(norms) if norms else x.new_zeros(0)}
    return sets, masks, info
