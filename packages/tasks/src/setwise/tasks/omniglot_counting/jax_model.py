"""The class-counting model in JAX: :class:`~.model.CountingModel` on the JAX layer families
(``layers.jax.resnet``, ``layers.jax.mlp``, ``layers.jax.readout``); jit-able (fixed shapes:
every set holds 16 images)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from setwise.tasks.layers.jax import mlp, resnet
from setwise.tasks.layers.jax.readout import readout
from setwise.tasks.omniglot_counting.model import CountingModel, CountingSpec, layers


def take_label(logp, label):
    """``logp[b, label[b] - 1]``."""
    return jnp.take_along_axis(logp, (label - 1)[:, None], -1)[:, 0]


def build(model: CountingSpec) -> CountingModel:
    return CountingModel(model, layers(resnet, mlp, readout,
                                       lambda z: jax.nn.log_softmax(z, -1), take_label))
