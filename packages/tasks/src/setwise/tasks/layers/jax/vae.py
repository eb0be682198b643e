"""JAX: the VAE's reparameterisation and KL of :mod:`setwise.tasks.layers.vae`."""

from __future__ import annotations

import jax.numpy as jnp

from setwise.tasks.layers.vae import split_gaussian

__all__ = ["kl_standard_normal", "reparameterize", "split_gaussian"]


def reparameterize(mu, log_var, rng):
    """``z = mu + exp(log_var / 2) * eps``, ``eps = rng.normal(mu.shape)``."""
    eps = jnp.asarray(rng.normal(tuple(mu.shape))).astype(mu.dtype)
    return mu + jnp.exp(0.5 * log_var) * eps


def kl_standard_normal(mu, log_var):
    """``[...]``: KL of ``N(mu, exp(log_var))`` to ``N(0, I)``, summed over the last axis."""
    return -0.5 * jnp.sum(1 + log_var - mu ** 2 - jnp.exp(log_var), axis=-1)
