"""The synthetic-set VAE in PyTorch: :mod:`.model`'s structure over the torch layer families
and the setwise torch operators."""

from __future__ import annotations

import torch

from setwise import torch_backend
from setwise.tasks.layers.torch.batch_norm import batch_norm
from setwise.tasks.layers.torch.ops import Ops
from setwise.tasks.synthetic import model as M


class TorchOps(Ops):
    """The backend namespace ``K`` of :mod:`.model` for PyTorch: the shared
    :class:`~setwise.tasks.layers.torch.ops.Ops` and what this model adds."""

    batch_norm = staticmethod(batch_norm)
    hungarian_loss = staticmethod(torch_backend.hungarian_loss)
    sqrt = staticmethod(torch.sqrt)

    @staticmethod
    def sort(x, axis):
        return torch.sort(x, dim=axis).values

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
