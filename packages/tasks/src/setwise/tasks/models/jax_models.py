"""JAX set models: Equinox layers around the setwise operator of
:func:`setwise.tasks.models.spec.aggregate`, built from a NumPy parameter mapping."""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from setwise.tasks.models import backend_ops
from setwise.tasks.models.spec import (
    MLPSpec,
    SetModelSpec,
    agg_params,
    aggregate,
    regression_loss,
)

_ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


def array(value) -> jax.Array:
    """A JAX array from NumPy (``device_put``: no compilation, unlike ``jnp.asarray``)."""
    return jax.device_put(np.array(value, copy=True))


def linear(params: Mapping, name: str) -> eqx.nn.Linear:
    """``eqx.nn.Linear`` holding ``{name}_w [in, out]`` (transposed to ``[out, in]``)."""
    w = params[f"{name}_w"]
    # the layer's structure only (no random initialisation), then the NumPy values
    layer = eqx.filter_eval_shape(eqx.nn.Linear, *w.shape, key=jax.random.PRNGKey(0))
    return eqx.tree_at(lambda m: (m.weight, m.bias), layer,
                       (array(w.T), array(params[f"{name}_b"])))


def layer_norm(params: Mapping, name: str) -> eqx.nn.LayerNorm:
    scale = params[f"{name}_ln_scale"]
    layer = eqx.nn.LayerNorm(scale.shape[0], eps=1e-5)
    return eqx.tree_at(lambda m: (m.weight, m.bias), layer,
                       (array(scale), array(params[f"{name}_ln_offset"])))


def rows(layer, x):
    """Apply a per-vector Equinox layer to every row of ``x [..., width]``."""
    out = jax.vmap(layer)(x.reshape(-1, x.shape[-1]))
    return out.reshape(*x.shape[:-1], out.shape[-1])


class MLP(eqx.Module):
    """:class:`~setwise.tasks.models.spec.MLPSpec` (Listing 1's SuperMLP) in Equinox."""

    linears: list
    norms: list
    projs: list
    spec: MLPSpec = eqx.field(static=True)

    def __init__(self, params: Mapping, prefix: str, spec: MLPSpec):
        names = [f"{prefix}_{i}" for i in range(len(spec.sizes))]
        self.spec = spec
        self.linears = [linear(params, n) for n in names]
        self.norms = [layer_norm(params, n) if f"{n}_ln_scale" in params else None
                      for n in names]
        self.projs = [linear(params, f"{n}_proj") if f"{n}_proj_w" in params else None
                      for n in names]

    def __call__(self, x):
        act = _ACTIVATIONS[self.spec.activation]
        last = len(self.linears) - 1
        for i, (lin, norm, proj) in enumerate(zip(self.linears, self.norms, self.projs)):
            h = rows(lin, x)
            if i < last:
                h = act(h if norm is None else rows(norm, h))
            if self.spec.residual:
                h = (x if proj is None else rows(proj, x)) + h
            x = h
        return x


class SetModel(eqx.Module):
    """``head(aggregate(encoder(x), mask))``; the aggregator's parameters are a dict under
    the setwise operator's own names."""

    encoder: MLP | None
    agg: dict
    head: MLP
    spec: SetModelSpec = eqx.field(static=True)

    def __init__(self, spec: SetModelSpec, params: Mapping[str, np.ndarray]):
        self.spec = spec
        self.encoder = None if spec.aggregator == "ea" else MLP(params, "encoder", spec.encoder)
        self.agg = {k: array(v) for k, v in agg_params(params).items()}
        self.head = MLP(params, "head", spec.head)

    def __call__(self, x, mask):
        """``(output [num_sets, head width], EA aux loss per set or None)``."""
        h = x if self.encoder is None else self.encoder(x)
        y, aux = aggregate(backend_ops("jax"), self.spec, self.agg, h, mask)
        return self.head(y), aux


class SetRegressor(SetModel):
    """A scalar per set, trained with the square loss (+ EA's weighted auxiliary loss)."""

    def predict(self, batch):
        return self(batch["x"], batch["mask"])[0][:, 0]

    def loss(self, batch):
        return regression_loss(self.spec, *self(batch["x"], batch["mask"]), batch["y"])
