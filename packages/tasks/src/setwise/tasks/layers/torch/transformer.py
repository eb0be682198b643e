"""PyTorch: masked multi-head attention and transformer layers of
:mod:`setwise.tasks.layers.transformer` (same layout, same structure)."""

from __future__ import annotations

import sys

import torch

from setwise.tasks.layers.torch.mlp import layer_norm, linear
from setwise.tasks.layers.transformer import run_attention, run_transformer_layer

einsum = torch.einsum


def relu(x):
    return torch.relu(x)


def where(cond, x, other):
    return torch.where(cond, x, other)


def masked_softmax(scores, mask):
    """Softmax over the last axis restricted to ``mask``; 0 where masked or empty."""
    s = torch.where(mask, scores, torch.finfo(scores.dtype).min)
    top = s.amax(-1, keepdim=True).detach()
    e = torch.where(mask, torch.exp(s - top), 0)
    return e / e.sum(-1, keepdim=True).clamp_min(1e-30)


def attention(params, prefix, x, mask, num_heads, context=None, context_mask=None):
    """See :func:`setwise.tasks.layers.transformer.run_attention`."""
    return run_attention(sys.modules[__name__], params, prefix, x, mask, num_heads, context,
                         context_mask)


def transformer_layer(params, prefix, x, mask, num_heads, norm_first=False):
    """See :func:`setwise.tasks.layers.transformer.run_transformer_layer`."""
    return run_transformer_layer(sys.modules[__name__], params, prefix, x, mask, num_heads,
                                 norm_first)


__all__ = ["attention", "layer_norm", "linear", "masked_softmax", "transformer_layer"]
