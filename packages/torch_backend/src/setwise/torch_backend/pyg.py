"""PyTorch Geometric aggregations backed by setwise (needs ``torch_geometric``).

Each class is a ``torch_geometric.nn.aggr.Aggregation``: use it as a global readout
(``aggr(x, batch)`` / ``aggr(x, ptr=ptr)``) or as the ``aggr=`` of a ``MessagePassing`` layer
(local aggregation over each node's incoming messages). ``index`` need not be sorted;
``dim_size`` adds trailing empty sets, which give finite outputs (0 for sum, mean, max,
attention and EA). Parameters are registered under the shared flat names, so
``state_dict()`` is the setwise parameter mapping.

As PyG's aggregations, they accept ``x [*, N, F]`` and aggregate over ``dim`` (default
``-2``; the features must be the last dimension): every leading index is a separate batch of
sets. ``dim_size`` smaller than ``index.max() + 1`` raises PyG's ``Encountered invalid
'dim_size'`` error. ``MaxAggregation`` gives the true max (NaN and Inf come out, only an empty
set gives 0), also with value checks off and under ``torch.compile``.

A module holding parameters refuses an input of another dtype (``TypeError``, as
``nn.Linear`` does: cast the module with ``.double()`` / ``.float()``, or the input); the
functional ops cast parameters to ``x``'s dtype instead.

TorchScript: every class here can be scripted (``torch.jit.script(aggr)``, alone or inside a
``MultiAggregation``); the scripted ``forward`` calls the setwise op back in Python
(``@torch.jit.ignore``), so a scripted module runs in a Python process but cannot be saved and
loaded without Python. For a Python-free graph use ``torch.export.export(aggr, (x, index),
{"dim_size": n})`` (value checks are skipped while exporting).

Unlike ``torch_geometric.nn.aggr.EquilibriumAggregation``, whose regulariser is averaged over
the batch, a set's output here never depends on the other sets in the batch.

>>> import torch
>>> aggr = EquilibriumAggregation(4, 3, hidden=(8, 4), num_steps=3, rng=0)
>>> tuple(aggr(torch.randn(5, 4), torch.tensor([0, 0, 1, 1, 1])).shape)
(2, 3)
>>> aggr
EquilibriumAggregation(4, 3, num_steps=3, grad_mode='unrolled')
"""


import math

import torch
from torch import Tensor
from torch_geometric.nn.aggr import Aggregation

from setwise.reference import validation as V
from setwise.torch_backend import equilibrium as EA
from setwise.torch_backend import pooling as P
from setwise.torch_backend.modules import check_input_dtype, register_params, resolve_seed
from setwise.torch_backend.segments import index_from_ptr

__all__ = ["AttentionAggregation", "EquilibriumAggregation", "MaxAggregation",
           "MeanAggregation", "PNAAggregation", "SumAggregation"]

_POOLS = {"sum": P.sum_pool, "mean": P.mean_pool, "max": P.max_pool}


class SetwiseAggregation(Aggregation):
    """Base class: maps PyG's ``(x, index, ptr, dim_size, dim)`` to setwise's segment
    arguments, for ``x [*, N, F]``.

    ``forward`` is TorchScript-compatible; the computation itself (:meth:`_aggregate`) is
    ``@torch.jit.ignore``: plain Python, reading only attributes TorchScript keeps.
    """

    __jit_unused_properties__ = ["params"]

    def forward(self, x: Tensor, index: Tensor | None = None, ptr: Tensor | None = None,
                dim_size: int | None = None, dim: int = -2,
                max_num_elements: int | None = None) -> Tensor:
        return self._aggregate(x, index, ptr, dim_size, dim)

    @torch.jit.ignore
    def _aggregate(self, x: Tensor, index: Tensor | None, ptr: Tensor | None,
                   dim_size: int | None, dim: int) -> Tensor:
        return _aggregate(self, x, index, ptr, dim_size, dim)

    @property
    def params(self) -> dict:
        return dict(self._parameters)

    def _reinit(self, fresh):
        with torch.no_grad():
            for name, value in fresh.items():
                getattr(self, name).copy_(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _aggregate(module, x, index, ptr, dim_size, dim):
    """``module``: the aggregation, or its TorchScript module (same attributes)."""
    op = f"{module.original_name if hasattr(module, 'original_name') else type(module).__name__}"
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"Encountered invalid dimension '{dim}' of source tensor with "
                         f"{x.dim()} dimensions")
    dim = dim % x.dim()
    if x.dim() < 2 or dim == x.dim() - 1:
        V.fail(op, "dim", f"is {dim} for x of shape {tuple(x.shape)}",
               "the element dimension of x [*, N, F] (not the last, feature dimension)")
    params = dict(module.named_parameters())
    if params:
        check_input_dtype(op, x, params)
    if ptr is not None:
        if dim_size is not None and dim_size != ptr.numel() - 1:
            raise ValueError(f"Encountered invalid 'dim_size' (got '{dim_size}' but expected "
                             f"'{ptr.numel() - 1}')")
        dim_size = ptr.numel() - 1
        index = index_from_ptr(ptr)
        if index.numel() != x.shape[dim]:
            V.fail(op, "ptr", f"ends at {index.numel()}", f"x.shape[dim] = {x.shape[dim]}")
    elif index is None:
        index = torch.zeros(x.shape[dim], dtype=torch.long, device=x.device)
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    dim_size = V.check_positive_int(op, "dim_size", dim_size, minimum=0)
    moved = x.movedim(dim, -2)
    lead = moved.shape[:-2]
    n, f = moved.shape[-2:]
    batches = math.prod(lead)
    flat = moved.reshape(batches * n, f)
    if batches != 1:
        index = (index.reshape(1, -1) + dim_size * torch.arange(
            batches, device=index.device).reshape(-1, 1)).reshape(-1)
    try:
        out = _call(module, params, flat, index, batches * dim_size)
    except ValueError as err:
        if "argument 'index' has values" in str(err) and index.numel() \
                and int(index.max()) >= batches * dim_size:
            top = int(index.max()) % dim_size if batches != 1 else int(index.max())
            raise ValueError(f"Encountered invalid 'dim_size' (got '{dim_size}' but expected "
                             f">= '{top + 1}')") from err
        raise
    return out.reshape(*lead, dim_size, out.shape[-1]).movedim(-2, dim)


def _call(module, params, x, index, num_sets):
    kind = module.kind
    if kind in _POOLS:
        return _POOLS[kind](x, index=index, num_sets=num_sets)
    if kind == "attention":
        return P.attention_pool(params, x, index=index, num_sets=num_sets)
    if kind == "pna":
        return P.pna_pool(params, x, index=index, num_sets=num_sets, delta=module.delta)
    return EA.equilibrium_aggregation(
        params, x, index=index, num_sets=num_sets, potential=module.potential,
        num_steps=module.num_steps, scaled=module.scaled, gtol=module.gtol, clip=module.clip,
        out_dim=module.out_channels, grad_mode=module.grad_mode,
        truncate_steps=module.truncate_steps)


class _Pool(SetwiseAggregation):
    kind = ""

    def __init__(self):
        super().__init__()
        self.kind = type(self).kind


class SumAggregation(_Pool):
    """:func:`setwise.torch_backend.sum_pool`."""

    kind = "sum"


class MeanAggregation(_Pool):
    """:func:`setwise.torch_backend.mean_pool` (0 for an empty set)."""

    kind = "mean"


class MaxAggregation(_Pool):
    """:func:`setwise.torch_backend.max_pool` (0 for an empty set; NaN / Inf propagate)."""

    kind = "max"


class EquilibriumAggregation(SetwiseAggregation):
    """Equilibrium Aggregation (:func:`setwise.torch_backend.equilibrium_aggregation`).

    Accepts PyG's constructor, ``EquilibriumAggregation(in_channels, out_channels, num_layers,
    grad_iter=5, lamb=0.1)``, and setwise's keywords:

    Args:
        in_channels, out_channels: element and aggregate sizes.
        num_layers: PyG's name for the residual potential's layer sizes (= ``hidden``).
        grad_iter: PyG's name for ``num_steps`` (0 returns ``y0 = 0``).
        lamb: PyG's initial raw regulariser weight: the weight is ``softplus(lamb)`` (=
            ``reg_weight=softplus(lamb)``).
        hidden: residual-potential layer sizes (paper: ``[2h, h, 32]``).
        num_steps: inner steps ``T``. Other keywords as in
            :func:`setwise.torch_backend.init_equilibrium_aggregation` and
            :func:`setwise.torch_backend.equilibrium_aggregation`.

    Notes:
        PyG's potential ends in one output unit; setwise's last ``hidden`` size is the width
        of Listing 1's mean-of-squares output, so ``num_layers=[10, 10]`` gives setwise's
        ``hidden=(10, 10)``, not PyG's network.
    """

    def __init__(self, in_channels, out_channels, num_layers=None, grad_iter=None, lamb=None,
                 *, hidden=(256, 128, 32), num_steps=5, potential="residual", step_size=0.125,
                 momentum=0.9, reg_weight=None, scaled=True, gtol=1e-3, clip=None,
                 grad_mode="unrolled", truncate_steps=None, rng=None, dtype="float32"):
        super().__init__()
        op = "EquilibriumAggregation"
        if num_layers is not None:
            hidden = tuple(int(h) for h in num_layers)
        if grad_iter is not None:
            num_steps = V.check_positive_int(op, "grad_iter", grad_iter, minimum=0)
        if lamb is not None:
            if reg_weight is not None:
                V.fail(op, "lamb", "was given with reg_weight", "one of lamb and reg_weight")
            reg_weight = float(torch.nn.functional.softplus(torch.tensor(float(lamb))))
        self.in_channels = V.check_positive_int(op, "in_channels", in_channels)
        self.out_channels = V.check_positive_int(op, "out_channels", out_channels)
        self.kind = "ea"
        self.hidden = tuple(hidden)
        self.step_size, self.momentum, self.reg_weight = step_size, momentum, reg_weight
        self.dtype_name = str(dtype).removeprefix("torch.")
        self.potential, self.num_steps, self.scaled = potential, num_steps, scaled
        self.gtol, self.clip, self.grad_mode = gtol, clip, grad_mode
        self.truncate_steps = truncate_steps
        EA.check_solver_args(op, num_steps, gtol, clip, grad_mode, truncate_steps)
        register_params(self, self._init(rng))

    def _init(self, rng):
        return EA.init_equilibrium_aggregation(
            resolve_seed(rng), self.in_channels, self.out_channels, potential=self.potential,
            hidden=self.hidden, step_size=self.step_size, momentum=self.momentum,
            reg_weight=self.reg_weight, dtype=self.dtype_name)

    def reset_parameters(self):
        self._reinit(self._init(None))

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_steps={self.num_steps}, grad_mode={self.grad_mode!r})")


class AttentionAggregation(SetwiseAggregation):
    """Multi-head attention pooling with learned queries
    (:func:`setwise.torch_backend.attention_pool`)."""

    def __init__(self, in_channels, out_channels, *, num_heads=4, rng=None, dtype="float32"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kind, self.num_heads = "attention", num_heads
        self.dtype_name = str(dtype).removeprefix("torch.")
        register_params(self, self._init(rng))

    def _init(self, rng):
        return P.init_attention_pool(resolve_seed(rng), self.in_channels, self.out_channels,
                                     num_heads=self.num_heads, dtype=self.dtype_name)

    def reset_parameters(self):
        self._reinit(self._init(None))

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_heads={self.num_heads})")


class PNAAggregation(SetwiseAggregation):
    """PNA as one aggregation with its output map (:func:`setwise.torch_backend.pna_pool`);
    ``delta`` is :func:`setwise.torch_backend.pna_delta` of the training sets' sizes."""

    def __init__(self, in_channels, out_channels, *, delta=1.0, rng=None, dtype="float32"):
        super().__init__()
        self.in_channels, self.out_channels, self.delta = in_channels, out_channels, float(delta)
        self.kind = "pna"
        self.dtype_name = str(dtype).removeprefix("torch.")
        register_params(self, self._init(rng))

    def _init(self, rng):
        return P.init_pna_pool(resolve_seed(rng), self.in_channels, self.out_channels,
                               dtype=self.dtype_name)

    def reset_parameters(self):
        self._reinit(self._init(None))

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"delta={self.delta})")
