"""``torch.nn.Module`` wrappers: one per operator, holding the shared parameter mapping.

Each module registers its parameters under exactly the mapping's flat names, so
``module.state_dict()`` *is* the mapping (``init_*`` or another backend's, converted) and
``module.load_state_dict(mapping)`` loads one. ``forward`` calls the functional op.

>>> import torch
>>> ea = EquilibriumAggregation(3, 2, hidden=(8, 4), num_steps=3, rng=0)
>>> sorted(ea.state_dict())[:3]
['momentum_raw', 'potential_0_b', 'potential_0_ln_offset']
>>> tuple(ea(torch.randn(2, 4, 3)).shape)
(2, 2)
"""

from __future__ import annotations

import torch
from torch import nn

from setwise.torch_backend import creation as C
from setwise.torch_backend import equilibrium as EA
from setwise.torch_backend import pooling as P
from setwise.torch_backend import top_n as T
from setwise.torch_backend.nn import as_tensor


def resolve_seed(rng):
    """``rng`` as given, or a seed drawn from torch's global generator (``torch.manual_seed``)."""
    return int(torch.randint(2**31 - 1, ())) if rng is None else rng


def check_input_dtype(op: str, x, params):
    """A module's parameters do not follow its input's dtype: ``x`` of another floating dtype
    is refused (``TypeError``), as ``nn.Linear`` does; cast the module (``.double()``) or the
    input. (The functional ops cast the parameters to ``x``'s dtype instead.)"""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return
    dtypes = {p.dtype for p in params.values()}
    if dtypes and x.dtype not in dtypes:
        have = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
        raise TypeError(f"{op}: argument 'x' has dtype {str(x.dtype).removeprefix('torch.')}; "
                        f"expected the module's parameter dtype {have} (cast the module, e.g. "
                        "module.double(), or the input)")


def register_params(module: nn.Module, params):
    """Register every array of a flat mapping as an ``nn.Parameter`` of ``module``, by name."""
    for name, value in (params or {}).items():
        module.register_parameter(name, nn.Parameter(as_tensor(value).detach().clone()))


class ParamModule(nn.Module):
    """A module whose parameters are a flat ``name -> tensor`` mapping, registered by name."""

    def __init__(self, params=None):
        super().__init__()
        register_params(self, params)

    @property
    def params(self) -> dict:
        """The parameter mapping (the module's own ``nn.Parameter`` objects)."""
        return dict(self._parameters)

    @classmethod
    def from_params(cls, params, **config):
        """A module holding ``params`` (any backend's mapping) instead of fresh ones."""
        module = cls.__new__(cls)
        ParamModule.__init__(module, params)
        module._configure(**config)
        return module

    def _configure(self, **config):
        for key, value in config.items():
            setattr(self, key, value)


class EquilibriumAggregation(ParamModule):
    """Equilibrium Aggregation (:func:`setwise.torch_backend.equilibrium_aggregation`).

    Construction takes :func:`init_equilibrium_aggregation`'s arguments and the solver
    configuration; ``forward(x, mask=None, *, index=None, ptr=None, num_sets=None,
    return_info=False)``. ``x``'s width is checked against ``in_dim`` (through ``out_dim``) and
    its dtype against the parameters' (``TypeError``, as ``nn.Linear``).
    """

    def __init__(self, in_dim, out_dim, *, potential="residual", hidden=(256, 128, 32),
                 step_size=0.125, momentum=0.9, reg_weight=None, num_steps=5, scaled=True,
                 gtol=1e-3, clip=None, grad_mode="unrolled", truncate_steps=None, rng=None,
                 dtype="float32"):
        super().__init__(EA.init_equilibrium_aggregation(
            resolve_seed(rng), in_dim, out_dim, potential=potential, hidden=hidden,
            step_size=step_size, momentum=momentum, reg_weight=reg_weight, dtype=dtype))
        self._configure(potential=potential, num_steps=num_steps, scaled=scaled, gtol=gtol,
                        clip=clip, grad_mode=grad_mode, truncate_steps=truncate_steps,
                        out_dim=out_dim)

    def _configure(self, potential="residual", num_steps=5, scaled=True, gtol=1e-3, clip=None,
                   grad_mode="unrolled", truncate_steps=None, out_dim=None):
        super()._configure(potential=potential, num_steps=num_steps, scaled=scaled, gtol=gtol,
                           clip=clip, grad_mode=grad_mode, truncate_steps=truncate_steps,
                           out_dim=out_dim)

    def forward(self, x, mask=None, *, index=None, ptr=None, num_sets=None, return_info=False):
        check_input_dtype("EquilibriumAggregation", x, self.params)
        return EA.equilibrium_aggregation(
            self.params, x, mask, index=index, ptr=ptr, num_sets=num_sets,
            potential=self.potential, num_steps=self.num_steps, scaled=self.scaled,
            gtol=self.gtol, clip=self.clip, out_dim=self.out_dim, grad_mode=self.grad_mode,
            truncate_steps=self.truncate_steps, return_info=return_info)

    def extra_repr(self):
        return (f"potential={self.potential!r}, num_steps={self.num_steps}, "
                f"grad_mode={self.grad_mode!r}")


class _Pool(ParamModule):
    _fn = None

    def forward(self, x, mask=None, *, index=None, ptr=None, num_sets=None):
        return type(self)._fn(x, mask, index=index, ptr=ptr, num_sets=num_sets)


class SumPool(_Pool):
    """:func:`setwise.torch_backend.sum_pool` (no parameters)."""

    _fn = staticmethod(P.sum_pool)


class MeanPool(_Pool):
    """:func:`setwise.torch_backend.mean_pool` (no parameters)."""

    _fn = staticmethod(P.mean_pool)


class MaxPool(_Pool):
    """:func:`setwise.torch_backend.max_pool` (no parameters)."""

    _fn = staticmethod(P.max_pool)


class AttentionPool(ParamModule):
    """Multi-head attention pooling (:func:`setwise.torch_backend.attention_pool`)."""

    def __init__(self, in_dim, out_dim, *, num_heads=4, rng=None, dtype="float32"):
        super().__init__(P.init_attention_pool(resolve_seed(rng), in_dim, out_dim,
                                               num_heads=num_heads, dtype=dtype))

    def forward(self, x, mask=None, *, index=None, ptr=None, num_sets=None):
        check_input_dtype("AttentionPool", x, self.params)
        return P.attention_pool(self.params, x, mask, index=index, ptr=ptr, num_sets=num_sets)


class PNAPool(ParamModule):
    """PNA pooling (:func:`setwise.torch_backend.pna_pool`); ``delta`` from :func:`pna_delta`."""

    def __init__(self, in_dim, out_dim, *, delta=1.0, rng=None, dtype="float32"):
        super().__init__(P.init_pna_pool(resolve_seed(rng), in_dim, out_dim, dtype=dtype))
        self._configure(delta=delta)

    def _configure(self, delta=1.0):
        super()._configure(delta=float(delta))

    def forward(self, x, mask=None, *, index=None, ptr=None, num_sets=None):
        check_input_dtype("PNAPool", x, self.params)
        return P.pna_pool(self.params, x, mask, index=index, ptr=ptr, num_sets=num_sets,
                          delta=self.delta)


class _Creator(ParamModule):
    """A set creator: ``forward(z, n, *, max_n=None, rng=None) -> (x, mask)``."""

    _init = _fn = None

    def __init__(self, latent_dim, out_dim, num_points, *, rng=None, dtype="float32",
                 **kwargs):
        super().__init__(type(self)._init(resolve_seed(rng), latent_dim, out_dim, num_points,
                                          dtype=dtype, **kwargs))

    def forward(self, z, n, *, max_n=None, rng=None):
        check_input_dtype(type(self).__name__, z, self.params)
        return type(self)._fn(self.params, z, n, max_n=max_n, rng=rng)


class TopNCreation(_Creator):
    """Top-n creation (:func:`setwise.torch_backend.top_n_creation`); keyword arguments
    ``angle_dim``, ``hidden`` as in :func:`init_top_n_creation`."""

    _init = staticmethod(T.init_top_n_creation)
    _fn = staticmethod(T.top_n_creation)


class FirstNCreation(_Creator):
    """First-n creation (:func:`setwise.torch_backend.first_n_creation`)."""

    _init = staticmethod(C.init_first_n_creation)
    _fn = staticmethod(C.first_n_creation)


class IIDCreation(_Creator):
    """i.i.d. creation (:func:`setwise.torch_backend.iid_creation`); ``noise_dim`` keyword."""

    _init = staticmethod(C.init_iid_creation)
    _fn = staticmethod(C.iid_creation)


class MLPCreation(_Creator):
    """MLP creation (:func:`setwise.torch_backend.mlp_creation`); ``hidden`` keyword."""

    _init = staticmethod(C.init_mlp_creation)
    _fn = staticmethod(C.mlp_creation)
