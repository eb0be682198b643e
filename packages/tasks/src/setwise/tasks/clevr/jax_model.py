"""The CLEVR model in JAX: :class:`~setwise.tasks.clevr.model.ClevrModel` on the JAX layer
families, :mod:`setwise.jax_backend`'s creators, and DSPN's Hungarian matching on the host
(SciPy through ``jax.pure_callback`` on the stopped costs); jit-able (fixed shapes)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from setwise.jax_backend import create_set
from setwise.reference.losses import match_costs
from setwise.tasks.clevr.model import Backend, ClevrModel, ClevrSpec
from setwise.tasks.layers.jax import dspn, mlp, resnet


def _host_assign(cost, dtype):
    cost = np.asarray(cost, np.float64)
    full = np.ones(cost.shape[:2], bool)
    return match_costs(cost, full, full).astype(dtype)


def assign(cost):
    """The optimal assignment of each row of ``cost [B, N, N]`` (SciPy, no gradient)."""
    out = jax.ShapeDtypeStruct(cost.shape[:2], jnp.zeros((), int).dtype)
    return jax.pure_callback(functools.partial(_host_assign, dtype=out.dtype), out,
                             jax.lax.stop_gradient(cost), vmap_method="sequential")


BACKEND = Backend(
    mlp=mlp, dspn=dspn, resnet=resnet, create_set=create_set,
    concat=lambda a, axis: jnp.concatenate(a, axis=axis),
    broadcast_to=jnp.broadcast_to,
    smooth_l1=lambda d: dspn.smooth_l1(d, 0.0),
    assign=assign,
    gather=lambda a, index: jnp.take_along_axis(a, index[..., None], -1)[..., 0],
    cast=lambda a, like: jnp.asarray(a).astype(like.dtype))


def build(spec: ClevrSpec) -> ClevrModel:
    return ClevrModel(spec, BACKEND)
