"""The SetMNIST autoencoders in PyTorch: :class:`~setwise.tasks.setmnist.model.SetAutoencoder`
on the torch layer families and :mod:`setwise.torch_backend`'s creators and Chamfer loss."""

from __future__ import annotations

import torch

from setwise.tasks.layers.torch import dspn, mlp, transformer
from setwise.tasks.setmnist.model import Backend, SetAutoencoder, SetMNISTSpec
from setwise.torch_backend import chamfer_loss, create_set

BACKEND = Backend(
    mlp=mlp, dspn=dspn, transformer=transformer, create_set=create_set,
    chamfer_loss=chamfer_loss, concat=lambda a, axis: torch.cat(a, dim=axis),
    stack=lambda a, axis: torch.stack(a, dim=axis), stop_gradient=lambda a: a.detach(),
    log_softmax=lambda a: torch.log_softmax(a, -1),
    cast=lambda a, like: torch.as_tensor(a).to(device=like.device, dtype=like.dtype),
    arange=lambda n, like: torch.arange(n, device=like.device))


def build(spec: SetMNISTSpec) -> SetAutoencoder:
    return SetAutoencoder(spec, BACKEND)
