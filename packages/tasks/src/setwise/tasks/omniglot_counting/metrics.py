"""Fig. 4b's metrics on NumPy arrays, shared by both backends: accuracy of the predicted
number of classes and the cross-entropy of the 10-way softmax, per split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: split id in an evaluation batch's ``split`` array -> name used in the metric keys
SPLITS = ("train", "valid", "test")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``logits [B, K] -> log softmax [B, K]`` (float64, max-shifted)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def cross_entropy(logits: np.ndarray, label: np.ndarray) -> np.ndarray:
    """``-log softmax(logits)[label - 1]`` per set: ``logits [B, K]``, ``label [B]`` in
    ``1..K`` (the number of classes; class index ``label - 1``) -> ``[B]``."""
    label = np.asarray(label, np.int64)
    if label.min(initial=1) < 1 or label.max(initial=1) > logits.shape[-1]:
        raise ValueError(f"cross_entropy: argument 'label' holds values in "
                         f"[{label.min()}, {label.max()}]; expected counts in "
                         f"1..{logits.shape[-1]}")
    return -np.take_along_axis(log_softmax(logits), label[:, None] - 1, -1)[:, 0]


def correct(logits: np.ndarray, label: np.ndarray) -> np.ndarray:
    """``argmax(logits) + 1 == label`` per set (ties: the lower count) -> bool ``[B]``."""
    return np.argmax(np.asarray(logits), -1) + 1 == np.asarray(label)


def counting_metrics(predictions: Sequence[Mapping[str, np.ndarray]],
                     batches: Sequence[Mapping[str, np.ndarray]]) -> dict[str, float]:
    """``{split}_accuracy`` and ``{split}_xent`` (mean over the split's sets) for every split
    present in ``batches`` (their ``split`` arrays; ids index :data:`SPLITS`).

    ``predictions[i]["logits"] [B, 10]`` belongs to ``batches[i]`` (``label [B]``,
    ``split [B]``).
    """
    logits = np.concatenate([np.asarray(p["logits"], np.float64) for p in predictions])
    label = np.concatenate([np.asarray(b["label"]) for b in batches])
    split = np.concatenate([np.asarray(b["split"]) for b in batches])
    xent, hit = cross_entropy(logits, label), correct(logits, label)
    out = {}
    for index, name in enumerate(SPLITS):
        rows = split == index
        if rows.any():
            out[f"{name}_accuracy"] = float(hit[rows].mean())
            out[f"{name}_xent"] = float(xent[rows].mean())
    return out
