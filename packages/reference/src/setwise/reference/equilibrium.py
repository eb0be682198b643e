"""Equilibrium Aggregation (paper 1, eqs. 3-5 and 13; appendix C; Listings 1-2).

A set ``X`` is encoded as the approximate minimiser of a learned energy,

.. math::

    E(X, y) = s(N) \\Big( \\mathrm{softplus}(\\lambda) \\|y\\|^2 + \\sum_{i=1}^N F(x_i, y) \\Big),
    \\qquad s(N) = \\frac{\\log_2(N + 1)}{N + 10^{-8}} \\;\\text{(eq. 13)} \\;\\text{or}\\; 1
    \\;\\text{(eq. 3)},

found by ``num_steps`` steps of Nesterov-accelerated gradient descent from ``y0 = 0``
(Listing 2): for t = 1..T,

.. math::

    g_t = \\nabla_y E(X, y_{t-1} + \\mu v_{t-1}), \\quad
    v_t = \\mu v_{t-1} - \\alpha g_t, \\quad
    y_t = y_{t-1} + [\\max_d |g_{t,d}| \\ge \\text{gtol}]\\, v_t,

optionally clipped to ``[-clip, clip]``, with ``alpha = softplus(step_size_raw)`` and
``mu = sigmoid(momentum_raw)`` learned.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from setwise.reference import nn
from setwise.reference import validation as V
from setwise.reference.potentials import (
    POTENTIALS,
    init_potential,
    potential_grad_y,
    potential_out_dim_ok,
    potential_value,
)
from setwise.reference.segments import as_segments, segment_sum

GRAD_MODES = ("unrolled", "implicit", "truncated")
SCALE_EPS = 1e-8


class EAInfo(NamedTuple):
    """Diagnostics of the inner solver, one value per set.

    Attributes:
        aux_loss: ``[num_sets]`` eq. 5, ``(1/T) sum_t ||g_t||_2^2``.
        grad_max_norm: ``[num_sets]`` ``max_d |g_T,d|`` of the last gradient computed (Fig. 5).
        active_steps: ``[num_sets]`` number of steps whose update was applied (gtol mask).
        diverged: ``[num_sets]`` bool, True where the inner descent left the floating range
            (``y`` holds NaN or Inf: the step size is too large for the potential's
            curvature, or the inputs overflow the dtype). Every backend sets it; no error is
            raised, so a training loop can skip or log such a batch.
    """

    aux_loss: object
    grad_max_norm: object
    active_steps: object
    diverged: object = None


def init_equilibrium_aggregation(rng, in_dim, out_dim, *, potential="residual",
                                 hidden=(256, 128, 32), step_size=0.125, momentum=0.9,
                                 reg_weight=None, dtype="float32"):
    """Parameters of Equilibrium Aggregation, as a flat ``name -> array`` mapping.

    Args:
        rng: ``numpy.random.Generator`` or int seed.
        in_dim: element dimension.
        out_dim: aggregate dimension ``M``.
        potential: one of :data:`POTENTIALS` (see :mod:`setwise.reference.potentials`).
        hidden: residual-MLP layer sizes (paper: ``[2h, h, 32]``; median task ``[256, 256, 1]``).
        step_size: initial ``alpha`` (paper: 0.125); stored as ``step_size_raw = log(expm1(a))``.
        momentum: initial ``mu`` (paper: 0.9); stored as ``momentum_raw = logit(mu)``.
        reg_weight: initial ``softplus(lambda)``; ``None`` picks the potential's default:
            ``log 2`` (raw 0) for ``residual``, 0.5 for ``linear`` (Table 1's ``y^2/2``),
            and no regulariser (no ``reg_weight_raw`` entry) for the other named potentials.
        dtype: ``float32`` or ``float64``.

    Returns:
        the potential's parameters plus scalars ``step_size_raw``, ``momentum_raw`` and
        (unless there is no regulariser) ``reg_weight_raw``.

    Notes:
        Listing 2 initialises ``lr`` with a function named ``inverse_softplus`` that is in fact
        softplus; setwise uses the true inverse, so ``alpha`` starts at ``step_size`` exactly.
        The papers do not give the initial regulariser weight; setwise starts the residual
        potential at ``softplus(0) = log 2`` (a zero-initialised ``lambda``). The residual
        potential's hidden biases start at unit scale and its last layer 0.3x smaller than
        Haiku's defaults, so that at ``step_size = 0.125`` the untrained inner descent lowers
        the energy (with Haiku's zero biases it diverges on median-task sets; the evidence is
        in :func:`setwise.reference.potentials.init_potential`'s Notes).
    """
    op = "init_equilibrium_aggregation"
    dtype = nn.check_dtype(op, dtype)
    if not 0 < momentum < 1:
        V.fail(op, "momentum", f"is {momentum!r}", "a value in (0, 1)")
    if not step_size > 0:
        V.fail(op, "step_size", f"is {step_size!r}", "a positive value")
    params = init_potential(rng, in_dim, out_dim, potential=potential, hidden=hidden,
                            dtype=dtype)
    if reg_weight is None:
        reg_weight = {"residual": np.log(2.0), "linear": 0.5}.get(potential)
    if reg_weight is not None:
        if not reg_weight > 0:
            V.fail(op, "reg_weight", f"is {reg_weight!r}", "a positive value or None")
        params["reg_weight_raw"] = np.asarray(nn.inverse_softplus(reg_weight), dtype)
    params["step_size_raw"] = np.asarray(nn.inverse_softplus(step_size), dtype)
    params["momentum_raw"] = np.asarray(nn.logit(momentum), dtype)
    return params


def energy_scale(set_size, scaled=True):
    """``s(N) = log2(N + 1) / (N + 1e-8)`` (eq. 13) or 1 (eq. 3, ``scaled=False``)."""
    set_size = np.asarray(set_size)
    if not scaled:
        return np.ones_like(set_size)
    return np.log2(set_size + 1) / (set_size + SCALE_EPS)


EA_SCALARS = ("step_size_raw", "momentum_raw", "reg_weight_raw")


def ea_param_spec(params, potential, dim, out_dim=None, solver=True):
    """The shapes every EA parameter must have for elements of size ``dim`` (see
    :func:`setwise.reference.validation.check_params`)."""
    spec = {}
    if potential == "residual":
        width = None if out_dim is None else dim + out_dim
        depth, layer = 0, {}
        while f"potential_{depth}_w" in params:
            layer[depth] = V._shape_dtype(params[f"potential_{depth}_w"])[0]
            depth += 1
        spec["potential_0_w"] = (width, None)
        for i in range(depth):
            out = layer[i][-1] if len(layer[i]) == 2 else None
            spec[f"potential_{i}_w"] = (width, out)
            spec[f"potential_{i}_b"] = (out,)
            if i < depth - 1:
                spec[f"potential_{i}_ln_scale"] = (out,)
                spec[f"potential_{i}_ln_offset"] = (out,)
            if width is None or out != width or f"potential_{i}_proj_w" in params:
                spec[f"potential_{i}_proj_w"] = (width, out)
                spec[f"potential_{i}_proj_b"] = (out,)
            width = out
        later = sorted(int(k.split("_")[1]) for k in params if k.startswith("potential_")
                       and k.endswith("_w") and k.split("_")[1].isdigit())
        if later and later[-1] >= depth:
            spec[f"potential_{depth}_w"] = (width, None)
    elif potential == "attention":
        spec["potential_query"] = (dim,)
    if solver:
        spec.update(step_size_raw=(), momentum_raw=())
    spec["reg_weight_raw"] = ()
    return spec


def check_ea_args(op, params, seg, potential, y=None, out_dim=None, solver=False):
    """Validate EA parameters (the whole mapping: names, shapes, dtypes), ``x``'s width and
    ``y`` for ``potential``; return the natural ``out_dim`` (``None`` for ``power_sum``, whose
    size the caller gives). Shared by every backend.

    The residual potential's parameters fix only ``dim + out_dim`` (the width of its first
    layer), so ``x``'s width is checked against them only when ``out_dim`` is known: given as
    an argument, or through ``y`` (every module passes it).
    """
    V.check_choice(op, "potential", potential, POTENTIALS)
    dim = seg.x.shape[1]
    if out_dim is None and y is not None and len(y.shape) == 2:
        out_dim = y.shape[1]
    if potential == "residual":
        V.check_params(op, params, {"potential_0_w": (None, None)})
        in_width = V._shape_dtype(params["potential_0_w"])[0][0]
        natural = in_width - dim
        if out_dim is not None and natural != out_dim:
            V.fail(op, "x", f"has dim {dim}", f"{in_width - out_dim} = the residual potential's "
                   f"input width {in_width} - out_dim {out_dim}")
        if natural < 1:
            V.fail(op, "x", f"has dim {dim}",
                   f"less than the potential's input width {in_width} (= dim + out_dim)")
    elif potential == "attention":
        V.check_params(op, params, {"potential_query": (None,)})
        query = V._shape_dtype(params["potential_query"])[0][0]
        if dim != query:
            V.fail(op, "x", f"has dim {dim}", f"{query}, the size of params['potential_query']")
        natural = dim + 1
    elif potential == "power_sum":
        natural = None if y is None else y.shape[-1]
    else:
        natural = dim
    V.check_params(op, params, ea_param_spec(params, potential, dim, natural, solver),
                   optional=("reg_weight_raw",))
    if y is not None:
        V.check_rank(op, "y", y.shape, (2,), "y [num_sets, out_dim]")
        if y.shape[0] != seg.num_sets or (natural is not None and y.shape[1] != natural):
            V.fail(op, "y", f"has shape {tuple(y.shape)}", f"[num_sets, out_dim] = "
                   f"[{seg.num_sets}, {natural}]")
        if (need := potential_out_dim_ok(potential, dim, y.shape[1])) is not None:
            V.fail(op, "y", f"has out_dim {y.shape[1]}", need)
    return natural


def check_ea_scalars(op, finite: dict):
    """``finite``: for each of :data:`EA_SCALARS` present, whether its value is finite (a NaN
    ``step_size_raw`` would silently turn every output into NaN)."""
    for name, ok in finite.items():
        V.check_finite(op, f"params['{name}']", bool(ok))


def _reg_weight(params, dtype):
    if "reg_weight_raw" not in params:
        return dtype.type(0)
    return nn.softplus(np.asarray(params["reg_weight_raw"], dtype))


def _energy_parts(params, seg, scaled):
    sizes = segment_sum(seg.weight, seg.index, seg.num_sets)
    return sizes, energy_scale(sizes, scaled), _reg_weight(params, seg.x.dtype)


def energy(params, x, y, mask=None, *, index=None, ptr=None, num_sets=None,
           potential="residual", scaled=True):
    """The energy of each set at ``y [num_sets, out_dim]``: ``[num_sets]``.

    .. math:: E(X_s, y_s) = s(N_s) (\\mathrm{softplus}(\\lambda) \\|y_s\\|^2
              + \\sum_{i \\in s} F(x_i, y_s))

    Invariant to permuting the elements of a set, to padding, and to the other sets.
    """
    op = "energy"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    y = np.asarray(y, dtype=seg.x.dtype)
    check_ea_args(op, params, seg, potential, y)
    sizes, scale, lam = _energy_parts(params, seg, scaled)
    f = potential_value(params, seg.x, y[seg.index], sizes[seg.index], potential=potential)
    return scale * (lam * (y**2).sum(-1) + segment_sum(seg.weight * f, seg.index, seg.num_sets))


def _energy_grad(params, seg, y, sizes, scale, lam, potential):
    g = potential_grad_y(params, seg.x, y[seg.index], sizes[seg.index], potential=potential)
    return scale[:, None] * (2 * lam * y + segment_sum(seg.weight[:, None] * g, seg.index,
                                                       seg.num_sets))


def energy_grad_y(params, x, y, mask=None, *, index=None, ptr=None, num_sets=None,
                  potential="residual", scaled=True):
    """``grad_y E(X_s, y_s)`` for each set, analytic: ``[num_sets, out_dim]``."""
    op = "energy_grad_y"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    y = np.asarray(y, dtype=seg.x.dtype)
    check_ea_args(op, params, seg, potential, y)
    sizes, scale, lam = _energy_parts(params, seg, scaled)
    return _energy_grad(params, seg, y, sizes, scale, lam, potential)


def check_solver_args(op, num_steps, gtol, clip, grad_mode, truncate_steps):
    """Validation of the solver's configuration, shared by every backend."""
    num_steps = V.check_positive_int(op, "num_steps", num_steps, minimum=0)
    if not gtol >= 0:
        V.fail(op, "gtol", f"is {gtol!r}", "a value >= 0")
    if clip is not None and not clip > 0:
        V.fail(op, "clip", f"is {clip!r}", "None or a positive value")
    V.check_choice(op, "grad_mode", grad_mode, GRAD_MODES)
    if grad_mode == "truncated":
        truncate_steps = V.check_positive_int(op, "truncate_steps", truncate_steps)
        if truncate_steps > num_steps:
            V.fail(op, "truncate_steps", f"is {truncate_steps}", f"<= num_steps = {num_steps}")
    elif truncate_steps is not None:
        V.fail(op, "truncate_steps", f"is {truncate_steps!r}", "None unless grad_mode="
               "'truncated'")
    return num_steps, truncate_steps


def equilibrium_aggregation(params, x, mask=None, *, index=None, ptr=None, num_sets=None,
                            potential="residual", num_steps=5, scaled=True, gtol=1e-3,
                            clip=None, out_dim=None, grad_mode="unrolled", truncate_steps=None,
                            return_info=False):
    """Equilibrium Aggregation: each set becomes the minimiser of its energy.

    .. math:: y_s = \\arg\\min_y E(X_s, y) \\quad\\text{(approximately: T Nesterov steps)}

    Args:
        params: mapping from :func:`init_equilibrium_aggregation`.
        x: ``[num_sets, max_size, dim]`` (with ``mask``) or ``[num_elements, dim]`` (with
            ``index`` or ``ptr``, and ``num_sets``); float32 or float64.
        mask: ``[num_sets, max_size]`` bool, True = present.
        index: ``[num_elements]`` int set ids in ``[0, num_sets)``.
        ptr: ``[num_sets + 1]`` CSR offsets (elements sorted by set), instead of ``index``.
        num_sets: number of sets (required with ``index``).
        potential: one of :data:`POTENTIALS`.
        num_steps: ``T`` (paper: 5 median, 10 Omniglot, 15 MOLPCBA); 0 returns ``y0 = 0``
            (PyG's ``grad_iter=0``).
        scaled: eq. 13 scaling ``s(N)`` (default) or the plain energy of eq. 3.
        gtol: a set's update is skipped at a step where ``max_d |g_d| < gtol``.
        clip: if given, ``y`` is clipped to ``[-clip, clip]`` after every step.
        out_dim: aggregate size; needed for ``power_sum``; for the others optional, and when
            given ``x``'s width is checked against the parameters with it (the residual
            potential's parameters alone fix only ``dim + out_dim``).
        grad_mode: ``unrolled``, ``implicit`` or ``truncated``: how backends differentiate;
            the values are the same in every mode (the reference computes values only).
        truncate_steps: with ``grad_mode='truncated'``, the number of last steps to
            back-propagate through.
        return_info: also return :class:`EAInfo`.

    Returns:
        ``y [num_sets, out_dim]`` (dtype of ``x``), and :class:`EAInfo` if ``return_info``.

    Invariant to permuting the elements of a set, to padding, and to the other sets in the
    batch (nothing is averaged over the batch). Empty sets give ``y = 0``.

    Checked before any arithmetic, on every backend: the layout of ``x`` and its values
    (finite, index range), the whole ``params`` mapping (names, shapes, float dtypes, finite
    scalars ``step_size_raw`` / ``momentum_raw`` / ``reg_weight_raw``) and ``x``'s width
    against it. A descent that diverges is not an error: ``EAInfo.diverged`` flags its sets.

    Notes:
        The potential's output is the mean of squares over the last layer (Listing 1; the text
        says sum). ``grad_max_norm`` is that of the last gradient the solver computed, at the
        look-ahead point of step T, as in Listing 2, so no extra evaluation is made. The
        auxiliary loss sums squares over dimensions and averages over steps (eq. 5; Listing 2
        averages over dimensions and sums over steps).
    """
    op = "equilibrium_aggregation"
    seg = as_segments(op, x, mask, index, ptr, num_sets)
    num_steps, truncate_steps = check_solver_args(op, num_steps, gtol, clip, grad_mode,
                                                  truncate_steps)
    natural = check_ea_args(op, params, seg, potential, out_dim=out_dim, solver=True)
    check_ea_scalars(op, {k: np.isfinite(params[k]).all() for k in EA_SCALARS if k in params})
    if natural is None:
        if out_dim is None:
            V.fail(op, "out_dim", "is None", "the aggregate size for the power_sum potential")
        out_dim = V.check_positive_int(op, "out_dim", out_dim)
        if (need := potential_out_dim_ok(potential, seg.x.shape[1], out_dim)) is not None:
            V.fail(op, "out_dim", f"is {out_dim}", need)
    elif out_dim is not None and out_dim != natural:
        V.fail(op, "out_dim", f"is {out_dim}", f"None or {natural} (set by the parameters)")
    out_dim = natural or out_dim

    dtype = seg.x.dtype
    sizes, scale, lam = _energy_parts(params, seg, scaled)
    alpha = nn.softplus(np.asarray(params["step_size_raw"], dtype))
    mu = nn.sigmoid(np.asarray(params["momentum_raw"], dtype)).astype(dtype)

    y = np.zeros((seg.num_sets, out_dim), dtype)
    v = np.zeros_like(y)
    aux = np.zeros(seg.num_sets, dtype)
    active_steps = np.zeros(seg.num_sets, np.int64)
    g_max = np.zeros(seg.num_sets, dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is flagged in EAInfo
        for _ in range(num_steps):
            g = _energy_grad(params, seg, y + mu * v, sizes, scale, lam, potential)
            g_max = np.abs(g).max(-1) if out_dim else np.zeros(seg.num_sets, dtype)
            active = g_max >= gtol
            v = mu * v - alpha * g
            y = y + active[:, None] * v
            if clip is not None:
                y = np.clip(y, -clip, clip)
            aux += (g**2).sum(-1)
            active_steps += active
    y = y.astype(dtype)
    if not return_info:
        return y
    return y, EAInfo((aux / max(num_steps, 1)).astype(dtype), g_max.astype(dtype), active_steps,
                     ~np.isfinite(y).all(-1))
