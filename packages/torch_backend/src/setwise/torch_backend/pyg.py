"""PyTorch Geometric aggregations backed by setwise (needs ``torch_geometric``).

Each class is a ``torch_geometric.nn.aggr.Aggregation``: use it as a global readout
(``aggr(x, batch)`` / ``aggr(x, ptr=ptr)``) or as the ``aggr=`` of a ``MessagePassing`` layer
(local aggregation over each node's incoming messages). ``index`` need not be sorted;
``dim_size`` adds trailing empty sets, which give finite outputs (0 for sum, mean, max,
attention and EA). Parameters are registered under the shared flat names, so
``state_dict()`` is the setwise parameter mapping.

Unlike ``torch_geometric.nn.aggr.EquilibriumAggregation``, whose regulariser is averaged over
the batch, a set's output here never depends on the other sets in the batch.

>>> import torch
>>> aggr = EquilibriumAggregation(4, 3, hidden=(8, 4), num_steps=3, rng=0)
>>> tuple(aggr(torch.randn(5, 4), torch.tensor([0, 0, 1, 1, 1])).shape)
(2, 3)
"""

from __future__ import annotations

import torch
from torch_geometric.nn.aggr import Aggregation

from setwise.torch_backend import equilibrium as EA
from setwise.torch_backend import pooling as P
from setwise.torch_backend.modules import register_params, resolve_seed

__all__ = ["AttentionAggregation", "EquilibriumAggregation", "MaxAggregation",
           "MeanAggregation", "PNAAggregation", "SumAggregation"]


class SetwiseAggregation(Aggregation):
    """Base class: maps PyG's ``(x, index, ptr, dim_size)`` to setwise's segment arguments."""

    def _sets(self, x, index, ptr, dim_size, dim):
        self.assert_two_dimensional_input(x, dim)
        if index is not None:
            return dict(index=index, num_sets=dim_size)
        return dict(ptr=ptr, num_sets=dim_size)

    @property
    def params(self) -> dict:
        return dict(self._parameters)

    def _reinit(self, fresh):
        with torch.no_grad():
            for name, value in fresh.items():
                getattr(self, name).copy_(value)


class _Pool(SetwiseAggregation):
    _fn = None

    def forward(self, x, index=None, ptr=None, dim_size=None, dim=-2, max_num_elements=None):
        return type(self)._fn(x, **self._sets(x, index, ptr, dim_size, dim))


class SumAggregation(_Pool):
    """:func:`setwise.torch_backend.sum_pool`."""

    _fn = staticmethod(P.sum_pool)


class MeanAggregation(_Pool):
    """:func:`setwise.torch_backend.mean_pool` (0 for an empty set)."""

    _fn = staticmethod(P.mean_pool)


class MaxAggregation(_Pool):
    """:func:`setwise.torch_backend.max_pool` (0 for an empty set)."""

    _fn = staticmethod(P.max_pool)


class EquilibriumAggregation(SetwiseAggregation):
    """Equilibrium Aggregation (:func:`setwise.torch_backend.equilibrium_aggregation`).

    Args:
        in_channels, out_channels: element and aggregate sizes.
        hidden: residual-potential layer sizes (paper: ``[2h, h, 32]``).
        num_steps: inner steps ``T``. Other keywords as in
            :func:`setwise.torch_backend.init_equilibrium_aggregation` and
            :func:`setwise.torch_backend.equilibrium_aggregation`.
    """

    def __init__(self, in_channels, out_channels, *, hidden=(256, 128, 32), num_steps=5,
                 potential="residual", step_size=0.125, momentum=0.9, reg_weight=None,
                 scaled=True, gtol=1e-3, clip=None, grad_mode="unrolled", truncate_steps=None,
                 rng=None, dtype="float32"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self._init_args = dict(potential=potential, hidden=hidden, step_size=step_size,
                               momentum=momentum, reg_weight=reg_weight, dtype=dtype)
        self.solve = dict(potential=potential, num_steps=num_steps, scaled=scaled, gtol=gtol,
                          clip=clip, grad_mode=grad_mode, truncate_steps=truncate_steps,
                          out_dim=out_channels if potential == "power_sum" else None)
        register_params(self, self._init(rng))

    def _init(self, rng):
        return EA.init_equilibrium_aggregation(resolve_seed(rng), self.in_channels,
                                               self.out_channels, **self._init_args)

    def reset_parameters(self):
        self._reinit(self._init(None))

    def forward(self, x, index=None, ptr=None, dim_size=None, dim=-2, max_num_elements=None):
        return EA.equilibrium_aggregation(self.params, x, **self._sets(x, index, ptr, dim_size,
                                                                       dim), **self.solve)

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_steps={self.solve['num_steps']}, grad_mode={self.solve['grad_mode']!r})")


class AttentionAggregation(SetwiseAggregation):
    """Multi-head attention pooling with learned queries
    (:func:`setwise.torch_backend.attention_pool`)."""

    def __init__(self, in_channels, out_channels, *, num_heads=4, rng=None, dtype="float32"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self._init_args = dict(num_heads=num_heads, dtype=dtype)
        register_params(self, self._init(rng))

    def _init(self, rng):
        return P.init_attention_pool(resolve_seed(rng), self.in_channels, self.out_channels,
                                     **self._init_args)

    def reset_parameters(self):
        self._reinit(self._init(None))

    def forward(self, x, index=None, ptr=None, dim_size=None, dim=-2, max_num_elements=None):
        return P.attention_pool(self.params, x, **self._sets(x, index, ptr, dim_size, dim))


class PNAAggregation(SetwiseAggregation):
    """PNA as one aggregation with its output map (:func:`setwise.torch_backend.pna_pool`);
    ``delta`` is :func:`setwise.torch_backend.pna_delta` of the training sets' sizes."""

    def __init__(self, in_channels, out_channels, *, delta=1.0, rng=None, dtype="float32"):
        super().__init__()
        self.in_channels, self.out_channels, self.delta = in_channels, out_channels, delta
        self._dtype = dtype
        register_params(self, self._init(rng))

    def _init(self, rng):
        return P.init_pna_pool(resolve_seed(rng), self.in_channels, self.out_channels,
                               dtype=self._dtype)

    def reset_parameters(self):
        self._reinit(self._init(None))

    def forward(self, x, index=None, ptr=None, dim_size=None, dim=-2, max_num_elements=None):
        return P.pna_pool(self.params, x, **self._sets(x, index, ptr, dim_size, dim),
                          delta=self.delta)
