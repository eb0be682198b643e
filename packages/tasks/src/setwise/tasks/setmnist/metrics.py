"""SetMNIST's metric (paper 2, Table 1): the Chamfer loss of DSPN's and TSPN's code, in NumPy.

Both codes compare points with the smooth-L1 (Huber, threshold 1) distance and average the
nearest-neighbour distances over the points of each set, in both directions:

.. math::

    h(a, b) = \\sum_c \\operatorname{smooth\\_l1}(a_c - b_c), \\qquad
    d(X, Y) = \\frac{1}{|X|} \\sum_{i} \\min_j h(x_i, y_j)
            + \\frac{1}{|Y|} \\sum_{j} \\min_i h(x_i, y_j).

Table 1 reports the batch mean of ``d`` (x 1e-5) with the sum over channels (``variant="sum"``,
paper 2 appendix D.1); DSPN's and TSPN's code take the mean over channels
(``variant="dspn"``, a factor ``1 / channels`` smaller).

What is compared differs by model, as in the two codes: DSPN predicts all ``N = 342`` slots
with a presence channel, and is compared with the padded target (``[x, mask]``, 3 channels, all
342 slots, padding at ``(0, 0, 0)``); TSPN predicts exactly the target's ``n`` points and is
compared on those (2 channels).
"""

from __future__ import annotations

import numpy as np

VARIANTS = ("sum", "dspn")


def smooth_l1(d):
    """Elementwise Huber loss of differences ``d`` with threshold 1."""
    a = np.abs(d)
    return np.where(a < 1, 0.5 * d * d, a - 0.5)


def huber_chamfer(x, y, x_mask=None, y_mask=None, variant="sum"):
    """Per-set ``d(X, Y)`` of the module docstring: ``x [B, n, c]``, ``y [B, m, c]`` -> ``[B]``.

    Masks (True = present) default to all present. A set with no points gives 0.
    """
    if variant not in VARIANTS:
        raise ValueError(f"huber_chamfer: variant is {variant!r}; expected one of {VARIANTS}")
    reduce = np.sum if variant == "sum" else np.mean
    return _chamfer("huber_chamfer", x, y, x_mask, y_mask,
                    lambda d: reduce(smooth_l1(d), axis=-1))


def sq_chamfer(x, y, x_mask=None, y_mask=None):
    """As :func:`huber_chamfer` with squared Euclidean distances (the training loss's cost,
    ``setwise``'s ``chamfer_loss`` divided by the set sizes): ``[B]``."""
    return _chamfer("sq_chamfer", x, y, x_mask, y_mask, lambda d: (d * d).sum(-1))


def _chamfer(op, x, y, x_mask, y_mask, cost, chunk=8):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 3 or y.ndim != 3 or x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
        raise ValueError(f"{op}: x and y must be [B, n, c] and [B, m, c]; got {x.shape} and "
                         f"{y.shape}")
    xm = np.ones(x.shape[:2], bool) if x_mask is None else np.asarray(x_mask, bool)
    ym = np.ones(y.shape[:2], bool) if y_mask is None else np.asarray(y_mask, bool)
    out = np.zeros(len(x))
    for s in range(0, len(x), chunk):
        a, b, am, bm = x[s:s + chunk], y[s:s + chunk], xm[s:s + chunk], ym[s:s + chunk]
        h = np.where(am[:, :, None] & bm[:, None, :], cost(a[:, :, None] - b[:, None]), np.inf)
        to_y = np.where(am, h.min(2), 0).sum(1) / np.maximum(am.sum(1), 1)
        to_x = np.where(bm, h.min(1), 0).sum(1) / np.maximum(bm.sum(1), 1)
        out[s:s + chunk] = np.where(am.any(1) & bm.any(1), to_y + to_x, 0.0)
    return out
