"""Set losses in PyTorch: Chamfer, Hungarian (W2), Sinkhorn (same contract as
:mod:`setwise.reference.losses`; one loss per set, ``[num_sets]``)."""

from __future__ import annotations

import torch

from setwise.reference import validation as V
from setwise.reference.losses import CHAMFER_VARIANTS, check_costs, match_costs
from setwise.torch_backend.nn import as_tensor, can_read_values, checking_values


def check_pair(op, x, y, x_mask, y_mask):
    """Validate two padded batches of sets; return them (padding rows zeroed) and their masks
    (all-True where None)."""
    x = as_tensor(x)
    y = as_tensor(y, x)
    x_mask = None if x_mask is None else as_tensor(x_mask, x)
    y_mask = None if y_mask is None else as_tensor(y_mask, x)
    V.check_set_pair(op, x, y, x_mask, y_mask)
    xm = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if x_mask is None \
        else x_mask
    ym = torch.ones(y.shape[:2], dtype=torch.bool, device=x.device) if y_mask is None \
        else y_mask
    zero = x.new_zeros(())
    return torch.where(xm[..., None], x, zero), torch.where(ym[..., None], y, zero), xm, ym


def pairwise_sq_dist(x, y):
    """``[num_sets, n, m]`` squared Euclidean distances, by explicit differences."""
    return (x[:, :, None, :] - y[:, None, :, :]).square().sum(-1)


def checked_costs(op, x, y, xm, ym):
    """``pairwise_sq_dist(x, y)`` of padding-zeroed batches, after the value checks, with one
    host sync: finite present points and finite squared distances
    (:func:`setwise.reference.losses.check_costs`)."""
    d = pairwise_sq_dist(x, y)
    if checking_values() and can_read_values(x, y):
        ok = torch.stack([torch.isfinite(x).all(), torch.isfinite(y).all(),
                          torch.isfinite(d).all()]).tolist()
        V.check_finite(op, "x", ok[0])
        V.check_finite(op, "y", ok[1])
        check_costs(op, ok[2], x.dtype)
    return d


def _min(t, dim):
    if t.shape[dim] == 0:
        return t.new_full(t.shape[:dim] + t.shape[dim + 1:], float("inf"))
    return t.amin(dim)


def chamfer_loss(x, y, x_mask=None, y_mask=None, *, variant="sum"):
    """Chamfer loss per set (:func:`setwise.reference.chamfer_loss`): ``[num_sets]``."""
    op = "chamfer_loss"
    V.check_choice(op, "variant", variant, CHAMFER_VARIANTS)
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    d = checked_costs(op, x, y, xm, ym)
    big = torch.where(xm[:, :, None] & ym[:, None, :], d, float("inf"))
    to_y = torch.where(xm & ym.any(1, keepdim=True), _min(big, 2), 0).sum(1)
    to_x = torch.where(ym & xm.any(1, keepdim=True), _min(big, 1), 0).sum(1)
    out = to_y + to_x
    return out / x.shape[2] if variant == "dspn" else out


def _match(d, xm, ym):
    cost = d.detach().cpu()
    if cost.dtype in (torch.float16, torch.bfloat16):
        cost = cost.float()
    match = match_costs(cost.numpy(), xm.cpu().numpy(), ym.cpu().numpy())
    return torch.as_tensor(match, device=d.device)


def hungarian_matching(x, y, x_mask=None, y_mask=None):
    """Optimal assignment on squared Euclidean costs, per set (SciPy on the host).

    Returns ``[num_sets, n]`` int64: the matched row of ``y`` for each row of ``x``, or -1.
    """
    op = "hungarian_matching"
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    return _match(checked_costs(op, x, y, xm, ym), xm, ym)


def hungarian_loss(x, y, x_mask=None, y_mask=None):
    """Sum of matched squared distances (:func:`setwise.reference.hungarian_loss`).

    The assignment is solved by SciPy on detached host costs; the gradient flows through the
    matched costs only. Returns ``[num_sets]``.
    """
    op = "hungarian_loss"
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    d = checked_costs(op, x, y, xm, ym)
    match = _match(d, xm, ym)
    got = torch.take_along_dim(d, match.clamp_min(0)[..., None], 2)[..., 0]
    return torch.where(match >= 0, got, 0).sum(1)


def _lse(a, dim):
    """log-sum-exp over ``dim`` that gives 0 (not NaN, gradient 0) where every term is -inf."""
    top = a.amax(dim, keepdim=True).detach() if a.shape[dim] else a.sum(dim, keepdim=True)
    top = torch.where(torch.isfinite(top), top, 0)
    total = torch.exp(a - top).sum(dim)
    some = total > 0
    return torch.where(some, torch.log(torch.where(some, total, 1)) + top.squeeze(dim), 0)


def sinkhorn_loss(x, y, x_mask=None, y_mask=None, *, epsilon=1e-2, num_iters=200):
    """Entropic optimal transport cost, log-domain Sinkhorn (:func:`setwise.reference.
    sinkhorn_loss`): ``[num_sets]``.

    Runs in the dtype of ``x`` on its device. The gradient is that of the ``num_iters``
    unrolled iterations (exact for the computed value; memory grows with ``num_iters``).
    """
    op = "sinkhorn_loss"
    if not epsilon > 0:
        V.fail(op, "epsilon", f"is {epsilon!r}", "a positive value")
    num_iters = V.check_positive_int(op, "num_iters", num_iters)
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    cost = checked_costs(op, x, y, xm, ym)
    nx = xm.sum(1, keepdim=True).to(x.dtype)
    ny = ym.sum(1, keepdim=True).to(x.dtype)
    log_a = torch.where(xm, 0.0, float("-inf")).to(x.dtype)
    log_b = torch.where(ym, torch.log(nx / ny.clamp_min(1)), float("-inf"))
    f, g = x.new_zeros(xm.shape), x.new_zeros(ym.shape)
    for _ in range(num_iters):
        f = -epsilon * _lse(log_b[:, None, :] + (g[:, None, :] - cost) / epsilon, 2)
        g = -epsilon * _lse(log_a[:, :, None] + (f[:, :, None] - cost) / epsilon, 1)
    pair = xm[:, :, None] & ym[:, None, :]
    log_p = log_a[:, :, None] + log_b[:, None, :] + (f[:, :, None] + g[:, None, :] - cost) / epsilon
    p = torch.exp(torch.where(pair, log_p, float("-inf")))
    return torch.where(pair, p * cost, 0).sum((1, 2))
