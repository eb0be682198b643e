"""OGB's metric of a molecule dataset, on NumPy arrays (shared by both backends).

``ogb.graphproppred.Evaluator(name)``: ROC-AUC (molhiv, moltox21, molbace) or average
precision (molpcba, molmuv), each averaged over the tasks that have both classes present,
missing labels (NaN) ignored. Paper 1 (section 5.3) reports the test metric at the best
validation metric.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=8)
def evaluator(dataset: str):
    from ogb.graphproppred import Evaluator

    return Evaluator(dataset)


def ogb_metric(dataset: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """OGB's metric of ``dataset`` for ``y_true [n, num_tasks]`` (NaN = missing) and scores
    ``y_pred [n, num_tasks]`` (logits or probabilities: both metrics depend on the order
    only). NaN when no task has both classes among the labelled graphs (OGB raises)."""
    ev = evaluator(dataset)
    y_true = np.asarray(y_true, np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, np.float64).reshape(len(y_pred), -1)
    labelled = ~np.isnan(y_true)
    both = [((y_true[labelled[:, t], t] == 1).any() and (y_true[labelled[:, t], t] == 0).any())
            for t in range(y_true.shape[1])]
    if not any(both):
        return float("nan")
    result = ev.eval({"y_true": y_true, "y_pred": y_pred})
    return float(result[ev.eval_metric])


def masked_bce(logits, y, graph_mask, xp):
    """Multi-task binary cross-entropy with logits, averaged over the labelled entries of real
    graphs (OGB's ``is_labeled = y == y``), written once for the torch and JAX models.

    .. math:: \\ell = \\max(z, 0) - z y + \\log(1 + e^{-|z|})

    Args:
        logits: ``[G, num_tasks]``.
        y: ``[G, num_tasks]`` with NaN for missing labels.
        graph_mask: ``[G]`` bool (False for padding graphs).
        xp: a namespace with ``where``, ``abs``, ``exp``, ``log1p``, ``maximum`` (``torch``,
            ``jax.numpy``, ``numpy``).

    Returns:
        the scalar loss (0 when nothing is labelled).
    """
    labelled = (y == y) & graph_mask[:, None]
    target = xp.where(labelled, y, 0.0)
    per = xp.maximum(logits, 0 * logits) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))
    weight = labelled * 1.0
    count = weight.sum()
    return (per * weight).sum() / (count + (count == 0))
