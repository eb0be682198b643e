"""Top-n creation in JAX (paper 2, eqs. 5-10; math in :mod:`setwise.reference.top_n`).

jit-compatible with ``max_n`` static (give it when ``n`` is traced). The selection is a
stable ``argsort`` of the negated cosines (ties to the lower index, as the reference) and
carries no gradient; the angles and the angle MLP learn through the selected cosines.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from setwise.jax_backend.api import as_jax, cast_params, converted, is_concrete
from setwise.jax_backend.nn import mlp, pad_rows, safe_norm
from setwise.reference import top_n as ref
from setwise.reference import validation as V
from setwise.reference.top_n import COS_EPS

init_top_n_creation = converted(ref.init_top_n_creation)


def creation_sizes(op, z, n, max_n, limit, limit_name):
    """Validate ``z [num_sets, latent_dim]`` and sizes ``n`` (int or ``[num_sets]``).

    Returns ``(n [num_sets] int, max_n, mask [num_sets, max_n] bool)``. Value checks run when
    ``z`` / ``n`` are concrete; with a traced ``n``, ``max_n`` must be given.
    """
    V.check_rank(op, "z", z.shape, (2,), "z [num_sets, latent_dim]")
    V.check_float(op, "z", z.dtype)
    if is_concrete(z):
        V.check_finite(op, "z", bool(np.isfinite(np.asarray(z)).all()))
    if not is_concrete(n):
        V.check_int(op, "n", n.dtype)
        sizes = jnp.broadcast_to(n, (z.shape[0],)) if n.ndim == 0 else n
        if sizes.shape != (z.shape[0],):
            V.fail(op, "n", f"has shape {tuple(n.shape)}", f"an int or [num_sets] = "
                   f"[{z.shape[0]}]")
        if max_n is None:
            V.fail(op, "max_n", "is None with a traced n", "an int (the padded set size) "
                   "under jit", TypeError)
        max_n = V.check_positive_int(op, "max_n", max_n, minimum=0)
        return sizes, max_n, jnp.arange(max_n)[None, :] < sizes[:, None]
    host = np.asarray(n)
    host = np.broadcast_to(host, (z.shape[0],)) if host.ndim == 0 else host
    if host.ndim != 1 or (host.size and not np.issubdtype(host.dtype, np.integer)):
        V.fail(op, "n", f"is {n!r}", "an int or an int array [num_sets]", TypeError)
    if max_n is not None:
        max_n = V.check_positive_int(op, "max_n", max_n, minimum=0)
    V.check_set_sizes(op, host.tolist(), z.shape[0], limit, limit_name, max_n)
    max_n = int(host.max(initial=0)) if max_n is None else max_n
    return jnp.asarray(host), max_n, jnp.asarray(np.arange(max_n)[None, :] < host[:, None])


def top_n_scores(params, z):
    """``c [num_sets, n0]``: cosine between every reference angle and ``a = MLP(z)``."""
    a = mlp(params, "angle_mlp", z)
    a = a / safe_norm(a, COS_EPS)
    phi = params["angles"] / safe_norm(params["angles"], COS_EPS)
    return a @ phi.T


def top_n_select(scores, max_n):
    """Indices ``[num_sets, max_n]`` of the largest scores, descending, ties to lower index.

    Past ``n0`` (``max_n > n0``) the indices are 0: those rows are always padding.
    """
    order = jnp.argsort(-jax.lax.stop_gradient(scores), axis=-1, stable=True)
    return pad_rows(order, max_n, axis=1)


def top_n_creation(params, z, n, *, max_n=None, rng=None):
    """Create one set per latent vector by Top-n selection.

    See :func:`setwise.reference.top_n_creation` for the math, arguments and notes.
    ``max_n`` is static under ``jit`` (required there when ``n`` is traced); ``rng`` is
    unused. Returns ``(x [num_sets, max_n, out_dim], mask [num_sets, max_n])``.

    Notes:
        ``max_n`` larger than ``n0`` pads with zero rows (the reference fails to broadcast).
    """
    op = "top_n_creation"
    z, n = as_jax(z), n if isinstance(n, int) else as_jax(n)
    num_points = ref.check_top_n_params(op, params, z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n0 (reference points)")
    return _top_n(cast_params(params, z.dtype), z, mask)


@jax.jit
def _top_n(params, z, mask):
    scores = top_n_scores(params, z)
    sel = top_n_select(scores, mask.shape[1])
    c = jnp.take_along_axis(scores, sel, -1)
    top = jax.lax.stop_gradient(jnp.max(jnp.where(mask, c, -jnp.inf), -1, keepdims=True,
                                        initial=-jnp.inf))
    top = jnp.where(jnp.isfinite(top), top, 0)
    e = jnp.where(mask, jnp.exp(jnp.where(mask, c - top, 0)), 0)
    c_tilde = (e / jnp.maximum(e.sum(-1, keepdims=True), COS_EPS))[..., None]
    x = params["points"][sel] * (c_tilde * params["w1"]) + c_tilde * params["w2"]
    x = x * (z @ params["w3"])[:, None] + (z @ params["w4"])[:, None]
    return jnp.where(mask[..., None], x, 0).astype(z.dtype), mask
