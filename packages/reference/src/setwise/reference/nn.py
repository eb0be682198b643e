"""Small building blocks shared by the reference ops: initialisers, MLPs, scalar maps.

Parameters are flat mappings ``name -> array`` (DESIGN.md section 1), weights stored
``[in, out]`` and applied as ``x @ W + b``. The ``init_*`` functions of every backend are
these ones, converted: one place decides every initial value.
"""

from __future__ import annotations

import numpy as np

DTYPES = ("float32", "float64")


def as_rng(rng) -> np.random.Generator:
    """``rng``: a ``numpy.random.Generator`` or an int seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"init: argument 'rng' is {type(rng).__name__}; expected a "
                    "numpy.random.Generator or an int seed")


def truncated_normal(rng, shape, stddev, dtype):
    """``stddev * t`` with ``t`` a standard normal truncated at +-2: Haiku's
    ``TruncatedNormal(stddev)``, the default weight initialiser of ``hk.Linear``.

    The truncation is not corrected for, as in Haiku: the values' standard deviation is
    ``0.8796 * stddev``.
    """
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return (out * stddev).astype(dtype)


def init_linear(rng, params, name, fan_in, fan_out, dtype, bias=True, *, scale=1.0,
                bias_stddev=0.0):
    """Add ``{name}_w [fan_in, fan_out]`` (and ``{name}_b [fan_out]``) to ``params``.

    The weight is ``truncated_normal(stddev = scale / sqrt(fan_in))`` (``hk.Linear``'s default
    at ``scale = 1``); the bias is zero (``hk.Linear``'s default) or, with ``bias_stddev > 0``,
    ``truncated_normal(bias_stddev)`` (the residual potential's layers that feed a LayerNorm:
    :func:`setwise.reference.potentials.init_potential`).
    """
    params[f"{name}_w"] = truncated_normal(rng, (fan_in, fan_out), scale / np.sqrt(fan_in),
                                           dtype)
    if bias:
        params[f"{name}_b"] = (truncated_normal(rng, (fan_out,), bias_stddev, dtype)
                               if bias_stddev > 0 else np.zeros(fan_out, dtype))


def init_mlp(rng, params, prefix, sizes, dtype):
    """Linear layers ``{prefix}_{i}`` for consecutive ``sizes = [in, h1, ..., out]``."""
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        init_linear(rng, params, f"{prefix}_{i}", fan_in, fan_out, dtype)


def mlp_depth(params, prefix) -> int:
    """Number of linear layers ``{prefix}_{i}_w`` held in ``params``."""
    depth = 0
    while f"{prefix}_{depth}_w" in params:
        depth += 1
    return depth


def mlp(params, prefix, x):
    """ReLU MLP over the last axis, no activation after the last layer."""
    depth = mlp_depth(params, prefix)
    for i in range(depth):
        x = x @ params[f"{prefix}_{i}_w"] + params[f"{prefix}_{i}_b"]
        if i < depth - 1:
            x = np.maximum(x, 0)
    return x


def softplus(x):
    """``log(1 + exp(x))``, stable for large ``|x|``."""
    return np.logaddexp(0, x)


def inverse_softplus(y):
    """The true inverse of softplus, ``log(expm1(y))`` (Listing 2's is softplus itself)."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(y > 30, y, np.log(np.expm1(np.minimum(y, 30))))


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(x)))


def logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def check_dtype(op, dtype):
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise TypeError(f"{op}: argument 'dtype' is {name}; expected one of {DTYPES}")
    return np.dtype(name)
