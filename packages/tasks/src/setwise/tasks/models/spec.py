"""A set model described once for every backend: encoder, aggregator, head.

``element encoder -> set aggregator -> head`` is the architecture of paper 1's experiments
(Deep Sets with sum / attention / PNA pooling; Equilibrium Aggregation encodes and aggregates
at once, so it has no encoder). :class:`SetModelSpec` holds the sizes, :func:`init_params`
draws the parameters once, in NumPy, as a flat ``name -> array`` mapping (so the PyTorch and
JAX models of one seed start identical), and :func:`aggregate` calls the setwise operator of
whichever backend module it is given: the one line where a model reaches setwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from setwise.reference import (
    init_attention_pool,
    init_equilibrium_aggregation,
    init_pna_pool,
    pna_delta,
)
from setwise.reference import nn as ref_nn

AGGREGATORS = ("ea", "sum", "mha", "pna")
ACTIVATIONS = ("relu", "tanh")
AGG_PREFIX = "agg_"


@dataclass(frozen=True)
class MLPSpec:
    """Listing 1's ``SuperMLP``: ``sizes`` are the output widths of the linear layers.

    Hidden layers (all but the last) get LayerNorm (``normalize``) then ``activation``;
    with ``residual`` each layer adds its input back, through a linear projection where the
    width changes. The last layer has no activation.
    """

    sizes: tuple[int, ...]
    activation: str = "relu"
    normalize: bool = False
    residual: bool = False


@dataclass(frozen=True)
class SetModelSpec:
    """``head(aggregate(encoder(x)))`` with a scalar or vector output per set.

    Attributes:
        in_dim: element dimension.
        dim: ``D``, the set embedding size (the aggregate's width).
        aggregator: one of :data:`AGGREGATORS`.
        encoder: element encoder (ending in width ``D``); ignored for ``ea``.
        head: output network on the ``D``-dim aggregate.
        ea_hidden: EA potential's residual-MLP sizes (median task: ``(256, 256, 1)``).
        ea_steps: EA's ``num_steps`` T.
        ea_grad_mode: ``unrolled`` / ``implicit`` / ``truncated``.
        ea_aux_weight: weight of EA's auxiliary loss (eq. 5) in the training loss.
        ea_step_size: EA's initial inner step size ``alpha`` (paper: 0.125).
        ea_clip: clip ``y`` to ``[-ea_clip, ea_clip]`` after every step (Listing 2's
            ``clip_value``), or None.
        num_heads: attention heads (``min(num_heads, D)`` are used, so ``D = 1, 2`` work).
        pna_set_sizes: training set sizes for PNA's ``delta``.
    """

    in_dim: int
    dim: int
    aggregator: str
    encoder: MLPSpec
    head: MLPSpec
    ea_hidden: tuple[int, ...] = (256, 256, 1)
    ea_steps: int = 5
    ea_grad_mode: str = "unrolled"
    ea_aux_weight: float = 0.0
    ea_step_size: float = 0.125
    ea_clip: float | None = None
    num_heads: int = 4
    pna_set_sizes: tuple[int, ...] = (100,)

    @property
    def heads(self) -> int:
        return min(self.num_heads, self.dim)

    @property
    def agg_in_dim(self) -> int:
        return self.in_dim if self.aggregator == "ea" else self.dim

    @property
    def pna_delta(self) -> float:
        return pna_delta(self.pna_set_sizes)


def init_mlp(rng, params, prefix, in_dim, mlp: MLPSpec, dtype="float32"):
    """Add ``{prefix}_{i}_w/_b`` (and ``_ln_scale/_ln_offset``, ``_proj_w/_proj_b``)."""
    width = in_dim
    for i, size in enumerate(mlp.sizes):
        ref_nn.init_linear(rng, params, f"{prefix}_{i}", width, size, dtype)
        if mlp.normalize and i < len(mlp.sizes) - 1:
            params[f"{prefix}_{i}_ln_scale"] = np.ones(size, dtype)
            params[f"{prefix}_{i}_ln_offset"] = np.zeros(size, dtype)
        if mlp.residual and size != width:
            ref_nn.init_linear(rng, params, f"{prefix}_{i}_proj", width, size, dtype)
        width = size


def init_params(spec: SetModelSpec, seed: int, dtype="float32") -> dict[str, np.ndarray]:
    """All parameters of ``spec``: ``encoder_*``, ``agg_*`` (the setwise operator's own
    names, prefixed), ``head_*``. Truncated-normal ``1/sqrt(fan_in)`` weights (Haiku's
    default, as the papers' code), zero biases."""
    if spec.aggregator not in AGGREGATORS:
        raise ValueError(f"init_params: aggregator is {spec.aggregator!r}; expected one of "
                         f"{', '.join(map(repr, AGGREGATORS))}")
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    if spec.aggregator != "ea":
        init_mlp(rng, params, "encoder", spec.in_dim, spec.encoder, dtype)
    if spec.aggregator == "ea":
        agg = init_equilibrium_aggregation(rng, spec.in_dim, spec.dim, hidden=spec.ea_hidden,
                                           step_size=spec.ea_step_size, dtype=dtype)
    elif spec.aggregator == "mha":
        agg = init_attention_pool(rng, spec.dim, spec.dim, num_heads=spec.heads, dtype=dtype)
    elif spec.aggregator == "pna":
        agg = init_pna_pool(rng, spec.dim, spec.dim, dtype=dtype)
    else:
        agg = {}
    params.update({AGG_PREFIX + k: v for k, v in agg.items()})
    init_mlp(rng, params, "head", spec.dim, spec.head, dtype)
    return params


def agg_params(params: Mapping) -> dict:
    """The aggregator's parameters under the setwise operator's own names."""
    return {k[len(AGG_PREFIX):]: v for k, v in params.items() if k.startswith(AGG_PREFIX)}


def aggregate(ops, spec: SetModelSpec, params: Mapping, h, mask):
    """The set aggregate ``[num_sets, D]`` and EA's auxiliary loss per set (or None).

    ``ops`` is a setwise backend module (``setwise.reference``, ``setwise.torch_backend``,
    ``setwise.jax_backend``): all share the reference's signatures, so this is the same call
    in every backend. ``params`` are the aggregator's parameters (:func:`agg_params`).
    """
    if spec.aggregator == "ea":
        y, info = ops.equilibrium_aggregation(params, h, mask, num_steps=spec.ea_steps,
                                              clip=spec.ea_clip, grad_mode=spec.ea_grad_mode,
                                              return_info=True)
        return y, info.aux_loss
    if spec.aggregator == "sum":
        return ops.sum_pool(h, mask), None
    if spec.aggregator == "mha":
        return ops.attention_pool(params, h, mask), None
    return ops.pna_pool(params, h, mask, delta=spec.pna_delta), None


def mlp_forward(params, prefix, mlp: MLPSpec, x):
    """NumPy forward of :class:`MLPSpec` (the reference for the backend models' layers)."""
    depth = len(mlp.sizes)
    for i in range(depth):
        p = f"{prefix}_{i}"
        h = x @ params[f"{p}_w"] + params[f"{p}_b"]
        if i < depth - 1:
            if mlp.normalize:
                mu = h.mean(-1, keepdims=True)
                var = ((h - mu) ** 2).mean(-1, keepdims=True)
                h = (h - mu) / np.sqrt(var + 1e-5) * params[f"{p}_ln_scale"] \
                    + params[f"{p}_ln_offset"]
            h = np.maximum(h, 0) if mlp.activation == "relu" else np.tanh(h)
        if mlp.residual:
            skip = x @ params[f"{p}_proj_w"] + params[f"{p}_proj_b"] \
                if f"{p}_proj_w" in params else x
            h = skip + h
        x = h
    return x


def regression_loss(spec: SetModelSpec, out, aux, y):
    """Square loss of ``out [B, 1]`` against ``y [B]``, plus EA's auxiliary loss (eq. 5) times
    ``spec.ea_aux_weight`` when ``aux [B]`` is given. Plain array arithmetic, so the torch and
    JAX models share it. Returns ``(total, logs)``."""
    mse = ((out[:, 0] - y) ** 2).mean()
    logs = {"mse": mse}
    total = mse
    if aux is not None:
        logs["ea_aux"] = aux.mean()
        total = total + spec.ea_aux_weight * logs["ea_aux"]
    return total, logs


def reference_forward(spec: SetModelSpec, params: Mapping, x, mask):
    """The model's output ``[num_sets, head width]`` in NumPy with :mod:`setwise.reference`:
    the ground truth the backend models are tested against."""
    import setwise.reference as ref

    h = x if spec.aggregator == "ea" else mlp_forward(params, "encoder", spec.encoder, x)
    y, _ = aggregate(ref, spec, agg_params(params), h, mask)
    return mlp_forward(params, "head", spec.head, y)
