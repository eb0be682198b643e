"""Potentials ``F(x, y)`` of Equilibrium Aggregation in JAX, with analytic ``grad_y``.

Same potentials, parameters and math as :mod:`setwise.reference.potentials`. The residual
MLP is written once, for ``y`` given per *set* (``y [num_sets, out_dim]``) and a ``gather``
that hands each element its set's row, so that the first layer splits (DESIGN.md section 3):

.. math:: [x_i, y_s] W = x_i W_x + (y_s W_y)_{[s]}

``x W_x`` (and the residual projection's ``x P_x``) is computed once per solve, ``y W_y`` once
per set and step, and ``grad_y`` sums over each set before the small matmul with ``W_y^T``.
The element-wise public functions are the special case "every element is its own set".

A potential may also be a callable ``F(params, x, y) -> [num_elements]`` (``y`` gathered per
element); its ``grad_y`` then comes from ``jax.grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from setwise.jax_backend.api import as_jax, converted
from setwise.jax_backend.nn import mlp_depth
from setwise.reference import potentials as ref
from setwise.reference import validation as V
from setwise.reference.potentials import LAYER_NORM_EPS, POTENTIALS

init_potential = converted(ref.init_potential)


def _identity(a):
    return a


def residual_depth(params) -> int:
    return mlp_depth(params, "potential")


def _has_proj(params, i) -> bool:
    return f"potential_{i}_proj_w" in params


def _layer(params, i):
    """Layer ``i``'s weights ``[W | P]`` and biases ``[b | pb]`` (P: residual projection)."""
    p = f"potential_{i}"
    if not _has_proj(params, i):
        return params[f"{p}_w"], params[f"{p}_b"]
    return (jnp.concatenate([params[f"{p}_w"], params[f"{p}_proj_w"]], 1),
            jnp.concatenate([params[f"{p}_b"], params[f"{p}_proj_b"]]))


def residual_x_part(params, x):
    """``x W_x + b`` of the first layer (and its projection): the part free of ``y``."""
    w, b = _layer(params, 0)
    return x @ w[: x.shape[-1]] + b


def _ln_tanh(params, i, a):
    mu = a.mean(-1, keepdims=True)
    rstd = jax.lax.rsqrt(((a - mu) ** 2).mean(-1, keepdims=True) + LAYER_NORM_EPS)
    a_hat = (a - mu) * rstd
    h = jnp.tanh(a_hat * params[f"potential_{i}_ln_scale"] + params[f"potential_{i}_ln_offset"])
    return h, (a_hat, rstd, h)


def _ln_tanh_grad(params, i, dh, cache):
    a_hat, rstd, h = cache
    dn = dh * (1 - h**2) * params[f"potential_{i}_ln_scale"]
    return rstd * (dn - dn.mean(-1, keepdims=True)
                   - a_hat * (dn * a_hat).mean(-1, keepdims=True))


def residual_forward(params, x, x_part, y, gather):
    """Listing 1 on ``[x_i, y_set(i)]``: the last layer's output ``[E, width]`` and a cache.

    Args:
        x: ``[E, dx]``; ``x_part``: :func:`residual_x_part` of it; ``y``: ``[S, dy]``;
        gather: ``[S, k] -> [E, k]``.
    """
    dx = x.shape[-1]
    depth = residual_depth(params)
    caches, z = [], None
    for i in range(depth):
        size = params[f"potential_{i}_w"].shape[1]
        w, b = _layer(params, i)
        pre = x_part + gather(y @ w[dx:]) if i == 0 else z @ w + b
        a = pre[:, :size]
        if _has_proj(params, i):
            skip = pre[:, size:]
        else:
            skip = jnp.concatenate([x, gather(y)], -1) if i == 0 else z
        h, cache = _ln_tanh(params, i, a) if i < depth - 1 else (a, None)
        caches.append(cache)
        z = skip + h
    return z, caches


def residual_grad_y(params, x, x_part, y, gather, segsum, weight):
    """``segsum(weight_i * grad_y F(x_i, y_set(i)))``: ``[S, dy]``, back-propagated by hand.

    First-order code (no autodiff inside), so an unrolled solver differentiates through it
    with one extra order, not two.
    """
    dx = x.shape[-1]
    out, caches = residual_forward(params, x, x_part, y, gather)
    dz = out * (weight[:, None] * (2 / out.shape[-1]))
    for i in reversed(range(len(caches))):
        da = dz if caches[i] is None else _ln_tanh_grad(params, i, dz, caches[i])
        w, _ = _layer(params, i)
        proj = _has_proj(params, i)
        both = jnp.concatenate([da, dz], -1) if proj else da
        if i > 0:
            back = both @ w.T
            dz = back if proj else dz + back
        else:
            dy = segsum(both) @ w[dx:].T
            if not proj:
                dy = dy + segsum(dz[:, dx:])
    return dy


def _attention_weight(params, x):
    return jnp.exp(x @ params["potential_query"])


def _power_terms(x, degree):
    """``[E, dim * degree]``: ``x_d^k`` for d-major, k = 1..degree."""
    return jnp.stack([x**k for k in range(1, degree + 1)], -1).reshape(x.shape[0], -1)


def _safe_size(set_size, dtype):
    """``N`` per element as ``[E, 1]``; at least 1, so padding of an empty set stays finite
    (the reference divides by 0 there and an empty dense set becomes NaN)."""
    return jnp.maximum(set_size.astype(dtype), 1)[:, None]


def element_value(params, x, y, set_size, potential):
    """``F(x_i, y_i)`` per element, ``[E]``, for a named or callable potential."""
    if callable(potential):
        return potential(params, x, y)
    if potential == "residual":
        out, _ = residual_forward(params, x, residual_x_part(params, x), y, _identity)
        return (out**2).mean(-1)
    if potential == "quadratic":
        return ((x - y) ** 2).sum(-1)
    if potential == "absolute":
        return jnp.abs(x - y).sum(-1)
    if potential == "hinge":
        return jnp.maximum(x - y, 0).sum(-1)
    if potential == "linear":
        return -(x * y).sum(-1)
    if potential == "attention":
        w = _attention_weight(params, x)
        return w * ((x - y[:, :-1]) ** 2).sum(-1) + (y[:, -1] - w) ** 2
    n = _safe_size(set_size, x.dtype)
    return ((y / n - _power_terms(x, y.shape[-1] // x.shape[-1])) ** 2).sum(-1)


def element_grad_y(params, x, y, set_size, potential):
    """``grad_y F(x_i, y_i)`` per element, ``[E, out_dim]`` (closed forms; autodiff for a
    callable)."""
    if callable(potential):
        return jax.grad(lambda yy: potential(params, x, yy).sum())(y)
    if potential == "residual":
        ones = jnp.ones(x.shape[0], x.dtype)
        return residual_grad_y(params, x, residual_x_part(params, x), y, _identity, _identity,
                               ones)
    if potential == "quadratic":
        return 2 * (y - x)
    if potential == "absolute":
        return jnp.sign(y - x)
    if potential == "hinge":
        return -(x > y).astype(x.dtype)
    if potential == "linear":
        return -x
    if potential == "attention":
        w = _attention_weight(params, x)[:, None]
        return jnp.concatenate([2 * w * (y[:, :-1] - x), 2 * (y[:, -1:] - w)], -1)
    n = _safe_size(set_size, x.dtype)
    return 2 / n * (y / n - _power_terms(x, y.shape[-1] // x.shape[-1]))


def set_grad_y(params, seg, x_part, y, sizes, potential):
    """``sum_{i in s} w_i grad_y F(x_i, y_s)`` per set, ``[S, out_dim]``.

    ``x_part``: :func:`residual_x_part` of ``seg.x`` (residual potential), computed once per
    solve by the caller; ``None`` otherwise.
    """
    if potential == "residual":
        return residual_grad_y(params, seg.x, x_part, y, seg.gather, seg.sum, seg.weight)
    if callable(potential):
        def total(yy):
            return (seg.weight * potential(params, seg.x, seg.gather(yy))).sum()
        return jax.grad(total)(y)
    g = element_grad_y(params, seg.x, seg.gather(y), seg.gather(sizes), potential)
    return seg.sum(seg.weight[:, None] * g)


def set_value(params, seg, y, sizes, potential):
    """``sum_{i in s} w_i F(x_i, y_s)`` per set, ``[S]``."""
    if potential == "residual":
        out, _ = residual_forward(params, seg.x, residual_x_part(params, seg.x), y, seg.gather)
        f = (out**2).mean(-1)
    else:
        f = element_value(params, seg.x, seg.gather(y), seg.gather(sizes), potential)
    return seg.sum(seg.weight * f)


def _check_elements(op, params, x, y, set_size, potential):
    if not callable(potential):
        V.check_choice(op, "potential", potential, POTENTIALS)
    V.check_rank(op, "x", x.shape, (2,), "x [num_elements, dim]")
    V.check_rank(op, "y", y.shape, (2,), "y [num_elements, out_dim]")
    V.check_float(op, "x", x.dtype)
    if y.shape[0] != x.shape[0]:
        V.fail(op, "y", f"has shape {tuple(y.shape)}", f"{x.shape[0]} rows, one per element")
    if potential == "power_sum" and set_size is None:
        V.fail(op, "set_size", "is None", "the size of each element's set (power_sum)")
    y = y.astype(x.dtype)
    params = {k: jnp.asarray(v, x.dtype) for k, v in params.items()}
    size = None if set_size is None else jnp.asarray(set_size)
    return params, y, size


def potential_value(params, x, y, set_size=None, *, potential="residual"):
    """``F(x_i, y_i)`` for each element: ``x [E, dim]``, ``y [E, out_dim]`` -> ``[E]``.

    See :func:`setwise.reference.potential_value`; ``potential`` may also be a callable.
    """
    x, y = as_jax(x), as_jax(y)
    params, y, size = _check_elements("potential_value", params, x, y, set_size, potential)
    return element_value(params, x, y, size, potential)


def potential_grad_y(params, x, y, set_size=None, *, potential="residual"):
    """``grad_y F(x_i, y_i)`` for each element: ``[E, out_dim]``.

    See :func:`setwise.reference.potential_grad_y`: analytic for the named potentials
    (subgradient 0 at the kinks of ``absolute`` and ``hinge``), ``jax.grad`` for a callable.
    """
    x, y = as_jax(x), as_jax(y)
    params, y, size = _check_elements("potential_grad_y", params, x, y, set_size, potential)
    return element_grad_y(params, x, y, size, potential)
