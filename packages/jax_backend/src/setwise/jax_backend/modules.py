"""Equinox modules: each holds the shared flat parameter mapping and calls the functional op.

A module's ``params`` field is the very mapping of the functional API (same names, shapes
and values as the reference's ``init_*``), so ``module.params`` round-trips to any backend
and ``Module(params, ...)`` rebuilds a module from a mapping. Configuration fields are static.
Train with ``eqx.filter_value_and_grad`` and optax:

>>> import equinox as eqx, jax.numpy as jnp, numpy as np, optax
>>> ea = EquilibriumAggregation.init(0, 2, 2, hidden=(8, 8))
>>> opt = optax.adam(1e-2)
>>> state = opt.init(eqx.filter(ea, eqx.is_array))
>>> x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5, 2)), jnp.float32)
>>> loss = lambda m: ((m(x) - x.mean(1)) ** 2).mean()
>>> value, grads = eqx.filter_value_and_grad(loss)(ea)
>>> updates, state = opt.update(grads, state)
>>> ea = eqx.apply_updates(ea, updates)
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax

from setwise.jax_backend.api import convert_params
from setwise.jax_backend.creation import create_set, init_creation
from setwise.jax_backend.equilibrium import (
    equilibrium_aggregation,
    init_equilibrium_aggregation,
)
from setwise.jax_backend.pooling import (
    attention_pool,
    init_attention_pool,
    init_pna_pool,
    pna_pool,
)


class EquilibriumAggregation(eqx.Module):
    """Equilibrium Aggregation (:func:`~setwise.jax_backend.equilibrium_aggregation`).

    ``init`` records ``out_dim``, so a call with ``x`` of the wrong width is refused (the
    residual potential's parameters alone fix only ``in_dim + out_dim``); a module built
    directly from a mapping checks it only when given ``out_dim``.
    """

    params: dict[str, jax.Array] = eqx.field(converter=convert_params)
    potential: str | Callable = eqx.field(static=True, default="residual")
    num_steps: int = eqx.field(static=True, default=5)
    scaled: bool = eqx.field(static=True, default=True)
    gtol: float = eqx.field(static=True, default=1e-3)
    clip: float | None = eqx.field(static=True, default=None)
    out_dim: int | None = eqx.field(static=True, default=None)
    grad_mode: str = eqx.field(static=True, default="unrolled")
    truncate_steps: int | None = eqx.field(static=True, default=None)

    @classmethod
    def init(cls, rng, in_dim, out_dim, *, potential="residual", hidden=(256, 128, 32),
             step_size=0.125, momentum=0.9, reg_weight=None, dtype="float32", **solver):
        """Fresh parameters (:func:`init_equilibrium_aggregation`) and solver settings."""
        params = init_equilibrium_aggregation(rng, in_dim, out_dim, potential=potential,
                                              hidden=hidden, step_size=step_size,
                                              momentum=momentum, reg_weight=reg_weight,
                                              dtype=dtype)
        solver.setdefault("out_dim", out_dim)  # x's width is then checked against in_dim
        return cls(params, potential=potential, **solver)

    def __call__(self, x, mask=None, *, index=None, ptr=None, num_sets=None,
                 return_info=False):
        return equilibrium_aggregation(
            self.params, x, mask, index=index, ptr=ptr, num_sets=num_sets,
            potential=self.potential, num_steps=self.num_steps, scaled=self.scaled,
            gtol=self.gtol, clip=self.clip, out_dim=self.out_dim, grad_mode=self.grad_mode,
            truncate_steps=self.truncate_steps, return_info=return_info)


class AttentionPool(eqx.Module):
    """Multi-head attention pooling (:func:`~setwise.jax_backend.attention_pool`)."""

    params: dict[str, jax.Array] = eqx.field(converter=convert_params)

    @classmethod
    def init(cls, rng, in_dim, out_dim, *, num_heads=4, dtype="float32"):
        return cls(init_attention_pool(rng, in_dim, out_dim, num_heads=num_heads, dtype=dtype))

    def __call__(self, x, mask=None, *, index=None, ptr=None, num_sets=None):
        return attention_pool(self.params, x, mask, index=index, ptr=ptr, num_sets=num_sets)


class PNAPool(eqx.Module):
    """PNA pooling (:func:`~setwise.jax_backend.pna_pool`); ``delta`` from :func:`pna_delta`."""

    params: dict[str, jax.Array] = eqx.field(converter=convert_params)
    delta: float = eqx.field(static=True, default=1.0)

    @classmethod
    def init(cls, rng, in_dim, out_dim, *, delta=1.0, dtype="float32"):
        return cls(init_pna_pool(rng, in_dim, out_dim, dtype=dtype), delta=delta)

    def __call__(self, x, mask=None, *, index=None, ptr=None, num_sets=None):
        return pna_pool(self.params, x, mask, index=index, ptr=ptr, num_sets=num_sets,
                        delta=self.delta)


class SetCreator(eqx.Module):
    """A set creator by name (``top_n``, ``first_n``, ``iid``, ``mlp``; see
    :func:`~setwise.jax_backend.create_set`): ``creator(z, n, rng=None) -> (x, mask)``."""

    name: str = eqx.field(static=True)
    params: dict[str, jax.Array] = eqx.field(converter=convert_params)
    max_n: int | None = eqx.field(static=True, default=None)

    @classmethod
    def init(cls, name, rng, latent_dim, out_dim, num_points, *, max_n=None, **kwargs):
        return cls(name, init_creation(name, rng, latent_dim, out_dim, num_points, **kwargs),
                   max_n=max_n)

    def __call__(self, z, n, *, rng=None):
        return create_set(self.name, self.params, z, n, max_n=self.max_n, rng=rng)
