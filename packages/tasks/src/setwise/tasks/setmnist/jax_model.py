"""The SetMNIST autoencoders in JAX: :class:`~setwise.tasks.setmnist.model.SetAutoencoder` on
the JAX layer families and :mod:`setwise.jax_backend`'s creators and Chamfer loss; jit-able
(fixed shapes: every set padded to 342)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from setwise.jax_backend import chamfer_loss, create_set
from setwise.tasks.layers.jax import dspn, mlp, transformer
from setwise.tasks.setmnist.model import Backend, SetAutoencoder, SetMNISTSpec

BACKEND = Backend(
    mlp=mlp, dspn=dspn, transformer=transformer, create_set=create_set,
    chamfer_loss=chamfer_loss, concat=lambda a, axis: jnp.concatenate(a, axis=axis),
    stack=lambda a, axis: jnp.stack(a, axis=axis), stop_gradient=jax.lax.stop_gradient,
    log_softmax=lambda a: jax.nn.log_softmax(a, -1),
    cast=lambda a, like: jnp.asarray(a).astype(like.dtype),
    arange=lambda n, like: jnp.arange(n))


def build(spec: SetMNISTSpec) -> SetAutoencoder:
    return SetAutoencoder(spec, BACKEND)
