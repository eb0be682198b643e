"""Batch normalisation with explicit state: layout, initialisation, NumPy forward.

Layout (``prefix`` = the layer's name): parameters ``{prefix}_bn_scale [width]`` (ones) and
``{prefix}_bn_offset`` (zeros); state ``{prefix}_bn_mean [width]`` (zeros) and
``{prefix}_bn_var`` (ones), the running statistics.

.. math::
    y = (x - m) / \\sqrt{v + \\epsilon} \\cdot \\text{scale} + \\text{offset}

In training, ``m`` and ``v`` (biased) are the statistics of the batch over every axis but the
last, counting only the rows where ``mask`` is True (padding never enters a statistic), and the
function returns the updated running statistics ``(1 - momentum) old + momentum new`` (the
running variance is the unbiased one, as in PyTorch's ``BatchNorm``). In evaluation the running
statistics are used and nothing is updated, so a set's output no longer depends on its batch.
``momentum = 0.1`` and ``eps = 1e-5`` are PyTorch's defaults.
"""

from __future__ import annotations

import sys

import numpy as np

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def init_batch_norm(params, state, prefix, width, dtype="float32"):
    """Add batch norm ``{prefix}`` to ``params`` (scale, offset) and ``state`` (mean, var)."""
    params[f"{prefix}_bn_scale"] = np.ones(width, dtype)
    params[f"{prefix}_bn_offset"] = np.zeros(width, dtype)
    state[f"{prefix}_bn_mean"] = np.zeros(width, dtype)
    state[f"{prefix}_bn_var"] = np.ones(width, dtype)


def run_batch_norm(fns, params, state, prefix, x, *, train, mask=None, momentum=BN_MOMENTUM):
    """Batch norm of ``x [..., width]`` written once for every backend (``fns``: the
    backend's module of this family, with ``rsqrt``, ``stop_gradient``, ``weights``).

    Returns ``(y [..., width], updates)``: ``updates`` maps ``{prefix}_bn_mean`` and
    ``{prefix}_bn_var`` to their new values in training and is empty in evaluation.
    """
    if train:
        axes = tuple(range(x.ndim - 1))
        w = fns.weights(mask, x)
        count = w.sum()
        mean = (x * w).sum(axes) / count
        var = (((x - mean) ** 2) * w).sum(axes) / count
        unbiased = fns.stop_gradient(var) * count / (count - 1 + (count <= 1))  # n / (n - 1)
        updates = {
            f"{prefix}_bn_mean": (1 - momentum) * state[f"{prefix}_bn_mean"]
            + momentum * fns.stop_gradient(mean),
            f"{prefix}_bn_var": (1 - momentum) * state[f"{prefix}_bn_var"] + momentum * unbiased,
        }
    else:
        mean, var, updates = state[f"{prefix}_bn_mean"], state[f"{prefix}_bn_var"], {}
    y = (x - mean) * fns.rsqrt(var + BN_EPS) * params[f"{prefix}_bn_scale"] \
        + params[f"{prefix}_bn_offset"]
    return y, updates


def rsqrt(v):
    return 1 / np.sqrt(v)


def stop_gradient(v):
    return v


def weights(mask, x):
    """``[..., 1]`` row weights in ``x``'s dtype (ones without a mask)."""
    if mask is None:
        return np.ones(x.shape[:-1] + (1,), x.dtype)
    return np.asarray(mask, x.dtype)[..., None]


def batch_norm(params, state, prefix, x, *, train, mask=None, momentum=BN_MOMENTUM):
    """Batch norm ``{prefix}`` of ``x [..., width]`` (NumPy): ``(y, state updates)``."""
    return run_batch_norm(sys.modules[__name__], params, state, prefix, x, train=train,
                          mask=mask, momentum=momentum)
