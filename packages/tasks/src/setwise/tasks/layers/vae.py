"""The VAE's Gaussian latent: reparameterisation and KL to N(0, I); layout, NumPy forward.

An encoder ends in ``2 * latent_dim`` units, read as the mean and the log-variance of a
diagonal Gaussian posterior ``q(z | X) = N(mu, diag(exp(log_var)))``. No parameters of its
own (the encoder's last linear layer holds them).

.. math::

    z = \\mu + e^{\\log\\sigma^2 / 2} \\odot \\epsilon, \\quad \\epsilon \\sim N(0, I)
    \\qquad
    \\mathrm{KL}(q \\| N(0, I)) = -\\tfrac12 \\sum_l (1 + \\log\\sigma^2_l - \\mu_l^2
        - \\sigma^2_l)

``epsilon`` comes from the step's :class:`setwise.tasks.protocol.Rng` (``rng.normal``), so a
resumed run and ``setwise check`` see the same noise. Each backend module defines the same
functions on its arrays.
"""

from __future__ import annotations

import numpy as np


def split_gaussian(h):
    """``h [..., 2 * latent_dim]`` -> ``(mu, log_var)``, each ``[..., latent_dim]``."""
    if h.shape[-1] % 2:
        raise ValueError(f"split_gaussian: last axis of h is {h.shape[-1]}; expected an even "
                         "size 2 * latent_dim")
    half = h.shape[-1] // 2
    return h[..., :half], h[..., half:]


def reparameterize(mu, log_var, rng):
    """``z = mu + exp(log_var / 2) * eps`` with ``eps = rng.normal(mu.shape)``."""
    eps = np.asarray(rng.normal(tuple(mu.shape))).astype(mu.dtype)
    return mu + np.exp(0.5 * log_var) * eps


def kl_standard_normal(mu, log_var):
    """``[...]``: KL of ``N(mu, exp(log_var))`` to ``N(0, I)``, summed over the last axis."""
    return -0.5 * np.sum(1 + log_var - mu ** 2 - np.exp(log_var), axis=-1)
