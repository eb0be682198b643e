"""The CLEVR model in PyTorch: :class:`~setwise.tasks.clevr.model.ClevrModel` on the torch
layer families, :mod:`setwise.torch_backend`'s creators, and DSPN's Hungarian matching on the
host (SciPy, on the detached costs)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from setwise.reference.losses import match_costs
from setwise.tasks.clevr.model import Backend, ClevrModel, ClevrSpec
from setwise.tasks.layers.torch import dspn, mlp, resnet
from setwise.torch_backend import create_set


def assign(cost):
    """The optimal assignment of each row of ``cost [B, N, N]`` (SciPy, no gradient)."""
    c = cost.detach().cpu()
    full = torch.ones(c.shape[:2], dtype=torch.bool).numpy()
    match = match_costs(c.double().numpy(), full, full)
    return torch.as_tensor(match, device=cost.device)


BACKEND = Backend(
    mlp=mlp, dspn=dspn, resnet=resnet, create_set=create_set,
    concat=lambda a, axis: torch.cat(a, dim=axis),
    broadcast_to=lambda a, shape: a.expand(*shape),
    smooth_l1=lambda d: F.smooth_l1_loss(d, torch.zeros_like(d), reduction="none"),
    assign=assign,
    gather=lambda a, index: torch.take_along_dim(a, index[..., None], -1)[..., 0],
    cast=lambda a, like: torch.as_tensor(a).to(device=like.device, dtype=like.dtype))


def build(spec: ClevrSpec) -> ClevrModel:
    return ClevrModel(spec, BACKEND)
