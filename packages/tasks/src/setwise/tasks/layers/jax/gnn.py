"""OGB's molecule GNN layers on JAX: :mod:`setwise.tasks.layers.gnn` bound to ``jax.numpy``.

Same functions, names and parameter layout as the NumPy family; neighbour sums are
``jax.ops.segment_sum`` with a static number of segments, local Equilibrium Aggregation is
``setwise.jax_backend.equilibrium_aggregation`` in segment form. Pure and jit-able on fixed
padded shapes (one compilation per node / edge budget).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from setwise.jax_backend import equilibrium_aggregation
from setwise.tasks.layers import gnn as G
from setwise.tasks.layers.jax.batch_norm import batch_norm


def _segment_sum(data, index, num_segments):
    return jax.ops.segment_sum(data, index, num_segments=num_segments)


def _ea(params, x, index, num_sets, num_steps):
    return equilibrium_aggregation(params, x, index=index, num_sets=num_sets,
                                   num_steps=num_steps, return_info=True)


OPS = G.Ops(segment_sum=_segment_sum, relu=jax.nn.relu, where=jnp.where,
            to_float=lambda m, like: jnp.asarray(m).astype(like.dtype), aggregate_ea=_ea,
            batch_norm=batch_norm)


def encode(params, prefix, features, num_features):
    """See :func:`setwise.tasks.layers.gnn.encode`."""
    return G.encode(params, prefix, features, num_features)


def gin_conv(params, state, prefix, h, edge_index, edge_attr, node_mask, edge_mask, train,
             **kw):
    """See :func:`setwise.tasks.layers.gnn.gin_conv`."""
    return G.gin_conv(OPS, params, state, prefix, h, edge_index, edge_attr, node_mask,
                      edge_mask, train, **kw)


def gcn_conv(params, state, prefix, h, edge_index, edge_attr, node_mask, edge_mask, train,
             **kw):
    """See :func:`setwise.tasks.layers.gnn.gcn_conv`."""
    return G.gcn_conv(OPS, params, state, prefix, h, edge_index, edge_attr, node_mask,
                      edge_mask, train, **kw)


def gnn_node(params, state, prefix, x, edge_index, edge_attr, node_mask, edge_mask, **kw):
    """See :func:`setwise.tasks.layers.gnn.gnn_node`."""
    return G.gnn_node(OPS, params, state, prefix, x, edge_index, edge_attr, node_mask,
                      edge_mask, **kw)
