"""The JAX array namespace ``K`` that model code written once takes (``model.py`` of a task:
``vae_loss(K, params, ...)``).

:class:`Ops` holds what the set-VAE tasks (synthetic, qm9) share: the layer families (MLP,
readout, transformer, VAE), setwise's ``create_set`` and a few array operations, with the
same names and signatures as :class:`setwise.tasks.layers.torch.ops.Ops`. A task subclasses it
with its own additions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from setwise import jax_backend
from setwise.tasks.layers.jax.mlp import linear, mlp
from setwise.tasks.layers.jax.readout import readout
from setwise.tasks.layers.jax.transformer import transformer_layer
from setwise.tasks.layers.jax.vae import kl_standard_normal, reparameterize, split_gaussian


class Ops:
    """The shared part of a task's JAX namespace ``K``."""

    linear = staticmethod(linear)
    mlp = staticmethod(mlp)
    readout = staticmethod(readout)
    transformer_layer = staticmethod(transformer_layer)
    reparameterize = staticmethod(reparameterize)
    kl_standard_normal = staticmethod(kl_standard_normal)
    split_gaussian = staticmethod(split_gaussian)
    create_set = staticmethod(jax_backend.create_set)
    relu = staticmethod(jax.nn.relu)
    where = staticmethod(jnp.where)

    @staticmethod
    def sum(x, axis):
        return x.sum(axis)

    @staticmethod
    def concat(xs, axis):
        return jnp.concatenate(xs, axis=axis)

    @staticmethod
    def asfloat(x, like):
        """``x`` as an array of ``like``'s float dtype."""
        return jnp.asarray(x).astype(like.dtype)
