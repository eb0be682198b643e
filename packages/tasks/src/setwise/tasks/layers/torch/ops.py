"""The PyTorch array namespace ``K`` that model code written once takes (``model.py`` of a
task: ``vae_loss(K, params, ...)``).

:class:`Ops` holds what the set-VAE tasks (synthetic, qm9) share: the layer families (MLP,
readout, transformer, VAE), setwise's ``create_set`` and a few array operations, with the
same names and signatures as :class:`setwise.tasks.layers.jax.ops.Ops`. A task subclasses it
with its own additions.
"""

from __future__ import annotations

import torch

from setwise import torch_backend
from setwise.tasks.layers.torch.mlp import linear, mlp
from setwise.tasks.layers.torch.readout import readout
from setwise.tasks.layers.torch.transformer import transformer_layer
from setwise.tasks.layers.torch.vae import kl_standard_normal, reparameterize, split_gaussian


class Ops:
    """The shared part of a task's torch namespace ``K``."""

    linear = staticmethod(linear)
    mlp = staticmethod(mlp)
    readout = staticmethod(readout)
    transformer_layer = staticmethod(transformer_layer)
    reparameterize = staticmethod(reparameterize)
    kl_standard_normal = staticmethod(kl_standard_normal)
    split_gaussian = staticmethod(split_gaussian)
    create_set = staticmethod(torch_backend.create_set)
    relu = staticmethod(torch.relu)

    @staticmethod
    def where(cond, x, other):
        return torch.where(cond, x, other)

    @staticmethod
    def sum(x, axis):
        return x.sum(axis)

    @staticmethod
    def concat(xs, axis):
        return torch.cat(xs, dim=axis)

    @staticmethod
    def asfloat(x, like):
        """``x`` as a tensor of ``like``'s float dtype and device."""
        return torch.as_tensor(x).to(dtype=like.dtype, device=like.device)
