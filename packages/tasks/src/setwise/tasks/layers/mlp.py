"""Linear layers, layer norm and Listing 1's residual MLP: layout, initialisation, NumPy forward.

Layout (``prefix`` = the layer's name in the model's flat mapping):

- linear ``{prefix}``: ``{prefix}_w [in, out]``, ``{prefix}_b [out]``; ``y = x @ w + b``.
- layer norm ``{prefix}``: ``{prefix}_ln_scale [width]`` (ones), ``{prefix}_ln_offset``
  (zeros); normalises the last axis with ``eps = 1e-5`` (biased variance, as torch and
  Equinox).
- MLP ``{prefix}`` of :class:`MLPSpec`: linear ``{prefix}_{i}`` per layer ``i``; hidden layers
  (all but the last) get layer norm ``{prefix}_{i}`` when ``normalize``, then the activation;
  with ``residual`` layer ``i`` adds its input back, through linear ``{prefix}_{i}_proj``
  where the width changes.

Initial values: :func:`setwise.reference.nn.init_linear` (the reference's initialiser, so
the task models and the setwise operators start from one rule).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from setwise.reference import nn as ref_nn

ACTIVATIONS = ("relu", "tanh", "none")
LN_EPS = 1e-5


@dataclass(frozen=True)
class MLPSpec:
    """Listing 1's ``SuperMLP``: ``sizes`` are the output widths of the linear layers.

    Hidden layers (all but the last) get LayerNorm (``normalize``) then ``activation``; with
    ``residual`` each layer adds its input back, through a linear projection where the width
    changes. The last layer has no activation.
    """

    sizes: tuple[int, ...]
    activation: str = "relu"
    normalize: bool = False
    residual: bool = False

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLPSpec: activation is {self.activation!r}; expected one of "
                             f"{ACTIVATIONS}")
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"MLPSpec: sizes is {self.sizes!r}; expected positive widths")


def init_linear(rng, params, prefix, fan_in, fan_out, dtype="float32", bias=True):
    """Add linear ``{prefix}`` (``_w [fan_in, fan_out]``, ``_b``) to ``params``."""
    ref_nn.init_linear(rng, params, prefix, fan_in, fan_out, dtype, bias=bias)


def init_layer_norm(params, prefix, width, dtype="float32"):
    """Add layer norm ``{prefix}`` (``_ln_scale`` ones, ``_ln_offset`` zeros)."""
    params[f"{prefix}_ln_scale"] = np.ones(width, dtype)
    params[f"{prefix}_ln_offset"] = np.zeros(width, dtype)


def init_mlp(rng, params, prefix, in_dim, spec: MLPSpec, dtype="float32"):
    """Add MLP ``{prefix}`` of ``spec`` on ``in_dim`` inputs to ``params``."""
    width = in_dim
    for i, size in enumerate(spec.sizes):
        init_linear(rng, params, f"{prefix}_{i}", width, size, dtype)
        if spec.normalize and i < len(spec.sizes) - 1:
            init_layer_norm(params, f"{prefix}_{i}", size, dtype)
        if spec.residual and size != width:
            init_linear(rng, params, f"{prefix}_{i}_proj", width, size, dtype)
        width = size


def activation(name, x):
    if name == "relu":
        return np.maximum(x, 0)
    return np.tanh(x) if name == "tanh" else x


def linear(params, prefix, x):
    """``x [..., in] @ w + b -> [..., out]``."""
    out = x @ params[f"{prefix}_w"]
    bias = params.get(f"{prefix}_b")
    return out if bias is None else out + bias


def layer_norm(params, prefix, x):
    """Layer norm of the last axis of ``x [..., width]``."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * params[f"{prefix}_ln_scale"] \
        + params[f"{prefix}_ln_offset"]


def run_mlp(fns, params, prefix, spec: MLPSpec, x):
    """MLP ``{prefix}`` of ``spec`` on ``x [..., in] -> [..., sizes[-1]]``, written once for
    every backend: ``fns`` is the backend's module of this family (its ``linear``,
    ``layer_norm`` and ``activation``)."""
    last = len(spec.sizes) - 1
    for i in range(len(spec.sizes)):
        name = f"{prefix}_{i}"
        h = fns.linear(params, name, x)
        if i < last:
            if f"{name}_ln_scale" in params:
                h = fns.layer_norm(params, name, h)
            h = fns.activation(spec.activation, h)
        if spec.residual:
            h = h + (fns.linear(params, f"{name}_proj", x) if f"{name}_proj_w" in params
                     else x)
        x = h
    return x


def mlp(params, prefix, spec: MLPSpec, x):
    """MLP ``{prefix}`` of ``spec`` on ``x [..., in] -> [..., sizes[-1]]`` (NumPy)."""
    return run_mlp(sys.modules[__name__], params, prefix, spec, x)
