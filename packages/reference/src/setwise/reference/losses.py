"""Set losses (paper 2, appendix B; DESIGN.md section 6): Chamfer, Hungarian (W2), Sinkhorn.

All take two padded batches ``x [num_sets, n, dim]``, ``y [num_sets, m, dim]`` with optional
masks and return one loss per set, ``[num_sets]``. Each is invariant to permuting either
argument's points and is 0 for equal sets (Sinkhorn: up to its entropic bias).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from setwise.reference import validation as V

CHAMFER_VARIANTS = ("sum", "dspn")


def check_pair(op, x, y, x_mask, y_mask):
    """Validate two padded batches of sets.

    Returns ``(x, y, x_mask, y_mask)``: padding rows zeroed, masks all-True where None.
    """
    V.check_set_pair(op, x, y, x_mask, y_mask)
    xm = np.ones(x.shape[:2], bool) if x_mask is None else np.asarray(x_mask)
    ym = np.ones(y.shape[:2], bool) if y_mask is None else np.asarray(y_mask)
    V.check_finite(op, "x", bool(np.isfinite(x[xm]).all()))
    V.check_finite(op, "y", bool(np.isfinite(y[ym]).all()))
    return np.where(xm[..., None], x, 0), np.where(ym[..., None], y, 0), xm, ym


def check_costs(op, finite: bool, dtype):
    """The squared distances of present pairs must fit ``dtype`` (coordinates of 1e20 in
    float32 overflow to Inf, and Sinkhorn would return NaN). Shared by every backend."""
    if not finite:
        V.fail(op, "x", f"and 'y' have squared distances that overflow {V.dtype_name(dtype)}",
               "coordinates whose squared distances are finite in the input dtype (rescale the "
               "sets, or use float64)")


def pairwise_sq_dist(x, y):
    """``[num_sets, n, m]`` squared Euclidean distances, by explicit differences (an overflow is
    reported by :func:`check_costs`, not warned about)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)


def chamfer_loss(x, y, x_mask=None, y_mask=None, *, variant="sum"):
    """Chamfer loss per set.

    .. math:: d = \\sum_{i} \\min_{j} \\|x_i - y_j\\|^2 + \\sum_{j} \\min_{i} \\|x_i - y_j\\|^2

    ``variant='dspn'`` divides by the number of channels (DSPN's implementation; paper 2
    appendix D.1 calls it a bug and uses the sum). A direction whose other set is empty
    contributes 0. Returns ``[num_sets]``.
    """
    op = "chamfer_loss"
    x, y = np.asarray(x), np.asarray(y)
    V.check_choice(op, "variant", variant, CHAMFER_VARIANTS)
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    d = pairwise_sq_dist(x, y)
    pair = xm[:, :, None] & ym[:, None, :]
    check_costs(op, bool(np.isfinite(d[pair]).all()), x.dtype)
    big = np.where(pair, d, np.inf)
    to_y = np.where(xm & ym.any(1, keepdims=True), big.min(2, initial=np.inf), 0).sum(1)
    to_x = np.where(ym & xm.any(1, keepdims=True), big.min(1, initial=np.inf), 0).sum(1)
    out = to_y + to_x
    return (out / x.shape[2] if variant == "dspn" else out).astype(x.dtype)


def hungarian_matching(x, y, x_mask=None, y_mask=None):
    """Optimal assignment on squared Euclidean costs, per set.

    Returns ``[num_sets, n]`` int64: for each row of ``x`` the matched row of ``y``, or -1
    (padding, or unmatched when the present sizes differ: ``min(n_x, n_y)`` pairs are made).
    """
    op = "hungarian_matching"
    x, y = np.asarray(x), np.asarray(y)
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    d = pairwise_sq_dist(x, y)
    check_costs(op, bool(np.isfinite(d[xm[:, :, None] & ym[:, None, :]]).all()), x.dtype)
    return match_costs(d, xm, ym)


def match_costs(cost, xm, ym):
    """Per set, optimal assignment of present rows to present columns of ``cost``; -1 elsewhere."""
    match = np.full(xm.shape, -1, np.int64)
    for s in range(cost.shape[0]):
        rows, cols = np.nonzero(xm[s])[0], np.nonzero(ym[s])[0]
        if len(rows) and len(cols):
            r, c = linear_sum_assignment(cost[s][np.ix_(rows, cols)])
            match[s, rows[r]] = cols[c]
    return match


def hungarian_loss(x, y, x_mask=None, y_mask=None):
    """Wasserstein-2 (squared) between equal-size sets: the sum of matched squared distances.

    .. math:: d = \\min_{\\pi} \\sum_i \\|x_i - y_{\\pi(i)}\\|^2

    Uses ``scipy.optimize.linear_sum_assignment``; gradients (backends) flow through the
    matched costs. Returns ``[num_sets]``.
    """
    op = "hungarian_loss"
    x, y = np.asarray(x), np.asarray(y)
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    d = pairwise_sq_dist(x, y)
    check_costs(op, bool(np.isfinite(d[xm[:, :, None] & ym[:, None, :]]).all()), x.dtype)
    match = match_costs(d, xm, ym)
    got = np.take_along_axis(d, np.maximum(match, 0)[..., None], 2)[..., 0]
    return np.where(match >= 0, got, 0).sum(1).astype(x.dtype)


def sinkhorn_loss(x, y, x_mask=None, y_mask=None, *, epsilon=1e-2, num_iters=200):
    """Entropic optimal transport cost (log-domain Sinkhorn), per set.

    Marginals: mass 1 on each present point of ``x`` and ``n_x / n_y`` on each point of ``y``,
    so for equal sizes the cost tends to :func:`hungarian_loss` as ``epsilon -> 0``.

    .. math::

        f_i = -\\varepsilon \\log \\sum_j b_j e^{(g_j - C_{ij}) / \\varepsilon}, \\quad
        g_j = -\\varepsilon \\log \\sum_i a_i e^{(f_i - C_{ij}) / \\varepsilon}, \\quad
        d = \\sum_{ij} a_i b_j e^{(f_i + g_j - C_{ij}) / \\varepsilon} C_{ij}

    Returns ``[num_sets]`` (the transport cost, without the entropy term).
    """
    op = "sinkhorn_loss"
    x, y = np.asarray(x), np.asarray(y)
    if not epsilon > 0:
        V.fail(op, "epsilon", f"is {epsilon!r}", "a positive value")
    num_iters = V.check_positive_int(op, "num_iters", num_iters)
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    cost = pairwise_sq_dist(x, y)
    check_costs(op, bool(np.isfinite(cost[xm[:, :, None] & ym[:, None, :]]).all()), x.dtype)
    nx, ny = xm.sum(1, keepdims=True), ym.sum(1, keepdims=True)
    with np.errstate(divide="ignore"):
        log_a = np.where(xm, 0.0, -np.inf)
        log_b = np.where(ym, np.log(nx / np.maximum(ny, 1)), -np.inf)
    f, g = np.zeros(xm.shape), np.zeros(ym.shape)
    for _ in range(num_iters):
        f = -epsilon * _lse(log_b[:, None, :] + (g[:, None, :] - cost) / epsilon, 2)
        g = -epsilon * _lse(log_a[:, :, None] + (f[:, :, None] - cost) / epsilon, 1)
    log_p = log_a[:, :, None] + log_b[:, None, :] + (f[:, :, None] + g[:, None, :] - cost) / epsilon
    p = np.exp(log_p)
    return np.where(xm[:, :, None] & ym[:, None, :], p * cost, 0).sum((1, 2)).astype(x.dtype)


def _lse(a, axis):
    """log-sum-exp that gives 0 (not NaN) where every term is -inf (an empty set)."""
    top = np.max(a, axis=axis, keepdims=True, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.exp(a - top).sum(axis)) + np.squeeze(top, axis)
    return np.where(np.isfinite(out), out, 0)
