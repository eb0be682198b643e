"""The molecule model on PyTorch: :mod:`setwise.tasks.molecules.model` bound to torch.

GNN layers from :mod:`setwise.tasks.layers.torch.gnn` (PyG scatter, setwise's torch EA),
readouts from :mod:`setwise.tasks.layers.torch.readout`. Holds only the static spec.
"""

from __future__ import annotations

import torch

from setwise.tasks.layers.torch import gnn
from setwise.tasks.layers.torch.readout import readout
from setwise.tasks.molecules import model as M

BACKEND = M.Backend(gnn.OPS, readout, torch)


class MoleculeModel:
    """:class:`setwise.tasks.protocol.Model` of a
    :class:`~setwise.tasks.molecules.model.MoleculeSpec`."""

    def __init__(self, spec: M.MoleculeSpec):
        self.spec = spec

    def loss(self, params, state, batch, rng, train):
        return M.loss(BACKEND, self.spec, params, state, batch, rng, train)

    def predict(self, params, state, batch, rng):
        return M.predict(BACKEND, self.spec, params, state, batch, rng)
