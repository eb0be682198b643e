"""DSPN (Zhang et al. 2019): the FSPool set encoder and the inner loop's layout and NumPy side.

A Deep Set Prediction Network turns a representation ``z`` into a set by gradient descent *on
the set*: starting from an initial set ``X^0`` with presence mask ``m^0``, each inner step
moves the set and its mask down the gradient of the representation loss

.. math::

    L_{repr}(X, m) = \\sum_{b} \\operatorname{mean}_k
        \\operatorname{smooth\\_l1}(\\mathrm{enc}(X_b, m_b)_k - z_{b,k}), \\qquad
    X^{t+1} = X^t - \\eta \\nabla_X L_{repr}, \\quad
    m^{t+1} = \\operatorname{clip}_{[0, 1]}(m^t - \\eta \\nabla_m L_{repr}),

for ``num_steps`` steps with step size ``eta``. Training differentiates the outer loss through
every inner step (second order). The loop itself (``dspn_refine``) lives in the backends,
``layers/torch/dspn.py`` and ``layers/jax/dspn.py``; it takes the encoder as a function, so
any set encoder (CLEVR's too) plugs in.

The encoder is DSPN's ``FSEncoder``: a per-element MLP on ``[x, m]`` (the mask is a feature,
so DSPN can move it), divided by the padded size ``N``, then FSPool (Zhang et al. 2020):
per channel, sort the elements in decreasing order and take a weighted sum whose weights are
a piecewise-linear function (``n_pieces`` pieces) of the relative rank ``j / (n - 1)``.

Layout (``prefix`` = the encoder's name in the model's flat mapping):

- ``{prefix}_mlp_{i}_w/_b``: the per-element MLP (:mod:`setwise.tasks.layers.mlp`, ReLU,
  widths ``[hidden, hidden, latent]`` on ``in_dim + 1`` inputs);
- ``{prefix}_pool_w [latent, n_pieces + 1]``: FSPool's piecewise-linear weights, ``N(0, 1)``
  (FSPool's ``reset_parameters``).

Notes:
    DSPN's representation loss is ``smooth_l1(..., reduction="mean")`` over the whole batch, so
    a set's inner gradient shrinks with the batch size (its inner step size 800 is for batch
    32 and latent 64). Here the loss is a mean over the latent and a *sum* over sets, so a
    set's refinement does not depend on its batch companions; DSPN's ``800`` at batch 32 is
    ``800 / 32 = 25`` here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from setwise.tasks.layers import mlp as mlp_layers

#: The fill value of absent elements before FSPool's sort (DSPN's ``-99999``).
FSPOOL_FILL = -99999.0


@dataclass(frozen=True)
class FSEncoderSpec:
    """DSPN's ``FSEncoder``: ``in_dim`` set channels (the mask is added as one more),
    per-element MLP ``[hidden, hidden, latent]``, FSPool with ``n_pieces`` pieces."""

    in_dim: int
    hidden: int
    latent: int
    n_pieces: int = 20

    @property
    def mlp(self) -> mlp_layers.MLPSpec:
        return mlp_layers.MLPSpec((self.hidden, self.hidden, self.latent), "relu")


def init_fs_encoder(rng, params, prefix, spec: FSEncoderSpec, dtype="float32"):
    """Add the encoder ``{prefix}`` of ``spec`` to ``params`` (layout in the module docstring)."""
    mlp_layers.init_mlp(rng, params, f"{prefix}_mlp", spec.in_dim + 1, spec.mlp, dtype)
    params[f"{prefix}_pool_w"] = rng.standard_normal((spec.latent, spec.n_pieces + 1)
                                                     ).astype(dtype)


def fspool_ratios(sizes, max_size, dtype):
    """``r [num_sets, max_size]``: ``j / max(n - 1, 1)`` clipped to 1, and ``keep`` (``r <= 1``).

    ``sizes [num_sets]`` counts the present elements of each set (FSPool's ``fill_sizes``).
    """
    r = np.arange(max_size, dtype=dtype)[None, :] / np.maximum(sizes - 1, 1).astype(dtype)[:, None]
    return np.minimum(r, 1), r <= 1


def fspool_weights(pool_w, ratios):
    """FSPool's piecewise-linear weights at ``ratios [num_sets, N]``: ``[num_sets, N, C]``.

    ``pool_w [C, P + 1]`` holds the function's values at ``0, 1/P, ..., 1``.
    """
    pieces = pool_w.shape[1] - 1
    index = pieces * ratios
    left = np.floor(index).astype(np.int64)
    frac = (index - left)[..., None]
    right = np.minimum(left + 1, pieces)
    return (1 - frac) * pool_w.T[left] + frac * pool_w.T[right]


def fspool(params, prefix, h, valid=None):
    """FSPool of ``h [num_sets, N, C]`` over the elements where ``valid [num_sets, N]``.

    ``valid=None`` pools over all ``N`` slots (DSPN's encoder inside the inner loop: absent
    elements are present with mask feature 0). Returns ``[num_sets, C]``.
    """
    num_sets, max_size, _ = h.shape
    sizes = (np.full(num_sets, max_size) if valid is None else valid.sum(1)).astype(h.dtype)
    ratios, keep = fspool_ratios(sizes, max_size, h.dtype)
    if valid is not None:
        h = np.where(valid[..., None], h, FSPOOL_FILL)
    ordered = -np.sort(-h, axis=1, kind="stable")
    weight = fspool_weights(params[f"{prefix}_pool_w"], ratios)
    return (ordered * weight * keep[..., None]).sum(1)


def fs_encoder(params, prefix, spec: FSEncoderSpec, x, m, valid=None):
    """DSPN's ``FSEncoder`` on ``x [num_sets, N, in_dim]`` with mask feature ``m [num_sets, N]``.

    ``h = MLP([x, m]) / N``, then :func:`fspool` over ``valid`` (None: all slots).
    Returns ``[num_sets, latent]``.
    """
    h = mlp_layers.mlp(params, f"{prefix}_mlp", spec.mlp, np.concatenate([x, m[..., None]], -1))
    return fspool(params, prefix, h / x.shape[1], valid)


def smooth_l1(a, b):
    """Elementwise Huber loss with threshold 1 (PyTorch's ``smooth_l1_loss``, ``beta=1``)."""
    d = np.abs(a - b)
    return np.where(d < 1, 0.5 * d * d, d - 0.5)


def repr_loss(pred, target):
    """DSPN's representation loss per batch: ``sum_b mean_k smooth_l1(pred - target)``."""
    return smooth_l1(pred, target).mean(-1).sum()
