"""PyTorch: the Set2Graph layer of :mod:`setwise.tasks.layers.set2graph` (same layout, same
structure)."""

from __future__ import annotations

import sys

import torch

from setwise.tasks.layers.set2graph import MLPSpec, pair_mask, run_set2graph
from setwise.tasks.layers.torch.mlp import mlp

__all__ = ["mlp", "pair_mask", "set2graph"]


def broadcast_to(x, shape):
    return x.expand(*shape)


def concat(xs, axis):
    return torch.cat(xs, dim=axis)


def swap_pairs(e):
    return e.transpose(1, 2)


def where(cond, x, other):
    return torch.where(cond, x, other)


def eye_bool(n, like):
    return torch.eye(n, dtype=torch.bool, device=like.device)


def set2graph(params, prefix, spec: MLPSpec, x, mask, symmetric=True):
    """See :func:`setwise.tasks.layers.set2graph.run_set2graph`."""
    return run_set2graph(sys.modules[__name__], params, prefix, spec, x, mask, symmetric)
