"""The Set2GraphVAE in JAX: :mod:`.model`'s structure over the JAX layer families and the
setwise JAX operators (pure functions on fixed shapes; the trainer jits them)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from setwise.tasks.layers.jax.gnn import gnn_node
from setwise.tasks.layers.jax.ops import Ops
from setwise.tasks.layers.jax.set2graph import set2graph
from setwise.tasks.qm9 import model as M


class JaxOps(Ops):
    """The backend namespace ``K`` of :mod:`.model` for JAX: the shared
    :class:`~setwise.tasks.layers.jax.ops.Ops` and what this model adds."""

    gnn_node = staticmethod(gnn_node)
    set2graph = staticmethod(set2graph)
    sigmoid = staticmethod(jax.nn.sigmoid)
    softplus = staticmethod(jax.nn.softplus)
    einsum = staticmethod(jnp.einsum)
    maximum = staticmethod(jnp.maximum)

    @staticmethod
    def mean(x, axis):
        return x.mean(axis)

    @staticmethod
    def slots(n, size):
        return jnp.arange(size)[None] < n[:, None]

    @staticmethod
    def pair_mask(mask):
        eye = jnp.eye(mask.shape[1], dtype=bool)
        return mask[:, :, None] & mask[:, None, :] & ~eye[None]

    @staticmethod
    def argmax(x, axis):
        return jnp.argmax(x, axis=axis)

    @staticmethod
    def argsort(x, axis):
        return jnp.argsort(jax.lax.stop_gradient(x), axis=axis, stable=True)

    @staticmethod
    def one_hot(index, depth, like):
        return jax.nn.one_hot(index, depth, dtype=like.dtype)

    @staticmethod
    def log_softmax(x, axis):
        return jax.nn.log_softmax(x, axis=axis)

    @staticmethod
    def softmax(x, axis):
        return jax.nn.softmax(x, axis=axis)


class QM9VAE:
    """:class:`setwise.tasks.protocol.Model` of the Set2GraphVAE (static configuration)."""

    def __init__(self, spec: M.QM9Spec):
        self.spec = spec

    def loss(self, params, state, batch, rng, train):
        return M.vae_loss(JaxOps, params, state, self.spec, batch, rng, train)

    def predict(self, params, state, batch, rng):
        return M.vae_predict(JaxOps, params, state, self.spec, batch, rng)


def build(spec: M.QM9Spec) -> QM9VAE:
    return QM9VAE(spec)
