"""PyTorch: the VAE's reparameterisation and KL of :mod:`setwise.tasks.layers.vae`."""

from __future__ import annotations

import torch

from setwise.tasks.layers.vae import split_gaussian

__all__ = ["kl_standard_normal", "reparameterize", "split_gaussian"]


def reparameterize(mu, log_var, rng):
    """``z = mu + exp(log_var / 2) * eps``, ``eps = rng.normal(mu.shape)``."""
    eps = rng.normal(tuple(mu.shape)).to(dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * log_var) * eps


def kl_standard_normal(mu, log_var):
    """``[...]``: KL of ``N(mu, exp(log_var))`` to ``N(0, I)``, summed over the last axis."""
    return -0.5 * torch.sum(1 + log_var - mu ** 2 - torch.exp(log_var), dim=-1)
