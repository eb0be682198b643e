"""Set creation baselines in JAX, with Top-n's signature, and the dispatcher.

Same creators and math as :mod:`setwise.reference.creation`: ``create(params, z, n, *,
max_n=None, rng=None) -> (x [num_sets, max_n, out_dim], mask [num_sets, max_n])``.
``max_n`` is static under ``jit``; larger than the creator's ``n_max`` it pads with zero rows
(the reference fails to broadcast there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from setwise.jax_backend.api import as_jax, cast_params, converted
from setwise.jax_backend.nn import mlp, pad_rows
from setwise.jax_backend.top_n import creation_sizes, init_top_n_creation, top_n_creation
from setwise.reference import creation as ref
from setwise.reference import nn as ref_nn
from setwise.reference.creation import CREATORS as CREATORS  # re-exported by the package
from setwise.reference.creation import check_iid_args, creation_dispatchers

init_first_n_creation = converted(ref.init_first_n_creation)
init_iid_creation = converted(ref.init_iid_creation)
init_mlp_creation = converted(ref.init_mlp_creation)


def _sizes_arg(n):
    return n if isinstance(n, int) else as_jax(n)


def first_n_creation(params, z, n, *, max_n=None, rng=None):
    """First-n: ``X0 = R[:n] + 1_n z^T W_z`` (see :func:`setwise.reference.first_n_creation`)."""
    op = "first_n_creation"
    z, n = as_jax(z), _sizes_arg(n)
    num_points = ref.check_first_n_params(op, params, z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n_max")
    return _first_n(cast_params(params, z.dtype), z, mask)


@jax.jit
def _first_n(params, z, mask):
    x = pad_rows(params["points"], mask.shape[1], axis=0)[None] + (z @ params["z_w"])[:, None]
    return jnp.where(mask[..., None], x, 0).astype(z.dtype), mask


def iid_creation(params, z, n, *, max_n=None, rng=None):
    """i.i.d. sampling: ``X0 = E W_e + 1_n z^T W_z``, ``E_ij ~ N(0, 1)``.

    ``rng``: a JAX PRNG key (jit-compatible), or a ``numpy.random.Generator`` / int seed
    (the noise is then drawn on the host, exactly as the reference draws it; under ``jit``
    that noise would be a constant of the compiled function, so pass a key there).
    """
    op = "iid_creation"
    z, n = as_jax(z), _sizes_arg(n)
    check_iid_args(op, params, rng, "a JAX PRNG key, numpy.random.Generator or int seed", z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, None, "")
    params = cast_params(params, z.dtype)
    shape = (z.shape[0], max_n, params["noise_w"].shape[0])
    if isinstance(rng, jax.Array):
        noise = jax.random.normal(rng, shape, z.dtype)
    else:
        noise = jnp.asarray(ref_nn.as_rng(rng).standard_normal(shape).astype(np.dtype(z.dtype)))
    return _iid(params, z, mask, noise)


@jax.jit
def _iid(params, z, mask, noise):
    x = noise @ params["noise_w"] + (z @ params["z_w"])[:, None]
    return jnp.where(mask[..., None], x, 0).astype(z.dtype), mask


def mlp_creation(params, z, n, *, max_n=None, rng=None):
    """MLP creation: ``reshape(MLP(z), [n_max, out_dim])[:n]`` (see the reference)."""
    op = "mlp_creation"
    z, n = as_jax(z), _sizes_arg(n)
    num_points = ref.check_mlp_params(op, params, z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n_max")
    return _mlp(cast_params(params, z.dtype), z, mask)


@jax.jit
def _mlp(params, z, mask):
    h = mlp(params, "mlp", z, activate_final=True)
    x = jnp.einsum("bh,hnc->bnc", h, params["mlp_out_w"]) + params["mlp_out_b"]
    x = pad_rows(x, mask.shape[1], axis=1)
    return jnp.where(mask[..., None], x, 0).astype(z.dtype), mask


init_creation, create_set = creation_dispatchers({
    "top_n": (init_top_n_creation, top_n_creation),
    "first_n": (init_first_n_creation, first_n_creation),
    "iid": (init_iid_creation, iid_creation),
    "mlp": (init_mlp_creation, mlp_creation),
})
