"""Equilibrium Aggregation in PyTorch (paper 1; the math is :mod:`setwise.reference.equilibrium`).

The inner loop runs on all sets at once: every step is a handful of matmuls over all elements
(the residual potential's split first layer computes ``x @ W_x`` once per call and ``y @ W_y``
once per set) and one set sum; there is no Python loop over sets or elements.
``grad_y E`` is analytic for the named potentials, so the unrolled training step is first
order for autograd and compiles with ``torch.compile``; a callable potential
``F(params, x, y) -> [E]`` is differentiated with autograd instead.

Gradient modes (``grad_mode``):

- ``unrolled``: autograd through the ``T`` steps (the paper's choice).
- ``truncated``: the first ``T - K`` steps run without a graph; autograd through the last
  ``K = truncate_steps``.
- ``implicit``: the ``T`` steps run without a graph; the gradient is that of the fixed point
  ``grad_y E(y*) = 0`` (implicit function theorem at ``y* = y_T``):
  ``dL/dtheta = -(H^{-1} dL/dy*)^T d(grad_y E)/dtheta``, with the per-set Hessian ``H``
  applied through Hessian-vector products (dense batched solve for ``out_dim <= 16``,
  batched conjugate gradients above). Memory does not grow with ``T``.
"""

from __future__ import annotations

import numpy as np
import torch

from setwise.reference import equilibrium as ref_ea
from setwise.reference import validation as V
from setwise.reference.equilibrium import GRAD_MODES, SCALE_EPS, EAInfo, check_solver_args
from setwise.reference.potentials import potential_out_dim_ok
from setwise.torch_backend.nn import as_params, as_tensor, init_params
from setwise.torch_backend.potentials import (
    ResidualPotential,
    autograd_grad_y,
    inference_safe,
    named_grad_y,
    named_value,
    needs_graph,
)
from setwise.torch_backend.segments import Segments, as_segments, gather, set_sizes, set_sum

__all__ = ["GRAD_MODES", "EAInfo", "energy", "energy_grad_y", "energy_scale",
           "equilibrium_aggregation", "init_equilibrium_aggregation"]

DENSE_HESSIAN_MAX_DIM = 16


def init_equilibrium_aggregation(rng, in_dim, out_dim, *, potential="residual",
                                 hidden=(256, 128, 32), step_size=0.125, momentum=0.9,
                                 reg_weight=None, dtype="float32"):
    """:func:`setwise.reference.init_equilibrium_aggregation`, as tensors."""
    return init_params(ref_ea.init_equilibrium_aggregation, rng, in_dim, out_dim,
                       potential=potential, hidden=hidden, step_size=step_size,
                       momentum=momentum, reg_weight=reg_weight, dtype=dtype)


def energy_scale(set_size, scaled=True):
    """``s(N) = log2(N + 1) / (N + 1e-8)`` (eq. 13) or 1 (eq. 3, ``scaled=False``)."""
    set_size = as_tensor(set_size)
    if not scaled:
        return torch.ones_like(set_size)
    return torch.log2(set_size + 1) / (set_size + SCALE_EPS)


def softplus(t):
    return torch.logaddexp(t, torch.zeros_like(t))


class Energy:
    """``E(X_s, y_s)`` and ``grad_y E`` of every set of one batch.

    Everything that does not depend on ``y`` (set sizes, ``s(N)``, the regulariser weight, the
    x-part of the residual potential's first layer) is computed once, here.
    """

    def __init__(self, params, seg: Segments, potential, scaled):
        self.params, self.seg, self.potential = params, seg, potential
        self.sizes = set_sizes(seg)
        self.scale = energy_scale(self.sizes, scaled)
        raw = params.get("reg_weight_raw")
        self.lam = 0.0 if raw is None else softplus(raw)
        self.inputs = (params, seg.x)
        # power_sum divides by N: the padding rows of an empty dense set use 1 (weight 0 anyway)
        self.elem_sizes = (gather(self.sizes.clamp_min(1), seg) if potential == "power_sum"
                           else None)
        if potential == "residual":
            self.net = ResidualPotential(params, seg.x, seg, seg.weight if seg.padded else None)

    def _f(self, y):
        seg = self.seg
        if callable(self.potential):
            return self.potential(self.params, seg.x, gather(y, seg))
        if self.potential == "residual":
            return self.net.value(y)
        return named_value(self.params, seg.x, gather(y, seg), self.elem_sizes, self.potential)

    def value(self, y):
        """``[num_sets]``."""
        f = set_sum(self.seg.weight * self._f(y), self.seg)
        return self.scale * (self.lam * y.square().sum(-1) + f)

    def grad(self, y):
        """``grad_y E [num_sets, out_dim]``."""
        seg = self.seg
        if callable(self.potential):
            total = autograd_grad_y(lambda yy: (seg.weight * self._f(yy)).sum(), y,
                                    needs_graph(*self.inputs, y))
        elif self.potential == "residual":
            total = self.net.grad_y(y)
        else:
            g = named_grad_y(self.params, seg.x, gather(y, seg), self.elem_sizes, self.potential)
            total = set_sum(seg.weight[:, None] * g, seg)
        return self.scale[:, None] * (2 * self.lam * y + total)


def _scalar_checks(params):
    """Deferred finiteness checks of EA's scalar parameters (folded into the op's one sync)."""
    checks = []
    for k in ref_ea.EA_SCALARS:
        value = params.get(k)
        if isinstance(value, torch.Tensor):
            checks.append((f"finite:params['{k}']", torch.isfinite(value).all()))
        elif value is not None:
            ref_ea.check_ea_scalars("equilibrium_aggregation", {k: np.isfinite(value).all()})
    return checks


def _setup(op, params, x, mask, index, ptr, num_sets, potential, y=None, out_dim=None,
           solver=False):
    V.check_params(op, params, {})
    seg = as_segments(op, x, mask, index, ptr, num_sets, extra=_scalar_checks(params))
    if y is not None:
        y = as_tensor(y, seg.x, seg.x.dtype)
    natural = None
    if not callable(potential):  # checked before the parameters are cast to x's dtype
        natural = ref_ea.check_ea_args(op, params, seg, potential, y, out_dim, solver)
    params = as_params(params, seg.x)
    if callable(potential):
        if y is not None:
            V.check_rank(op, "y", y.shape, (2,), "y [num_sets, out_dim]")
            if y.shape[0] != seg.num_sets:
                V.fail(op, "y", f"has shape {tuple(y.shape)}",
                       f"[num_sets, out_dim] with num_sets = {seg.num_sets}")
    return seg, params, y, natural


def energy(params, x, y, mask=None, *, index=None, ptr=None, num_sets=None,
           potential="residual", scaled=True):
    """The energy of each set at ``y [num_sets, out_dim]``: ``[num_sets]``.

    See :func:`setwise.reference.energy`; ``potential`` may also be a callable.
    """
    seg, params, y, _ = _setup("energy", params, x, mask, index, ptr, num_sets, potential, y)
    return Energy(params, seg, potential, scaled).value(y)


@inference_safe
def energy_grad_y(params, x, y, mask=None, *, index=None, ptr=None, num_sets=None,
                  potential="residual", scaled=True):
    """``grad_y E(X_s, y_s)`` for each set: ``[num_sets, out_dim]``.

    Analytic for the named potentials (differentiable, first order for autograd); autograd for
    a callable potential. See :func:`setwise.reference.energy_grad_y`.
    """
    seg, params, y, _ = _setup("energy_grad_y", params, x, mask, index, ptr, num_sets,
                               potential, y)
    return Energy(params, seg, potential, scaled).grad(y)


def _out_dim(op, seg, potential, natural, out_dim):
    if natural is not None:
        if out_dim is not None and out_dim != natural:
            V.fail(op, "out_dim", f"is {out_dim}", f"None or {natural} (set by the parameters)")
        return natural
    what = "a callable" if callable(potential) else "the power_sum"
    if out_dim is None:
        V.fail(op, "out_dim", "is None", f"the aggregate size for {what} potential")
    out_dim = V.check_positive_int(op, "out_dim", out_dim)
    if not callable(potential):
        if (need := potential_out_dim_ok(potential, seg.x.shape[1], out_dim)) is not None:
            V.fail(op, "out_dim", f"is {out_dim}", need)
    return out_dim


def _steps(energy_, state, num_steps, alpha, mu, gtol, clip):
    """``num_steps`` Nesterov steps (Listing 2) from ``(y, v, aux, active_steps, g_max)``."""
    y, v, aux, count, g_max = state
    for _ in range(num_steps):
        g = energy_.grad(y + mu * v)
        g_max = g.abs().amax(-1)
        active = g_max >= gtol
        v = mu * v - alpha * g
        y = y + active[:, None].to(y.dtype) * v
        if clip is not None:
            y = y.clamp(-clip, clip)
        aux = aux + g.square().sum(-1)
        count = count + active.to(count.dtype)
    return y, v, aux, count, g_max


@inference_safe
def equilibrium_aggregation(params, x, mask=None, *, index=None, ptr=None, num_sets=None,
                            potential="residual", num_steps=5, scaled=True, gtol=1e-3,
                            clip=None, out_dim=None, grad_mode="unrolled", truncate_steps=None,
                            return_info=False):
    """Equilibrium Aggregation: each set becomes the minimiser of its energy.

    Same arguments, values and :class:`EAInfo` as :func:`setwise.reference.
    equilibrium_aggregation`; ``x`` is a tensor on any device (float32, float64; bfloat16
    computes in bfloat16), ``params`` tensors or NumPy arrays (cast to ``x``'s dtype and
    device). ``potential`` may also be a callable ``F(params, x, y) -> [num_elements]``
    (``out_dim`` required), differentiated with autograd.

    Gradient modes (see the module docstring): ``unrolled`` (default), ``truncated``
    (through the last ``truncate_steps`` steps), ``implicit`` (implicit function theorem at
    ``y_T``). Under ``torch.no_grad()`` / ``torch.inference_mode()`` no graph is built.

    Notes:
        In ``implicit`` mode ``step_size_raw`` and ``momentum_raw`` get no gradient (the fixed
        point does not depend on them), the :class:`EAInfo` diagnostics carry no gradient, and
        the Hessian of each non-empty set must be non-singular (not so for the piecewise-linear
        ``absolute`` / ``hinge`` potentials). In ``truncated`` mode the auxiliary loss carries
        gradient only through the last ``truncate_steps`` steps.
    """
    op = "equilibrium_aggregation"
    num_steps, truncate_steps = check_solver_args(op, num_steps, gtol, clip, grad_mode,
                                                  truncate_steps)
    seg, params, _, natural = _setup(op, params, x, mask, index, ptr, num_sets, potential,
                                     out_dim=None if callable(potential) else out_dim,
                                     solver=True)
    if callable(potential):
        V.check_param(op, params, "step_size_raw", ())
        V.check_param(op, params, "momentum_raw", ())
    out_dim = _out_dim(op, seg, potential, natural, out_dim)

    energy_ = Energy(params, seg, potential, scaled)
    alpha = softplus(params["step_size_raw"])
    mu = torch.sigmoid(params["momentum_raw"])
    y = seg.x.new_zeros((seg.num_sets, out_dim))
    state = (y, y, seg.x.new_zeros(seg.num_sets),
             torch.zeros(seg.num_sets, dtype=torch.int64, device=y.device),
             seg.x.new_zeros(seg.num_sets))
    free = {"unrolled": 0, "truncated": num_steps - (truncate_steps or 0),
            "implicit": num_steps}[grad_mode]
    with torch.no_grad():
        state = _steps(energy_, state, free, alpha, mu, gtol, clip)
    state = _steps(energy_, state, num_steps - free, alpha, mu, gtol, clip)
    y, _, aux, count, g_max = state
    if grad_mode == "implicit" and torch.is_grad_enabled():
        y = _implicit(energy_, params, seg, potential, scaled, y)
    if not return_info:
        return y
    return y, EAInfo(aux / max(num_steps, 1), g_max, count, ~torch.isfinite(y).all(-1))


class _ImplicitGrad(torch.autograd.Function):
    """Value ``y*``; gradient ``-H^{-1} u`` to ``z = grad_y E(y*, theta)``."""

    @staticmethod
    def forward(ctx, y, z, solve):
        ctx.solve = solve
        return y.clone()

    @staticmethod
    def backward(ctx, u):
        return None, -ctx.solve(u), None


def _implicit(energy_, params, seg, potential, scaled, y):
    y = y.detach()
    z = energy_.grad(y)
    if not z.requires_grad:
        return y

    def solve(u):
        fixed = {k: v.detach() for k, v in params.items()}
        frozen = Energy(fixed, seg._replace(x=seg.x.detach()), potential, scaled)
        with torch.enable_grad():
            yq = y.clone().requires_grad_()
            g = frozen.grad(yq)
            empty = (frozen.sizes == 0).to(y.dtype)[:, None]

            def hvp(v):
                (hv,) = torch.autograd.grad(g, yq, v, retain_graph=True)
                return hv + empty * v

            if y.shape[1] <= DENSE_HESSIAN_MAX_DIM:
                return _dense_solve(hvp, u)
            return _cg_solve(hvp, u)

    return _ImplicitGrad.apply(y, z, solve)


def _dense_solve(hvp, u):
    """Solve ``H_s w_s = u_s`` for every set, ``H`` built from ``out_dim`` batched HVPs."""
    eye = torch.eye(u.shape[1], dtype=u.dtype, device=u.device)
    cols = [hvp(eye[k].expand_as(u)) for k in range(u.shape[1])]
    hess = torch.stack(cols, -1)
    return torch.linalg.solve(hess, u)


def _cg_solve(hvp, u):
    """Batched conjugate gradients, one independent system per set (per-set step sizes)."""
    tol = torch.finfo(u.dtype).eps ** 0.75
    w = torch.zeros_like(u)
    r = u.clone()
    p = r.clone()
    rs = r.square().sum(-1, keepdim=True)
    stop = (tol**2) * rs.clamp_min(torch.finfo(u.dtype).tiny)
    for _ in range(2 * u.shape[1]):
        hp = hvp(p)
        curv = (p * hp).sum(-1, keepdim=True)
        step = torch.where(curv != 0, rs / curv, 0)
        w = w + step * p
        r = r - step * hp
        rs_new = r.square().sum(-1, keepdim=True)
        if bool((rs_new <= stop).all()):
            break
        p = r + torch.where(rs > 0, rs_new / rs, 0) * p
        rs = rs_new
    return w

