"""The molecule model on JAX: :mod:`setwise.tasks.molecules.model` bound to ``jax.numpy``.

GNN layers from :mod:`setwise.tasks.layers.jax.gnn` (segment sums with a static number of
segments, setwise's JAX EA), readouts from :mod:`setwise.tasks.layers.jax.readout`. Pure and
jit-able: a batch's padded shapes fix the compilation (one per run). Holds only the static
spec.
"""

from __future__ import annotations

import jax.numpy as jnp

from setwise.tasks.layers.jax import gnn
from setwise.tasks.layers.jax.readout import readout
from setwise.tasks.molecules import model as M

BACKEND = M.Backend(gnn.OPS, readout, jnp)


class MoleculeModel:
    """:class:`setwise.tasks.protocol.Model` of a
    :class:`~setwise.tasks.molecules.model.MoleculeSpec`."""

    def __init__(self, spec: M.MoleculeSpec):
        self.spec = spec

    def loss(self, params, state, batch, rng, train):
        return M.loss(BACKEND, self.spec, params, state, batch, rng, train)

    def predict(self, params, state, batch, rng):
        return M.predict(BACKEND, self.spec, params, state, batch, rng)
