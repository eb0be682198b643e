"""The synthetic-set VAE in JAX: :mod:`.model`'s structure over the JAX layer families and
the setwise JAX operators (pure functions; the trainer jits them)."""

from __future__ import annotations

import jax.numpy as jnp

from setwise import jax_backend
from setwise.tasks.layers.jax.batch_norm import batch_norm
from setwise.tasks.layers.jax.ops import Ops
from setwise.tasks.synthetic import model as M


class JaxOps(Ops):
    """The backend namespace ``K`` of :mod:`.model` for JAX: the shared
    :class:`~setwise.tasks.layers.jax.ops.Ops` and what this model adds."""

    batch_norm = staticmethod(batch_norm)
    hungarian_loss = staticmethod(jax_backend.hungarian_loss)
    sqrt = staticmethod(jnp.sqrt)

    @staticmethod
    def sort(x, axis):
        return jnp.sort(x, axis=axis)

    @staticmethod
    def eye_bool(n, like):
        return jnp.eye(n, dtype=bool)

    @staticmethod
    def triu_bool(n, like):
        return jnp.triu(jnp.ones((n, n), bool), 1)


class SyntheticVAE:
    """:class:`setwise.tasks.protocol.Model` of the VAE (static configuration only)."""

    def __init__(self, spec: M.VAESpec):
        self.spec = spec

    def loss(self, params, state, batch, rng, train):
        return M.vae_loss(JaxOps, params, state, self.spec, batch, rng, train)

    def predict(self, params, state, batch, rng):
        return M.vae_predict(JaxOps, params, state, self.spec, batch, rng)
