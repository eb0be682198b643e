"""The synthetic-set VAE in PyTorch: :mod:`.model`'s structure over the torch layer families
and the setwise torch operators."""

from __future__ import annotations

import torch

from setwise import torch_backend
from setwise.tasks.layers.torch.batch_norm import batch_norm
from setwise.tasks.layers.torch.mlp import linear, mlp
from setwise.tasks.layers.torch.readout import readout
from setwise.tasks.layers.torch.transformer import transformer_layer
from setwise.tasks.layers.torch.vae import kl_standard_normal, reparameterize, split_gaussian
from setwise.tasks.synthetic import model as M


class TorchOps:
    """The backend namespace ``K`` of :mod:`.model` for PyTorch."""

    batch_norm = staticmethod(batch_norm)
    linear = staticmethod(linear)
    mlp = staticmethod(mlp)
    readout = staticmethod(readout)
    transformer_layer = staticmethod(transformer_layer)
    reparameterize = staticmethod(reparameterize)
    kl_standard_normal = staticmethod(kl_standard_normal)
    split_gaussian = staticmethod(split_gaussian)
    create_set = staticmethod(torch_backend.create_set)
    hungarian_loss = staticmethod(torch_backend.hungarian_loss)
    relu = staticmethod(torch.relu)
    sqrt = staticmethod(torch.sqrt)

    @staticmethod
    def where(cond, x, other):
        return torch.where(cond, x, other)

    @staticmethod
    def sum(x, axis):
        return x.sum(axis)

    @staticmethod
    def sort(x, axis):
        return torch.sort(x, dim=axis).values

    @staticmethod
    def concat(xs, axis):
        return torch.cat(xs, dim=axis)

    @staticmethod
    def asfloat(x, like):
        return torch.as_tensor(x).to(dtype=like.dtype, device=like.device)

    @staticmethod
    def eye_bool(n, like):
        return torch.eye(n, dtype=torch.bool, device=like.device)

    @staticmethod
    def triu_bool(n, like):
        return torch.ones(n, n, dtype=torch.bool, device=like.device).triu(1)


class SyntheticVAE:
    """:class:`setwise.tasks.protocol.Model` of the VAE (static configuration only)."""

    def __init__(self, spec: M.VAESpec):
        self.spec = spec

    def loss(self, params, state, batch, rng, train):
        return M.vae_loss(TorchOps, params, state, self.spec, batch, rng, train)

    def predict(self, params, state, batch, rng):
        return M.vae_predict(TorchOps, params, state, self.spec, batch, rng)
