"""Potentials ``F(x, y)`` of Equilibrium Aggregation and their analytic ``grad_y``, in PyTorch.

Same contract as :mod:`setwise.reference.potentials`. The residual potential is evaluated by
:class:`ResidualPotential`, which splits every linear map of ``concat(x, y)`` (DESIGN.md
section 3): ``concat(x, y) @ W = x @ W_x + (y @ W_y)[set]``, so the x-part is computed once
per call and the y-part once per set; it also folds the linear residual stream into the
tanh branches and the output. Its ``grad_y`` is back-propagated by hand (first order for
autograd, so an unrolled loop compiles) and summed over each set before the small matmul
with ``W_y^T``.

A user-defined potential is any callable ``F(params, x, y) -> [num_elements]``; the backend
then differentiates it with autograd.
"""

from __future__ import annotations

import functools

import torch

from setwise.reference import potentials as ref_pot
from setwise.reference import validation as V
from setwise.reference.potentials import LAYER_NORM_EPS, POTENTIALS
from setwise.torch_backend.nn import as_params, as_tensor, init_params
from setwise.torch_backend.segments import Segments, gather, set_sum

__all__ = ["POTENTIALS", "ResidualPotential", "init_potential", "potential_grad_y",
           "potential_value"]


def init_potential(rng, in_dim, out_dim, *, potential="residual", hidden=(256, 128, 32),
                   dtype="float32"):
    """:func:`setwise.reference.init_potential`, as tensors (``dtype`` may be a torch dtype)."""
    return init_params(ref_pot.init_potential, rng, in_dim, out_dim, potential=potential,
                       hidden=hidden, dtype=dtype)


class ResidualPotential:
    """Listing 1's residual tanh/LayerNorm MLP, bound to one batch of elements.

    The residual stream is linear between the tanh branches, so it is folded away: each hidden
    pre-activation ``a_t`` and the output are linear in the input ``z0 = concat(x, y)`` and in
    the earlier branch outputs ``h_j``,

    .. math:: a_t = z_0 R_{0 \\to t} + \\sum_{j < t} h_j R_{j+1 \\to t} + c_t, \\qquad
              R_{k \\to t} = S_k R_{k+1 \\to t},

    with ``S_k`` the residual projection of layer ``k`` (or the identity) and, for the output,
    ``R_{L \\to out} = S_L + W_L`` (the last layer has no activation). The input rows split:
    the ``x`` rows are applied once per call, the ``y`` rows once per set, then gathered. With a
    single hidden layer narrower than twice the output, ``grad_y`` uses the Gram matrix
    ``R R^T`` and never forms the output.

    Args:
        params: the potential's parameters (tensors of one dtype and device).
        x: ``[E, dim]`` elements.
        seg: the batch's :class:`Segments` when ``y`` is per set, ``None`` when per element.
        weight: ``[E]`` element weights (padding 0), or ``None``.
    """

    def __init__(self, params, x, seg: Segments | None = None, weight=None):
        depth = ref_pot.residual_depth(params)
        self.dim, self.seg, self.weight, self.nh = x.shape[1], seg, weight, depth - 1
        w = [params[f"potential_{i}_w"] for i in range(depth)]
        b = [params[f"potential_{i}_b"] for i in range(depth)]
        skip = [(params[f"potential_{i}_proj_w"], params[f"potential_{i}_proj_b"])
                if f"potential_{i}_proj_w" in params else None for i in range(depth)]
        self.ln = [(params[f"potential_{i}_ln_scale"], params[f"potential_{i}_ln_offset"])
                   for i in range(self.nh)]
        eye = torch.eye(w[-1].shape[0], dtype=x.dtype, device=x.device)
        self.last = w[-1] + (skip[-1][0] if skip[-1] else eye)
        mats = w[:-1] + [self.last]
        biases = b[:-1] + [b[-1] + skip[-1][1] if skip[-1] else b[-1]]
        # reach[k][t] = R_{k -> t}: how the residual stream entering layer k reaches target t
        self.reach = [[None] * (self.nh + 1) for _ in range(self.nh + 1)]
        for t in range(self.nh + 1):
            r = mats[t]
            self.reach[t][t] = r
            for k in reversed(range(t)):
                if skip[k] is not None:
                    biases[t] = biases[t] + skip[k][1] @ r
                    r = skip[k][0] @ r
                self.reach[k][t] = r
        self.sizes = [m.shape[1] for m in mats]
        self.out_dim = self.sizes[-1]
        self.gram = seg is not None and self.nh == 1 and self.sizes[0] < 2 * self.out_dim
        targets = range(self.nh if self.gram else self.nh + 1)
        self.x_parts = [torch.addmm(biases[t], x, self.reach[0][t][:self.dim]) for t in targets]
        self.in_y = torch.cat([self.reach[0][t][self.dim:] for t in targets], 1)
        if self.gram:
            self._init_gram(torch.addmm(biases[1], x, self.reach[0][1][:self.dim]))

    def _init_gram(self, x_out):
        """Per call: ``G = (2/K) A A^T``, the x-part of ``dF/dh_0`` and of each set's output."""
        k = 2.0 / self.out_dim
        self.gram_mat = k * (self.last @ self.last.T)
        self.x_out = x_out
        self.gram_x = k * (x_out @ self.last.T)
        self.out_y = self.reach[0][1][self.dim:]
        self.in_y = torch.cat([self.in_y, k * (self.out_y @ self.last.T)], 1)
        wx = x_out if self.weight is None else self.weight[:, None] * x_out
        self.out_x_sum = set_sum(wx, self.seg)
        self.set_sizes = set_sum(x_out.new_ones(x_out.shape[0]) if self.weight is None
                                 else self.weight, self.seg)

    def _gather(self, t):
        return t if self.seg is None else gather(t, self.seg)

    def _total(self, t):
        return t if self.seg is None else set_sum(t, self.seg)

    def _weighted(self, t, scale=1.0):
        return t * (scale if self.weight is None else scale * self.weight[:, None])

    def _forward(self, y):
        """Pre-activations of every target (the output last, unless Gram) and layer caches."""
        ya = (y @ self.in_y).split(self.sizes[:len(self.x_parts)] + [self.sizes[0]] * self.gram,
                                   1)
        pre = [xp + self._gather(yp) for xp, yp in zip(self.x_parts, ya)]
        caches = []
        for t in range(self.nh):
            a = pre[t]
            n, mean, rstd = torch.native_layer_norm(a, [a.shape[1]], *self.ln[t],
                                                    LAYER_NORM_EPS)
            # torch's variance of huge finite rows (|a| ~ 1e30 in float32) is NaN where the
            # reference's overflows to Inf (rstd 0, the row normalises to the offset)
            lost = torch.isnan(rstd) & torch.isfinite(a).all(-1, keepdim=True)
            rstd = torch.where(lost, 0, rstd)
            n = torch.where(lost, self.ln[t][1], n)
            h = torch.tanh(n)
            caches.append((a, mean, rstd, h))
            for u in range(t + 1, len(pre)):
                pre[u] = torch.addmm(pre[u], h, self.reach[t + 1][u])
        return pre, caches, ya

    def value(self, y):
        """``F = mean(out^2)`` per element, ``[E]``."""
        pre, caches, _ = self._forward(y)
        if self.gram:
            out = torch.addmm(self.x_out + self._gather(y @ self.out_y), caches[0][3], self.last)
        else:
            out = pre[-1]
        return out.square().mean(-1)

    def grad_y(self, y):
        """``sum_{i in s} weight_i grad_y F(x_i, y_s)`` per set (per element if no ``seg``).

        Back-propagated by hand through the folded network, so that autograd sees first-order
        ops only. ``d[t]`` is ``dF/da_t`` of hidden target ``t``, ``d[-1]`` that of the output.
        """
        pre, caches, ya = self._forward(y)
        d = [None] * (self.nh + 1)
        if self.gram:
            gram_dh, total = self._gram_grads(y, caches[0][3], ya[-1])
        else:
            d[-1] = self._weighted(pre[-1], 2.0 / self.out_dim)
            total = self._total(d[-1]) @ self.reach[0][-1][self.dim:].T
        for t in reversed(range(self.nh)):
            dh = gram_dh if self.gram else self._branch_grad(d, t)
            a, mean, rstd, h = caches[t]
            dn = torch.ops.aten.tanh_backward(dh, h)
            d[t] = torch.ops.aten.native_layer_norm_backward(
                dn, a, [a.shape[1]], mean, rstd, *self.ln[t], [True, False, False])[0]
            d[t] = torch.where(rstd == 0, 0, d[t])  # rows whose variance overflowed
            total = torch.addmm(total, self._total(d[t]), self.reach[0][t][self.dim:].T)
        return total

    def _branch_grad(self, d, t):
        """``dF/dh_t = sum_{u > t} d[u] R_{t+1 -> u}^T``."""
        dh = d[t + 1] @ self.reach[t + 1][t + 1].T
        for u in range(t + 2, self.nh + 1):
            dh = torch.addmm(dh, d[u], self.reach[t + 1][u].T)
        return dh

    def _gram_grads(self, y, h0, y_gram):
        """Single hidden layer: ``dF/dh_0 = (2/K) out A^T`` through ``G = (2/K) A A^T``, and the
        output's share of ``grad_y`` from each set's summed output (no ``out`` is formed)."""
        dh = self._weighted(torch.addmm(self.gram_x + self._gather(y_gram), h0, self.gram_mat))
        out_sum = torch.addmm(self.out_x_sum + self.set_sizes[:, None] * (y @ self.out_y),
                              self._total(self._weighted(h0)), self.last)
        return dh, (2.0 / self.out_dim) * out_sum @ self.out_y.T


def attention_weight(params, x):
    return torch.exp(x @ params["potential_query"])


def _power_terms(x, degree):
    k = torch.arange(1, degree + 1, dtype=x.dtype, device=x.device)
    return (x[..., None] ** k).reshape(x.shape[0], -1)


def named_value(params, x, y, set_size, potential):
    """``F(x_i, y_i)`` for a named potential, element-wise tensors."""
    if potential == "residual":
        return ResidualPotential(params, x).value(y)
    if potential == "quadratic":
        return (x - y).square().sum(-1)
    if potential == "absolute":
        return (x - y).abs().sum(-1)
    if potential == "hinge":
        return torch.relu(x - y).sum(-1)
    if potential == "linear":
        return -(x * y).sum(-1)
    if potential == "attention":
        w = attention_weight(params, x)
        return w * (x - y[:, :-1]).square().sum(-1) + (y[:, -1] - w).square()
    n = set_size.to(x.dtype)[:, None]
    return (y / n - _power_terms(x, y.shape[-1] // x.shape[-1])).square().sum(-1)


def named_grad_y(params, x, y, set_size, potential):
    """``grad_y F(x_i, y_i)`` for a named potential other than ``residual``, element-wise."""
    if potential == "quadratic":
        return 2 * (y - x)
    if potential == "absolute":
        return torch.sign(y - x)
    if potential == "hinge":
        return -(x > y).to(x.dtype)
    if potential == "linear":
        return -x.expand_as(y)
    if potential == "attention":
        w = attention_weight(params, x)[:, None]
        return torch.cat([2 * w * (y[:, :-1] - x), 2 * (y[:, -1:] - w)], -1)
    n = set_size.to(x.dtype)[:, None]
    return 2 / n * (y / n - _power_terms(x, y.shape[-1] // x.shape[-1]))


def autograd_grad_y(total_fn, y, create_graph: bool):
    """``d total_fn(y) / d y`` by autograd, keeping a graph only when ``create_graph``."""
    with torch.enable_grad():
        leaf = y if y.requires_grad else y.detach().clone().requires_grad_()
        (g,) = torch.autograd.grad(total_fn(leaf), leaf, create_graph=create_graph)
    return g


def inference_safe(fn):
    """Let ``fn(params, x, ...)`` take a callable ``potential`` under ``torch.inference_mode``.

    Autograd (which differentiates a callable potential) refuses inference tensors, so such a
    call re-runs under ``torch.no_grad()`` outside inference mode, on clones of its inputs.
    """

    @functools.wraps(fn)
    def wrapper(params, x, *args, **kwargs):
        if callable(kwargs.get("potential")) and torch.is_inference_mode_enabled():
            with torch.inference_mode(False), torch.no_grad():
                params = {k: as_tensor(v).clone() for k, v in params.items()}
                return fn(params, as_tensor(x).clone(), *args, **kwargs)
        return fn(params, x, *args, **kwargs)

    return wrapper


def needs_graph(*tensors) -> bool:
    """Whether autograd is recording and any of ``tensors`` (or mapping values) needs it."""
    if not torch.is_grad_enabled():
        return False
    flat = [t for a in tensors for t in (a.values() if isinstance(a, dict) else [a])]
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in flat)


def _elementwise_args(op, params, x, y, set_size, potential):
    if not callable(potential):
        V.check_choice(op, "potential", potential, POTENTIALS)
    x = as_tensor(x)
    y = as_tensor(y, x, x.dtype)
    V.check_float(op, "x", x.dtype)
    V.check_rank(op, "x", x.shape, (2,), "x [num_elements, dim]")
    V.check_rank(op, "y", y.shape, (2,), "y [num_elements, out_dim]")
    if y.shape[0] != x.shape[0]:
        V.fail(op, "y", f"has shape {tuple(y.shape)}", f"{x.shape[0]} rows to match x")
    if potential == "power_sum":
        if set_size is None:
            V.fail(op, "set_size", "is None", "[num_elements] set sizes for power_sum")
        set_size = as_tensor(set_size, x)
    return as_params(params, x), x, y, set_size


def potential_value(params, x, y, set_size=None, *, potential="residual"):
    """``F(x_i, y_i)`` for each element: ``x [E, dim]``, ``y [E, out_dim]`` -> ``[E]``.

    See :func:`setwise.reference.potential_value`; ``potential`` may also be a callable
    ``F(params, x, y) -> [E]``.
    """
    params, x, y, set_size = _elementwise_args("potential_value", params, x, y, set_size,
                                               potential)
    if callable(potential):
        return potential(params, x, y)
    return named_value(params, x, y, set_size, potential)


@inference_safe
def potential_grad_y(params, x, y, set_size=None, *, potential="residual"):
    """``grad_y F(x_i, y_i)`` for each element: ``[E, out_dim]``.

    Analytic for the named potentials (see :func:`setwise.reference.potential_grad_y`),
    autograd for a callable potential.
    """
    params, x, y, set_size = _elementwise_args("potential_grad_y", params, x, y, set_size,
                                               potential)
    if callable(potential):
        return autograd_grad_y(lambda yy: potential(params, x, yy).sum(), y,
                               needs_graph(params, x, y))
    if potential == "residual":
        return ResidualPotential(params, x).grad_y(y)
    return named_grad_y(params, x, y, set_size, potential)
