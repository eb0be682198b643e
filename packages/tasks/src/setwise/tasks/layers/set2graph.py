"""Set2Graph (Serviansky et al. 2020): a set of node vectors -> features of every node pair.

The second-order part of a Set2Graph model, ``psi(beta(X))``: the *broadcasting* layer
``beta`` lifts a set ``X [num_sets, n, d]`` to its pairs,

.. math:: \\beta(X)_{ij} = [x_i, x_j] \\in \\mathbb{R}^{2d},

and ``psi``, an MLP applied to every pair alone, maps them to edge features. For undirected
graphs the output is symmetrised, ``e_ij = (psi(beta)_ij + psi(beta)_ji) / 2`` (Set2Graph's
symmetric variant for undirected edges). The set-to-set part ``phi`` of Set2Graph is the
caller's (the QM9 decoder's transformer layers).

Dense sets ``x [num_sets, n, d]`` with ``mask [num_sets, n]``. The output ``[num_sets, n,
n, out]`` is 0 on the diagonal and wherever node ``i`` or ``j`` is padding. Permuting a
set's nodes by ``pi`` permutes both pair axes by ``pi`` (2-equivariance); a set's pairs
never depend on another set of the batch or on its padding.

Layout (``prefix`` = the layer's name in the model's flat mapping): ``psi`` is the MLP
``{prefix}`` of :class:`setwise.tasks.layers.mlp.MLPSpec` on ``2 d`` inputs
(``{prefix}_0_w [2d, sizes[0]]``, ``{prefix}_0_b``, ...). Its last layer has no activation.

The layer is written once (:func:`run_set2graph`) for every backend; a backend module
supplies ``mlp``, ``concat``, ``broadcast_to``, ``swap_pairs``, ``where`` and ``eye_bool``.

Notes:
    Serviansky et al.'s released model stacks DeepSets layers as ``phi`` and 1x1
    convolutions (with batch norm) as ``psi`` on ``[x_i, x_j]``; here ``psi`` is the MLP
    family (no batch norm) and the symmetrisation averages the two directions.
"""

from __future__ import annotations

import sys

import numpy as np

from setwise.tasks.layers.mlp import MLPSpec, init_mlp
from setwise.tasks.layers.mlp import mlp as _np_mlp


def init_set2graph(rng, params, prefix, in_dim, spec: MLPSpec, dtype="float32"):
    """Add Set2Graph ``{prefix}``: the pair MLP ``psi`` on ``2 * in_dim`` inputs."""
    init_mlp(rng, params, prefix, 2 * in_dim, spec, dtype)


def pair_mask(fns, mask):
    """``[num_sets, n, n]`` bool: both nodes present and ``i != j``."""
    n = mask.shape[1]
    return mask[:, :, None] & mask[:, None, :] & ~fns.eye_bool(n, mask)[None]


def broadcast_pairs(fns, x):
    """``beta``: ``x [num_sets, n, d]`` -> ``[num_sets, n, n, 2d]`` with ``[x_i, x_j]`` at
    ``(i, j)``."""
    b, n, d = x.shape
    xi = fns.broadcast_to(x[:, :, None, :], (b, n, n, d))
    xj = fns.broadcast_to(x[:, None, :, :], (b, n, n, d))
    return fns.concat([xi, xj], -1)


def run_set2graph(fns, params, prefix, spec: MLPSpec, x, mask, symmetric=True):
    """Set2Graph ``{prefix}`` on ``x [num_sets, n, d]``, ``mask [num_sets, n]`` ->
    ``[num_sets, n, n, spec.sizes[-1]]`` (see the module docstring)."""
    e = fns.mlp(params, prefix, spec, broadcast_pairs(fns, x))
    if symmetric:
        e = (e + fns.swap_pairs(e)) / 2
    return fns.where(pair_mask(fns, mask)[..., None], e, 0.0)


# --- NumPy binding (the reference) -------------------------------------------------------

mlp = _np_mlp
broadcast_to = np.broadcast_to
where = np.where


def concat(xs, axis):
    return np.concatenate(xs, axis=axis)


def swap_pairs(e):
    """``e [num_sets, n, n, k]`` with its two pair axes swapped."""
    return np.swapaxes(e, 1, 2)


def eye_bool(n, like):
    return np.eye(n, dtype=bool)


def set2graph(params, prefix, spec: MLPSpec, x, mask, symmetric=True):
    """NumPy Set2Graph (:func:`run_set2graph`)."""
    return run_set2graph(sys.modules[__name__], params, prefix, spec, np.asarray(x),
                         np.asarray(mask, bool), symmetric)
