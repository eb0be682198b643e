"""The synthetic-set VAE in JAX: :mod:`.model`'s structure over the JAX layer families and
the setwise JAX operators (pure functions; the trainer jits them)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from setwise import jax_backend
from setwise.tasks.layers.jax.batch_norm import batch_norm
from setwise.tasks.layers.jax.mlp import linear, mlp
from setwise.tasks.layers.jax.readout import readout
from setwise.tasks.layers.jax.transformer import transformer_layer
from setwise.tasks.layers.jax.vae import kl_standard_normal, reparameterize, split_gaussian
from setwise.tasks.synthetic import model as M


class JaxOps:
    """The backend namespace ``K`` of :mod:`.model` for JAX."""

    batch_norm = staticmethod(batch_norm)
    linear = staticmethod(linear)
    mlp = staticmethod(mlp)
    readout = staticmethod(readout)
    transformer_layer = staticmethod(transformer_layer)
    reparameterize = staticmethod(reparameterize)
    kl_standard_normal = staticmethod(kl_standard_normal)
    split_gaussian = staticmethod(split_gaussian)
    create_set = staticmethod(jax_backend.create_set)
    hungarian_loss = staticmethod(jax_backend.hungarian_loss)
    relu = staticmethod(jax.nn.relu)
    sqrt = staticmethod(jnp.sqrt)
    where = staticmethod(jnp.where)

    @staticmethod
    def sum(x, axis):
        return x.sum(axis)

    @staticmethod
    def sort(x, axis):
        return jnp.sort(x, axis=axis)

    @staticmethod
    def concat(xs, axis):
        return jnp.concatenate(xs, axis=axis)

    @staticmethod
    def asfloat(x, like):
        return jnp.asarray(x).astype(like.dtype)

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
