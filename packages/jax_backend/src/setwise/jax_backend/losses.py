"""Set losses in JAX: Chamfer, Hungarian (W2) and Sinkhorn (math in
:mod:`setwise.reference.losses`).

- Chamfer and Sinkhorn are plain JAX (jit, vmap, grad). Sinkhorn runs ``num_iters``
  (static) log-domain iterations in a ``lax.fori_loop``; gradients go through the iterations.
- Hungarian matching runs on the host (``scipy.optimize.linear_sum_assignment``, through the
  reference) via ``jax.pure_callback``, so it works under ``jit`` and ``vmap`` (sequentially);
  the loss is differentiable through the matched costs (the matching itself has no gradient).

Padding rows are zeroed before any cost is computed, so whatever padding holds (even NaN)
never reaches a value or a gradient.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from setwise.jax_backend.api import as_jax, compute_dtype, is_concrete
from setwise.reference import losses as ref
from setwise.reference import validation as V
from setwise.reference.losses import CHAMFER_VARIANTS


def check_pair(op, x, y, x_mask, y_mask):
    """Validate two padded batches of sets; return them and their masks (all-True where
    None). The computations zero the padding first (:func:`_zero_padding`)."""
    x, y, x_mask, y_mask = as_jax(x), as_jax(y), as_jax(x_mask), as_jax(y_mask)
    V.check_set_pair(op, x, y, x_mask, y_mask)
    xm = jnp.ones(x.shape[:2], bool) if x_mask is None else x_mask
    ym = jnp.ones(y.shape[:2], bool) if y_mask is None else y_mask
    for name, a, m in (("x", x, xm), ("y", y, ym)):
        if is_concrete(a, m):
            V.check_finite(op, name, bool(np.isfinite(np.asarray(a)[np.asarray(m)]).all()))
    if is_concrete(x, y, xm, ym):  # squared distances that overflow the dtype (ref.check_costs)
        hx = np.where(np.asarray(xm)[..., None], np.asarray(x), 0)
        hy = np.where(np.asarray(ym)[..., None], np.asarray(y), 0)
        with np.errstate(over="ignore", invalid="ignore"):
            d = ref.pairwise_sq_dist(hx, hy)
        ref.check_costs(op, bool(np.isfinite(d).all()), x.dtype)
    return x, y, xm, ym


def _zero_padding(x, y, xm, ym):
    return jnp.where(xm[..., None], x, 0), jnp.where(ym[..., None], y, 0)


def pairwise_sq_dist(x, y):
    """``[num_sets, n, m]`` squared Euclidean distances, by explicit differences."""
    return ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)


def chamfer_loss(x, y, x_mask=None, y_mask=None, *, variant="sum"):
    """Chamfer loss per set, ``[num_sets]`` (see :func:`setwise.reference.chamfer_loss`)."""
    op = "chamfer_loss"
    V.check_choice(op, "variant", variant, CHAMFER_VARIANTS)
    return _chamfer(*check_pair(op, x, y, x_mask, y_mask), variant=variant)


@functools.partial(jax.jit, static_argnames="variant")
def _chamfer(x, y, xm, ym, *, variant):
    x, y = _zero_padding(x, y, xm, ym)
    d = pairwise_sq_dist(x, y)
    big = jnp.where(xm[:, :, None] & ym[:, None, :], d, jnp.inf)
    to_y = jnp.where(xm & ym.any(1, keepdims=True), big.min(2, initial=jnp.inf), 0).sum(1)
    to_x = jnp.where(ym & xm.any(1, keepdims=True), big.min(1, initial=jnp.inf), 0).sum(1)
    out = to_y + to_x
    return (out / x.shape[2] if variant == "dspn" else out).astype(x.dtype)


def _host_matching(x, y, xm, ym):
    match = ref.hungarian_matching(np.asarray(x), np.asarray(y), np.asarray(xm), np.asarray(ym))
    return match.astype(jnp.zeros((), int).dtype)


@jax.jit
def _matching(x, y, xm, ym):
    """The reference's matching on the host, as a ``pure_callback`` (jit/vmap-compatible)."""
    out = jax.ShapeDtypeStruct(xm.shape, jnp.zeros((), int).dtype)
    args = jax.lax.stop_gradient((x, y))
    return jax.pure_callback(_host_matching, out, *args, xm, ym, vmap_method="sequential")


def hungarian_matching(x, y, x_mask=None, y_mask=None):
    """Optimal assignment on squared Euclidean costs, per set: ``[num_sets, n]`` ints
    (-1 for padding / unmatched). See :func:`setwise.reference.hungarian_matching`."""
    return _matching(*check_pair("hungarian_matching", x, y, x_mask, y_mask))


def hungarian_loss(x, y, x_mask=None, y_mask=None):
    """Sum of matched squared distances per set, ``[num_sets]``; gradient through the
    matched costs. See :func:`setwise.reference.hungarian_loss`."""
    return _hungarian(*check_pair("hungarian_loss", x, y, x_mask, y_mask))


@jax.jit
def _hungarian(x, y, xm, ym):
    x, y = _zero_padding(x, y, xm, ym)
    match = _matching(x, y, xm, ym)
    d = pairwise_sq_dist(x, y)
    got = jnp.take_along_axis(d, jnp.maximum(match, 0)[..., None], 2)[..., 0]
    return jnp.where(match >= 0, got, 0).sum(1).astype(x.dtype)


def _lse(a, axis):
    """log-sum-exp that gives 0 (not NaN, with a finite gradient) where every term is -inf."""
    top = jax.lax.stop_gradient(jnp.max(a, axis=axis, keepdims=True, initial=-jnp.inf))
    top = jnp.where(jnp.isfinite(top), top, 0)
    total = jnp.exp(a - top).sum(axis)
    ok = total > 0
    return jnp.where(ok, jnp.log(jnp.where(ok, total, 1)), 0) + jnp.squeeze(top, axis)


@functools.partial(jax.jit, static_argnames=("num_iters",))
def _sinkhorn(x, y, xm, ym, epsilon, *, num_iters):
    x, y = _zero_padding(x, y, xm, ym)
    cost = pairwise_sq_dist(x, y)
    nx, ny = xm.sum(1, keepdims=True), ym.sum(1, keepdims=True)
    log_a = jnp.where(xm, 0.0, -jnp.inf).astype(x.dtype)
    ratio = (nx / jnp.maximum(ny, 1)).astype(x.dtype)
    log_b = jnp.where(ym & (ratio > 0), jnp.log(jnp.where(ratio > 0, ratio, 1)), -jnp.inf)

    def body(_, fg):
        _, g = fg
        f = -epsilon * _lse(log_b[:, None, :] + (g[:, None, :] - cost) / epsilon, 2)
        g = -epsilon * _lse(log_a[:, :, None] + (f[:, :, None] - cost) / epsilon, 1)
        return f, g

    f, g = jax.lax.fori_loop(0, num_iters, body, (jnp.zeros(xm.shape, x.dtype),
                                                  jnp.zeros(ym.shape, x.dtype)))
    log_p = (log_a[:, :, None] + log_b[:, None, :]
             + (f[:, :, None] + g[:, None, :] - cost) / epsilon)
    pair = xm[:, :, None] & ym[:, None, :]
    return jnp.where(pair, jnp.exp(jnp.where(pair, log_p, -jnp.inf)) * cost, 0).sum((1, 2))


def sinkhorn_loss(x, y, x_mask=None, y_mask=None, *, epsilon=1e-2, num_iters=200):
    """Entropic optimal transport cost (log-domain Sinkhorn) per set, ``[num_sets]``.

    See :func:`setwise.reference.sinkhorn_loss`. ``num_iters`` is static under ``jit``;
    ``epsilon`` may be traced (checked only when it is a number). Half-precision inputs are
    computed in float32.

    Notes:
        Padding is zeroed first: the reference lets a NaN in padding rows turn a set's
        potentials to 0 and returns a wrong finite value.
    """
    op = "sinkhorn_loss"
    if not isinstance(epsilon, jax.Array):
        epsilon = float(epsilon)
        if not epsilon > 0:
            V.fail(op, "epsilon", f"is {epsilon!r}", "a positive value")
    num_iters = V.check_positive_int(op, "num_iters", num_iters)
    x, y, xm, ym = check_pair(op, x, y, x_mask, y_mask)
    dtype = compute_dtype(x.dtype)
    out = _sinkhorn(x.astype(dtype), y.astype(dtype), xm, ym, jnp.asarray(epsilon, dtype),
                    num_iters=num_iters)
    return out.astype(x.dtype)
