"""OGB's molecule GNN layers on PyTorch: :mod:`setwise.tasks.layers.gnn` bound to torch.

Same functions, names and parameter layout as the NumPy family; neighbour sums are PyG's
``torch_geometric.utils.scatter``, local Equilibrium Aggregation is
``setwise.torch_backend.equilibrium_aggregation`` in segment form. Every function takes the
flat parameter mapping (tensors) and returns new batch-norm state as a mapping.
"""

from __future__ import annotations

import torch
from torch_geometric.utils import scatter

from setwise.tasks.layers import gnn as G
from setwise.tasks.layers.torch.batch_norm import batch_norm
from setwise.torch_backend import equilibrium_aggregation


def _segment_sum(data, index, num_segments):
    return scatter(data, index, dim=0, dim_size=num_segments, reduce="sum")


def _ea(params, x, index, num_sets, num_steps):
    return equilibrium_aggregation(params, x, index=index, num_sets=num_sets,
                                   num_steps=num_steps, return_info=True)


OPS = G.Ops(segment_sum=_segment_sum, relu=torch.relu, where=torch.where,
            to_float=lambda m, like: m.to(like.dtype), aggregate_ea=_ea,
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
