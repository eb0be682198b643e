"""The median model in JAX: :class:`~setwise.tasks.median.model.MedianModel` on the JAX
layer families (``layers.jax.mlp``, ``layers.jax.readout``); jit-able."""

from __future__ import annotations

from setwise.tasks.layers.jax import mlp
from setwise.tasks.layers.jax.readout import readout
from setwise.tasks.median.model import MedianModel, MedianSpec


def build(model: MedianSpec) -> MedianModel:
    return MedianModel(model, mlp, readout)
