"""Potentials ``F(x, y)`` of Equilibrium Aggregation and their analytic ``grad_y``.

A potential scores the disagreement between one set element ``x [dim]`` and a candidate
aggregate ``y [out_dim]``; EA minimises ``sum_i F(x_i, y)`` plus a regulariser over ``y``.
All functions here are element-wise: ``x [num_elements, dim]``, ``y [num_elements, out_dim]``
(the aggregate of each element's set, gathered), ``set_size [num_elements]`` (the size of each
element's set, used only by ``power_sum``).

Named potentials (paper 1 Table 1, appendix B, Theorem 1) have closed-form minimisers and are
the ground truth of the conformance suite:

============  ====================================================  ======================
name          F(x, y)                                               argmin_y sum_i F
============  ====================================================  ======================
residual      mean of squares of a residual tanh/LayerNorm MLP       learned
quadratic     sum_d (x_d - y_d)^2                                    mean
absolute      sum_d |x_d - y_d|                                      median
hinge         sum_d max(0, x_d - y_d)                                max (from y0 = 0 <= max)
linear        -x . y   (with regulariser y^2 / 2)                    sum
attention     w ||x - y_r||^2 + (y_s - w)^2,  w = exp(h . x)         attention pooling
power_sum     sum_{d,k} (y_{d,k} / N - x_d^k)^2                      power sums sum_i x_i^k
============  ====================================================  ======================
"""

from __future__ import annotations

import numpy as np

from setwise.reference import nn
from setwise.reference import validation as V

POTENTIALS = ("residual", "quadratic", "absolute", "hinge", "linear", "attention", "power_sum")
LAYER_NORM_EPS = 1e-5
#: Initial scale of the residual potential's hidden-layer biases (the layers that feed a
#: LayerNorm) and of its last layer (linear map and residual projection), relative to
#: ``hk.Linear``'s defaults (zero bias, weights ``TruncatedNormal(1 / sqrt(fan_in))``).
#: Why: :func:`init_potential`'s Notes.
RESIDUAL_BIAS_STDDEV = 1.0
RESIDUAL_OUT_SCALE = 0.3


def potential_out_dim_ok(potential: str, in_dim: int, out_dim: int) -> str | None:
    """``None`` if ``out_dim`` suits ``potential`` for inputs of ``in_dim``, else what it needs."""
    if potential in ("quadratic", "absolute", "hinge", "linear") and out_dim != in_dim:
        return f"out_dim == in_dim = {in_dim} for the coordinate-wise '{potential}' potential"
    if potential == "attention" and out_dim != in_dim + 1:
        return f"out_dim == in_dim + 1 = {in_dim + 1} ([y_r, y_s]) for the attention potential"
    if potential == "power_sum" and out_dim % in_dim:
        return f"a multiple of in_dim = {in_dim} (degree * in_dim) for the power_sum potential"
    return None


def init_potential(rng, in_dim, out_dim, *, potential="residual", hidden=(256, 128, 32),
                   dtype="float32"):
    """Parameters of a potential, as a flat mapping.

    Args:
        rng: ``numpy.random.Generator`` or int seed.
        in_dim: element dimension ``dim``.
        out_dim: aggregate dimension (``y``).
        potential: one of :data:`POTENTIALS`.
        hidden: layer sizes of the residual MLP (paper: ``[2h, h, 32]``); others ignore it.
        dtype: ``float32`` or ``float64``.

    Returns:
        ``residual``: ``potential_{i}_w [in_i, out_i]``, ``potential_{i}_b``, for hidden layers
        ``potential_{i}_ln_scale`` / ``potential_{i}_ln_offset``, and where the width changes
        ``potential_{i}_proj_w`` / ``potential_{i}_proj_b``; ``attention``: ``potential_query
        [dim]``; the other named potentials: nothing.

    Initial values of ``residual``: weights ``TruncatedNormal(1 / sqrt(fan_in))`` (Haiku's
    ``hk.Linear`` default, :func:`setwise.reference.nn.truncated_normal`), LayerNorm scale 1
    and offset 0, zero biases, except for two departures from Haiku's defaults: the hidden
    layers (those feeding a LayerNorm) start with biases ``TruncatedNormal(1.0)``
    (:data:`RESIDUAL_BIAS_STDDEV`), and the last layer's weight and residual projection start
    0.3x smaller (:data:`RESIDUAL_OUT_SCALE`).

    Notes:
        Paper 1 does not give the potential's initialisation; Listing 1 uses Haiku's defaults
        (zero biases). With them, EA's inner descent from ``y0 = 0`` at the paper's step 0.125
        diverges at initialisation on the median task: measured on 80 median-task sets x 3
        seeds, widths ``[256, 256, 1]`` and ``[32, 32, 1]``, D = 1..32, the energy after 5
        steps (``gtol = 0``) is below the energy at ``y0`` for 0-16% of the sets, and ``|y|``
        reaches 1e4-1e6. Two mechanisms, both needed:
        (1) LayerNorm's gain is ``1 / std(a)`` of its input ``a = [x, y] W + b``; at ``y = 0``
        with zero bias ``a = x W_x`` is small (``|x| / sqrt(D + 1)`` per unit; gamma sets put
        much of their mass near 0), so one element's curvature in ``y`` explodes as ``x -> 0``
        (largest Hessian eigenvalue ~7 at x = 1, 85-290 at x = 0.5-1 for D = 16, 3e5 at
        x = 0.01, 4e10 at x = 0). Unit-scale hidden biases keep ``std(a)`` near 1 whatever
        ``x`` (PyTorch's smaller ``U(+-1/sqrt(fan_in))`` biases still leave 14-120).
        (2) Even then, ``F = mean(out^2)`` with a unit-scale output has a curvature in ``y``
        of 5-70 per element, and eq. 13 sums ``log2(N + 1) = 6.7`` of them (N = 100): the
        energy's curvature is 30-400, far above the ``1.36 / alpha = 11`` Nesterov
        (``mu = 0.9``) tolerates at ``alpha = 0.125``. A last layer 0.3x smaller divides it
        by 11. Either fix alone leaves 0-47% of the sets going downhill at D >= 4; a larger
        LayerNorm epsilon (1e-2 or 1) or Haiku's weight scale alone do not help (0-61%).
        With both, every set of those draws goes downhill at every D and width, ``|y| < 3``
        after 5 steps, and the energy's largest curvature at ``y0`` is 0.3-2.4 (median over
        sets). The forward math (Listing 1, LayerNorm epsilon 1e-5) is unchanged; only
        initial values differ, and training moves them freely.
    """
    op = "init_potential"
    V.check_choice(op, "potential", potential, POTENTIALS)
    V.check_positive_int(op, "in_dim", in_dim)
    V.check_positive_int(op, "out_dim", out_dim)
    if (need := potential_out_dim_ok(potential, in_dim, out_dim)) is not None:
        V.fail(op, "out_dim", f"is {out_dim}", need)
    rng, dtype = nn.as_rng(rng), nn.check_dtype(op, dtype)
    params = {}
    if potential == "residual":
        sizes = [int(h) for h in hidden]
        if not sizes or min(sizes) < 1:
            V.fail(op, "hidden", f"is {hidden!r}", "a non-empty sequence of positive ints")
        width = in_dim + out_dim
        for i, size in enumerate(sizes):
            hidden_layer = i < len(sizes) - 1
            scale = 1.0 if hidden_layer else RESIDUAL_OUT_SCALE
            nn.init_linear(rng, params, f"potential_{i}", width, size, dtype, scale=scale,
                           bias_stddev=RESIDUAL_BIAS_STDDEV if hidden_layer else 0.0)
            if hidden_layer:
                params[f"potential_{i}_ln_scale"] = np.ones(size, dtype)
                params[f"potential_{i}_ln_offset"] = np.zeros(size, dtype)
            if size != width:
                nn.init_linear(rng, params, f"potential_{i}_proj", width, size, dtype,
                               scale=scale)
            width = size
    elif potential == "attention":
        params["potential_query"] = nn.truncated_normal(rng, (in_dim,), 1 / np.sqrt(in_dim),
                                                        dtype)
    return params


def residual_depth(params) -> int:
    return nn.mlp_depth(params, "potential")


def _residual_forward(params, z):
    """Listing 1: ``z`` through the residual MLP; returns the output and a cache for backprop."""
    depth = residual_depth(params)
    cache = []
    for i in range(depth):
        p = f"potential_{i}"
        a = z @ params[f"{p}_w"] + params[f"{p}_b"]
        if i < depth - 1:
            mu = a.mean(-1, keepdims=True)
            rstd = 1 / np.sqrt(((a - mu) ** 2).mean(-1, keepdims=True) + LAYER_NORM_EPS)
            a_hat = (a - mu) * rstd
            h = np.tanh(a_hat * params[f"{p}_ln_scale"] + params[f"{p}_ln_offset"])
            cache.append((a_hat, rstd, h))
        else:
            h = a
            cache.append(None)
        skip = z @ params[f"{p}_proj_w"] + params[f"{p}_proj_b"] if f"{p}_proj_w" in params else z
        z = skip + h
    return z, cache


def _residual_grad_input(params, z0):
    """``d F / d z0`` for ``F = mean(out^2)``, back-propagated by hand through Listing 1."""
    out, cache = _residual_forward(params, z0)
    dz = 2 * out / out.shape[-1]
    for i in reversed(range(len(cache))):
        p = f"potential_{i}"
        dskip = dz
        dz_prev = dskip @ params[f"{p}_proj_w"].T if f"{p}_proj_w" in params else dskip
        if cache[i] is not None:
            a_hat, rstd, h = cache[i]
            dn = dz * (1 - h**2) * params[f"{p}_ln_scale"]
            da = rstd * (dn - dn.mean(-1, keepdims=True)
                         - a_hat * (dn * a_hat).mean(-1, keepdims=True))
        else:
            da = dz
        dz = dz_prev + da @ params[f"{p}_w"].T
    return dz


def _attention_weight(params, x):
    return np.exp(x @ params["potential_query"])


def _power_terms(x, degree):
    """``[E, dim * degree]``: ``x_d^k`` for d-major, k = 1..degree."""
    k = np.arange(1, degree + 1, dtype=x.dtype)
    return (x[..., None] ** k).reshape(x.shape[0], -1)


def _power_sum_size(set_size, dtype):
    """``N`` per element, ``[E, 1]``; at least 1, so padding rows of an empty set stay finite."""
    return np.maximum(np.asarray(set_size, dtype=dtype), 1)[:, None]


def potential_value(params, x, y, set_size=None, *, potential="residual"):
    """``F(x_i, y_i)`` for each element: ``x [E, dim]``, ``y [E, out_dim]`` -> ``[E]``."""
    V.check_choice("potential_value", "potential", potential, POTENTIALS)
    x, y = np.asarray(x), np.asarray(y)
    if potential == "residual":
        out, _ = _residual_forward(params, np.concatenate([x, y], -1))
        return (out**2).mean(-1)
    if potential == "quadratic":
        return ((x - y) ** 2).sum(-1)
    if potential == "absolute":
        return np.abs(x - y).sum(-1)
    if potential == "hinge":
        return np.maximum(x - y, 0).sum(-1)
    if potential == "linear":
        return -(x * y).sum(-1)
    if potential == "attention":
        w = _attention_weight(params, x)
        return w * ((x - y[:, :-1]) ** 2).sum(-1) + (y[:, -1] - w) ** 2
    n = _power_sum_size(set_size, x.dtype)
    return ((y / n - _power_terms(x, y.shape[-1] // x.shape[-1])) ** 2).sum(-1)


def potential_grad_y(params, x, y, set_size=None, *, potential="residual"):
    """``grad_y F(x_i, y_i)`` for each element, analytic: ``[E, out_dim]``.

    ``absolute`` and ``hinge`` are not differentiable at ``x_d = y_d``: the subgradient used
    there is 0 (``sign(0) = 0``, ``[x > y] = 0``).
    """
    V.check_choice("potential_grad_y", "potential", potential, POTENTIALS)
    x, y = np.asarray(x), np.asarray(y)
    if potential == "residual":
        return _residual_grad_input(params, np.concatenate([x, y], -1))[:, x.shape[-1]:]
    if potential == "quadratic":
        return 2 * (y - x)
    if potential == "absolute":
        return np.sign(y - x)
    if potential == "hinge":
        return -(x > y).astype(x.dtype)
    if potential == "linear":
        return -x
    if potential == "attention":
        w = _attention_weight(params, x)[:, None]
        return np.concatenate([2 * w * (y[:, :-1] - x), 2 * (y[:, -1:] - w)], -1)
    n = _power_sum_size(set_size, x.dtype)
    return 2 / n * (y / n - _power_terms(x, y.shape[-1] // x.shape[-1]))
