"""PyTorch set models: ``torch.nn`` layers around the setwise operator of
:func:`setwise.tasks.models.spec.aggregate`, built from a NumPy parameter mapping."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from setwise.tasks.models import backend_ops
from setwise.tasks.models.spec import (
    MLPSpec,
    SetModelSpec,
    agg_params,
    aggregate,
    regression_loss,
)

_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


def _tensor(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(value, copy=True))


def linear(params: Mapping, name: str) -> nn.Linear:
    """``nn.Linear`` holding ``{name}_w [in, out]`` (transposed to torch's ``[out, in]``)."""
    w = params[f"{name}_w"]
    layer = nn.Linear(*w.shape)
    with torch.no_grad():
        layer.weight.copy_(_tensor(w.T))
        layer.bias.copy_(_tensor(params[f"{name}_b"]))
    return layer


def layer_norm(params: Mapping, name: str) -> nn.LayerNorm:
    scale = params[f"{name}_ln_scale"]
    layer = nn.LayerNorm(scale.shape[0], eps=1e-5)
    with torch.no_grad():
        layer.weight.copy_(_tensor(scale))
        layer.bias.copy_(_tensor(params[f"{name}_ln_offset"]))
    return layer


class MLP(nn.Module):
    """:class:`~setwise.tasks.models.spec.MLPSpec` (Listing 1's SuperMLP) in ``torch.nn``."""

    def __init__(self, params: Mapping, prefix: str, spec: MLPSpec):
        super().__init__()
        self.spec = spec
        names = [f"{prefix}_{i}" for i in range(len(spec.sizes))]
        self.linears = nn.ModuleList(linear(params, n) for n in names)
        self.norms = nn.ModuleList(
            layer_norm(params, n) if f"{n}_ln_scale" in params else nn.Identity() for n in names)
        self.projs = nn.ModuleList(
            linear(params, f"{n}_proj") if f"{n}_proj_w" in params else nn.Identity()
            for n in names)
        self.activation = _ACTIVATIONS[spec.activation]

    def forward(self, x):
        last = len(self.linears) - 1
        for i, (lin, norm, proj) in enumerate(zip(self.linears, self.norms, self.projs)):
            h = lin(x)
            if i < last:
                h = self.activation(norm(h))
            x = proj(x) + h if self.spec.residual else h
        return x


class SetModel(nn.Module):
    """``head(aggregate(encoder(x), mask))``; the aggregator's parameters are a
    ``ParameterDict`` under the setwise operator's own names."""

    def __init__(self, spec: SetModelSpec, params: Mapping[str, np.ndarray]):
        super().__init__()
        self.spec = spec
        self.ops = backend_ops("torch")
        self.encoder = None if spec.aggregator == "ea" else MLP(params, "encoder", spec.encoder)
        self.agg = nn.ParameterDict(
            {k: nn.Parameter(_tensor(v)) for k, v in agg_params(params).items()})
        self.head = MLP(params, "head", spec.head)

    def forward(self, x, mask):
        """``(output [num_sets, head width], EA aux loss per set or None)``."""
        h = x if self.encoder is None else self.encoder(x)
        y, aux = aggregate(self.ops, self.spec, dict(self.agg), h, mask)
        return self.head(y), aux


class SetRegressor(SetModel):
    """A scalar per set, trained with the square loss (+ EA's weighted auxiliary loss)."""

    def predict(self, batch):
        return self.forward(batch["x"], batch["mask"])[0][:, 0]

    def loss(self, batch):
        return regression_loss(self.spec, *self.forward(batch["x"], batch["mask"]), batch["y"])
