"""Masked multi-head attention and transformer layers over padded sets: layout, init, NumPy.

Sets are dense, ``x [num_sets, max_size, width]`` with ``mask [num_sets, max_size]`` (True =
present). Attention runs only within a set, over its present elements: the result for a set
never depends on its padding or on the other sets of the batch, and permuting a set's
elements permutes its outputs (equivariance). Padding rows of every output are 0; a set with
no element gives zeros (its attention has no key).

Layout (``prefix`` = the layer's name in the model's flat mapping; linear and layer norm as
in :mod:`setwise.tasks.layers.mlp`):

- attention ``{prefix}``: linear ``{prefix}_q``, ``{prefix}_k``, ``{prefix}_v``
  (``[width, width]`` each, split into ``num_heads`` heads of ``width / num_heads``) and the
  output projection ``{prefix}_o`` (``[width, width]``).
- transformer layer ``{prefix}``: attention ``{prefix}_attn``, layer norm ``{prefix}_attn``
  (``{prefix}_attn_ln_scale/_ln_offset``), feed-forward linear ``{prefix}_ff_0 [width,
  ff_width]`` and ``{prefix}_ff_1 [ff_width, width]`` with ReLU between, layer norm
  ``{prefix}_ff``.

.. math::

    \\mathrm{att}(Q, K, V)_i = \\sum_{j \\in \\mathrm{set}} \\mathrm{softmax}_j
        \\Big(\\frac{q_i \\cdot k_j}{\\sqrt{d_h}}\\Big) v_j

Post-norm (``norm_first=False``, torch's ``TransformerEncoderLayer`` default, used by the
Top-n authors' synthetic VAE): ``h = LN_attn(x + att(x))``, ``y = LN_ff(h + FF(h))``.
Pre-norm (``norm_first=True``): ``h = x + att(LN_attn(x))``, ``y = h + FF(LN_ff(h))``.
No dropout.

The layer's structure is written once (:func:`run_attention`, :func:`run_transformer_layer`)
for every backend; a backend module supplies ``linear``, ``layer_norm``, ``relu``,
``einsum``, ``where`` and ``masked_softmax``.
"""

from __future__ import annotations

import sys

import numpy as np

from setwise.tasks.layers.mlp import init_layer_norm, init_linear, layer_norm, linear


def check_heads(op, width, num_heads):
    """``width`` must split into ``num_heads`` heads."""
    if num_heads < 1 or width % num_heads:
        raise ValueError(f"{op}: width {width} must be a positive multiple of num_heads "
                         f"(got num_heads={num_heads})")


def init_attention(rng, params, prefix, width, num_heads, dtype="float32"):
    """Add attention ``{prefix}`` (``_q``, ``_k``, ``_v``, ``_o``: linear ``[width, width]``)."""
    check_heads("init_attention", width, num_heads)
    for name in ("q", "k", "v", "o"):
        init_linear(rng, params, f"{prefix}_{name}", width, width, dtype)


def init_transformer_layer(rng, params, prefix, width, num_heads, ff_width, dtype="float32"):
    """Add transformer layer ``{prefix}`` (layout in the module docstring)."""
    init_attention(rng, params, f"{prefix}_attn", width, num_heads, dtype)
    init_layer_norm(params, f"{prefix}_attn", width, dtype)
    init_linear(rng, params, f"{prefix}_ff_0", width, ff_width, dtype)
    init_linear(rng, params, f"{prefix}_ff_1", ff_width, width, dtype)
    init_layer_norm(params, f"{prefix}_ff", width, dtype)


def run_attention(fns, params, prefix, x, mask, num_heads, context=None, context_mask=None):
    """Multi-head attention of the rows of ``x`` to ``context`` (``x`` itself by default).

    Args:
        fns: the backend's module of this family.
        x: ``[num_sets, n, width]`` queries; ``mask [num_sets, n]``.
        context: ``[num_sets, m, width]`` keys/values (default ``x``); ``context_mask [num_sets,
            m]`` (default ``mask``).

    Returns:
        ``[num_sets, n, width]``, padding rows 0.
    """
    context = x if context is None else context
    context_mask = mask if context_mask is None else context_mask
    b, n, width = x.shape
    m = context.shape[1]
    check_heads("attention", width, num_heads)
    dh = width // num_heads
    q = fns.linear(params, f"{prefix}_q", x).reshape(b, n, num_heads, dh)
    k = fns.linear(params, f"{prefix}_k", context).reshape(b, m, num_heads, dh)
    v = fns.linear(params, f"{prefix}_v", context).reshape(b, m, num_heads, dh)
    scores = fns.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(dh)
    weights = fns.masked_softmax(scores, context_mask[:, None, None, :])
    out = fns.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, n, width)
    out = fns.linear(params, f"{prefix}_o", out)
    return fns.where(mask[..., None], out, 0.0)


def run_transformer_layer(fns, params, prefix, x, mask, num_heads, norm_first=False):
    """Transformer layer ``{prefix}`` on ``x [num_sets, n, width]`` -> same shape (padding 0)."""
    att = f"{prefix}_attn"

    def ff(h):
        return fns.linear(params, f"{prefix}_ff_1",
                          fns.relu(fns.linear(params, f"{prefix}_ff_0", h)))

    if norm_first:
        h = x + run_attention(fns, params, att, fns.layer_norm(params, att, x), mask, num_heads)
        y = h + ff(fns.layer_norm(params, f"{prefix}_ff", h))
    else:
        h = fns.layer_norm(params, att, x + run_attention(fns, params, att, x, mask, num_heads))
        y = fns.layer_norm(params, f"{prefix}_ff", h + ff(h))
    return fns.where(mask[..., None], y, 0.0)


# NumPy backend of the family (the reference the torch and JAX versions are tested against).

einsum = np.einsum
where = np.where


def relu(x):
    return np.maximum(x, 0)


def masked_softmax(scores, mask):
    """Softmax of ``scores`` over the last axis restricted to ``mask`` (broadcast); 0 where
    masked, all 0 where nothing is present."""
    s = np.where(mask, scores, -np.inf)
    top = np.max(s, -1, keepdims=True)
    e = np.where(mask, np.exp(s - np.where(np.isfinite(top), top, 0)), 0)
    return e / np.maximum(e.sum(-1, keepdims=True), 1e-30)


def attention(params, prefix, x, mask, num_heads, context=None, context_mask=None):
    """NumPy :func:`run_attention`."""
    return run_attention(sys.modules[__name__], params, prefix, x, mask, num_heads, context,
                         context_mask)


def transformer_layer(params, prefix, x, mask, num_heads, norm_first=False):
    """NumPy :func:`run_transformer_layer`."""
    return run_transformer_layer(sys.modules[__name__], params, prefix, x, mask, num_heads,
                                 norm_first)


__all__ = ["attention", "check_heads", "init_attention", "init_transformer_layer", "layer_norm",
           "linear", "masked_softmax", "run_attention", "run_transformer_layer",
           "transformer_layer"]
