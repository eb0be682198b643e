"""PyTorch: linear, layer norm and the residual MLP of :mod:`setwise.tasks.layers.mlp`."""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from setwise.tasks.layers.mlp import LN_EPS, MLPSpec, run_mlp


def activation(name, x):
    if name == "relu":
        return torch.relu(x)
    return torch.tanh(x) if name == "tanh" else x


def linear(params, prefix, x):
    """``x [..., in] @ w + b -> [..., out]``."""
    out = x @ params[f"{prefix}_w"]
    bias = params.get(f"{prefix}_b")
    return out if bias is None else out + bias


def layer_norm(params, prefix, x):
    """Layer norm of the last axis of ``x [..., width]``."""
    return F.layer_norm(x, x.shape[-1:], params[f"{prefix}_ln_scale"],
                        params[f"{prefix}_ln_offset"], LN_EPS)


def mlp(params, prefix, spec: MLPSpec, x):
    """MLP ``{prefix}`` of ``spec`` on ``x [..., in] -> [..., sizes[-1]]``."""
    return run_mlp(sys.modules[__name__], params, prefix, spec, x)
