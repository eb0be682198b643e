"""The Set2GraphVAE in PyTorch: :mod:`.model`'s structure over the torch layer families
(PyG scatter in the GNN) and the setwise torch operators."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from setwise.tasks.layers.torch.gnn import gnn_node
from setwise.tasks.layers.torch.ops import Ops
from setwise.tasks.layers.torch.set2graph import set2graph
from setwise.tasks.qm9 import model as M


class TorchOps(Ops):
    """The backend namespace ``K`` of :mod:`.model` for PyTorch: the shared
    :class:`~setwise.tasks.layers.torch.ops.Ops` and what this model adds."""

    gnn_node = staticmethod(gnn_node)
    set2graph = staticmethod(set2graph)
    sigmoid = staticmethod(torch.sigmoid)
    softplus = staticmethod(F.softplus)
    einsum = staticmethod(torch.einsum)
    maximum = staticmethod(torch.clamp_min)

    @staticmethod
    def mean(x, axis):
        return x.mean(axis)

    @staticmethod
    def slots(n, size):
        return torch.arange(size, device=n.device)[None] < n[:, None]

    @staticmethod
    def pair_mask(mask):
        eye = torch.eye(mask.shape[1], dtype=torch.bool, device=mask.device)
        return mask[:, :, None] & mask[:, None, :] & ~eye[None]

    @staticmethod
    def argmax(x, axis):
        return torch.argmax(x, dim=axis)

    @staticmethod
    def argsort(x, axis):
        return torch.argsort(x.detach(), dim=axis, stable=True)

    @staticmethod
    def one_hot(index, depth, like):
        return F.one_hot(index.long(), depth).to(like.dtype)

    @staticmethod
    def log_softmax(x, axis):
        return torch.log_softmax(x, dim=axis)

    @staticmethod
    def softmax(x, axis):
        return torch.softmax(x, dim=axis)


class QM9VAE:
    """:class:`setwise.tasks.protocol.Model` of the Set2GraphVAE (static configuration)."""

    def __init__(self, spec: M.QM9Spec):
        self.spec = spec

    def loss(self, params, state, batch, rng, train):
        return M.vae_loss(TorchOps, params, state, self.spec, batch, rng, train)

    def predict(self, params, state, batch, rng):
        return M.vae_predict(TorchOps, params, state, self.spec, batch, rng)


def build(spec: M.QM9Spec) -> QM9VAE:
    return QM9VAE(spec)
