"""PyTorch: batch normalisation of :mod:`setwise.tasks.layers.batch_norm`."""

from __future__ import annotations

import sys

import torch

from setwise.tasks.layers.batch_norm import BN_MOMENTUM, run_batch_norm

rsqrt = torch.rsqrt


def stop_gradient(v):
    return v.detach()


def weights(mask, x):
    """``[..., 1]`` row weights in ``x``'s dtype (ones without a mask)."""
    if mask is None:
        return torch.ones(x.shape[:-1] + (1,), dtype=x.dtype, device=x.device)
    return mask.to(x.dtype)[..., None]


def batch_norm(params, state, prefix, x, *, train, mask=None, momentum=BN_MOMENTUM):
    """Batch norm ``{prefix}`` of ``x [..., width]``: ``(y, state updates)``."""
    return run_batch_norm(sys.modules[__name__], params, state, prefix, x, train=train,
                          mask=mask, momentum=momentum)
