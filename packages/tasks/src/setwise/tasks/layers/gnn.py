"""OGB's molecule GNNs (Hu et al. 2020, ``examples/graphproppred/mol``): atom and bond encoders,
GCN and GIN convolutions with edge features, and the node-embedding stack ``gnn_node``.

The layer family of paper 1, section 5.3 (Table 2), written once against a small table of
array operations (:class:`Ops`) so the NumPy reference here and the PyTorch / JAX layers
(:mod:`setwise.tasks.layers.torch.gnn`, :mod:`setwise.tasks.layers.jax.gnn`) are the same
function bound to three backends. A graph batch is in segment form with jraph's padding
(``setwise.tasks.datasets.graphs.pad_graph_batch``): ``x [N, 9]`` int atom features,
``edge_index [2, E]`` (message from ``edge_index[0]`` to ``edge_index[1]``), ``edge_attr
[E, 3]`` int bond features, ``node_mask [N]`` / ``edge_mask [E]`` bool (True = real).

Parameter layout (``w`` = width; ``k`` runs over OGB's feature vocabularies,
``ogb.utils.features.get_atom_feature_dims()`` = :data:`ATOM_DIMS`, bond: :data:`BOND_DIMS`):

- atom encoder ``{prefix}_{k} [ATOM_DIMS[k], w]``; bond encoder ``{prefix}_{k} [BOND_DIMS[k], w]``
  (Xavier-uniform, as ``torch.nn.init.xavier_uniform_`` in OGB's ``mol_encoder.py``);
  the embeddings of the features are summed.
- GIN conv ``{p}``: ``{p}_bond_{k}``, ``{p}_eps []`` (0), ``{p}_mlp_0_w [w, 2w]``,
  ``{p}_mlp_0_b``, batch norm ``{p}_mlp_bn_scale / _bn_offset [2w]`` (state
  ``{p}_mlp_bn_mean / _bn_var``), ``{p}_mlp_1_w [2w, w]``, ``{p}_mlp_1_b``.
- GCN conv ``{p}``: ``{p}_bond_{k}``, ``{p}_w [w, w]``, ``{p}_b [w]``, ``{p}_root [w]``.
- local Equilibrium Aggregation (``local="ea"``): ``{p}_ea_*``, the parameters of
  ``init_equilibrium_aggregation(in_dim=w, out_dim=w, hidden=...)``.
- ``gnn_node`` ``{prefix}``: ``{prefix}_atom_{k}``, then per layer ``l``: the conv
  ``{prefix}_{l}_*`` and its batch norm ``{prefix}_{l}_bn_*``.

Batch norm is :mod:`setwise.tasks.layers.batch_norm` with the node mask (padding nodes never
enter a statistic). Linear layers use :func:`setwise.tasks.layers.mlp.init_linear`.

Notes:
    OGB initialises linear layers with torch's default (uniform ``+-1/sqrt(fan_in)``, biases
    too); setwise uses its one rule for every task (truncated normal ``1/sqrt(fan_in)``, zero
    biases). Embeddings are Xavier-uniform as in OGB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from setwise.reference import init_equilibrium_aggregation
from setwise.tasks.layers import batch_norm as bn
from setwise.tasks.layers.mlp import init_linear

#: ``ogb.utils.features.get_atom_feature_dims()`` (ogb 1.3.6), checked by the tests.
ATOM_DIMS = (119, 5, 12, 12, 10, 6, 6, 2, 2)
#: ``ogb.utils.features.get_bond_feature_dims()`` (ogb 1.3.6).
BOND_DIMS = (5, 6, 2)
GNNS = ("gcn", "gin")
LOCAL_AGGREGATORS = ("sum", "ea")


@dataclass(frozen=True)
class Ops:
    """The array operations the layers need, for one backend.

    Attributes:
        segment_sum: ``(data [n, ...], index [n], num_segments) -> [num_segments, ...]``.
        relu: elementwise ``max(x, 0)``.
        where: ``(cond, a, b)``.
        to_float: ``(bool array, like) -> 0/1 array`` of ``like``'s dtype.
        aggregate_ea: ``(params, x [n, d], index [n], num_sets, num_steps) -> (y, info)``,
            the backend's ``equilibrium_aggregation`` in segment form with ``return_info``.
        batch_norm: the backend's ``setwise.tasks.layers.<backend>.batch_norm.batch_norm``.
    """

    segment_sum: Callable
    relu: Callable
    where: Callable
    to_float: Callable
    aggregate_ea: Callable
    batch_norm: Callable


def _as_rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _uniform(rng, shape, bound, dtype):
    return rng.uniform(-bound, bound, shape).astype(dtype)


def init_encoder(rng, params, prefix, dims, width, dtype="float32"):
    """One Xavier-uniform embedding ``{prefix}_{k} [dims[k], width]`` per categorical feature."""
    for k, size in enumerate(dims):
        params[f"{prefix}_{k}"] = _uniform(rng, (size, width), np.sqrt(6 / (size + width)), dtype)


def init_conv(rng, params, state, prefix, gnn, width, *, local="sum", ea_hidden=None,
              ea_step_size=0.125, dtype="float32"):
    """Parameters (and batch-norm state) of one GCN or GIN convolution (layout above)."""
    if gnn not in GNNS:
        raise ValueError(f"init_conv: gnn is {gnn!r}; expected one of {GNNS}")
    if local not in LOCAL_AGGREGATORS:
        raise ValueError(f"init_conv: local is {local!r}; expected one of {LOCAL_AGGREGATORS}")
    rng = _as_rng(rng)
    init_encoder(rng, params, f"{prefix}_bond", BOND_DIMS, width, dtype)
    if gnn == "gin":
        params[f"{prefix}_eps"] = np.zeros((), dtype)
        init_linear(rng, params, f"{prefix}_mlp_0", width, 2 * width, dtype)
        bn.init_batch_norm(params, state, f"{prefix}_mlp", 2 * width, dtype)
        init_linear(rng, params, f"{prefix}_mlp_1", 2 * width, width, dtype)
    else:
        init_linear(rng, params, prefix, width, width, dtype)
        params[f"{prefix}_root"] = _uniform(rng, (width,), np.sqrt(6 / (1 + width)), dtype)
    if local == "ea":
        hidden = tuple(ea_hidden or (2 * width, width, 32))
        ea = init_equilibrium_aggregation(rng, width, width, hidden=hidden,
                                          step_size=ea_step_size, dtype=dtype)
        params.update({f"{prefix}_ea_{k}": v for k, v in ea.items()})


def init_gnn_node(rng, params, state, prefix, gnn, width, num_layers, *, local="sum",
                  ea_hidden=None, ea_step_size=0.125, dtype="float32"):
    """Atom encoder, ``num_layers`` convolutions and their batch norms (layout above)."""
    rng = _as_rng(rng)
    init_encoder(rng, params, f"{prefix}_atom", ATOM_DIMS, width, dtype)
    for layer in range(num_layers):
        init_conv(rng, params, state, f"{prefix}_{layer}", gnn, width, local=local,
                  ea_hidden=ea_hidden, ea_step_size=ea_step_size, dtype=dtype)
        bn.init_batch_norm(params, state, f"{prefix}_{layer}", width, dtype)


def sub_params(params: Mapping, prefix: str) -> dict:
    """The entries ``{prefix}_{name}`` of ``params`` as ``{name: array}``."""
    head = prefix + "_"
    return {k[len(head):]: v for k, v in params.items() if k.startswith(head)}


# --- forward, written once against Ops --------------------------------------------------------

def encode(params, prefix, features, num_features):
    """``sum_k E_k[features[:, k]]``: ``[n, width]`` (OGB's AtomEncoder / BondEncoder)."""
    out = params[f"{prefix}_0"][features[:, 0]]
    for k in range(1, num_features):
        out = out + params[f"{prefix}_{k}"][features[:, k]]
    return out


def aggregate_neighbours(ops, params, prefix, messages, dst, edge_mask, num_nodes, *, local,
                         ea_steps):
    """Each node's incoming ``messages`` summed (``local="sum"``) or aggregated by Equilibrium
    Aggregation (``local="ea"``, ``{prefix}_ea_*``). Padding edges go to an extra set that is
    dropped. Returns ``(agg [num_nodes, w], logs)``; EA's logs are per node ``[num_nodes]``
    (``ea_aux``, ``ea_grad_max_norm``)."""
    index = ops.where(edge_mask, dst, num_nodes)
    if local == "sum":
        return ops.segment_sum(messages, index, num_nodes + 1)[:num_nodes], {}
    y, info = ops.aggregate_ea(sub_params(params, f"{prefix}_ea"), messages, index,
                               num_nodes + 1, ea_steps)
    return y[:num_nodes], {"ea_aux": info.aux_loss[:num_nodes],
                           "ea_grad_max_norm": info.grad_max_norm[:num_nodes]}


def gin_conv(ops, params, state, prefix, h, edge_index, edge_attr, node_mask, edge_mask, train,
             *, local="sum", ea_steps=15):
    """OGB's GINConv: ``MLP((1 + eps) h_i + agg_{j -> i} relu(h_j + e_ji))`` with
    ``MLP = Linear(w, 2w), BatchNorm, ReLU, Linear(2w, w)``. Returns ``(h, new state, logs)``."""
    src, dst = edge_index[0], edge_index[1]
    messages = ops.relu(h[src] + encode(params, f"{prefix}_bond", edge_attr, len(BOND_DIMS)))
    agg, logs = aggregate_neighbours(ops, params, prefix, messages, dst, edge_mask, h.shape[0],
                                     local=local, ea_steps=ea_steps)
    z = (1 + params[f"{prefix}_eps"]) * h + agg
    z = z @ params[f"{prefix}_mlp_0_w"] + params[f"{prefix}_mlp_0_b"]
    z, new_state = ops.batch_norm(params, state, f"{prefix}_mlp", z, train=train, mask=node_mask)
    z = ops.relu(z) @ params[f"{prefix}_mlp_1_w"] + params[f"{prefix}_mlp_1_b"]
    return z, new_state, logs


def gcn_conv(ops, params, state, prefix, h, edge_index, edge_attr, node_mask, edge_mask, train,
             *, local="sum", ea_steps=15):
    """OGB's GCNConv: with ``h' = h W + b``, ``d_i = 1 + deg(i)`` (real edges from ``i``),

    .. math:: h_i \\leftarrow \\mathrm{agg}_{j \\to i} \\frac{\\mathrm{relu}(h'_j + e_{ji})}
              {\\sqrt{d_i d_j}} + \\frac{\\mathrm{relu}(h'_i + r)}{d_i}

    Returns ``(h, {}, logs)``.
    """
    src, dst = edge_index[0], edge_index[1]
    num_nodes = h.shape[0]
    h = h @ params[f"{prefix}_w"] + params[f"{prefix}_b"]
    deg = ops.segment_sum(ops.to_float(edge_mask, h), src, num_nodes) + 1
    norm = (deg[src] * deg[dst]) ** -0.5
    messages = norm[:, None] * ops.relu(h[src] + encode(params, f"{prefix}_bond", edge_attr,
                                                        len(BOND_DIMS)))
    agg, logs = aggregate_neighbours(ops, params, prefix, messages, dst, edge_mask, num_nodes,
                                     local=local, ea_steps=ea_steps)
    return agg + ops.relu(h + params[f"{prefix}_root"]) / deg[:, None], {}, logs


CONVS = {"gcn": gcn_conv, "gin": gin_conv}


def dropout(ops, h, rate, rng):
    """Inverted dropout with ``rng.bernoulli(1 - rate, h.shape)`` (no-op when ``rate == 0``)."""
    if rate == 0:
        return h
    keep = rng.bernoulli(1 - rate, tuple(h.shape))
    return ops.where(keep, h / (1 - rate), 0 * h)


def gnn_node(ops, params, state, prefix, x, edge_index, edge_attr, node_mask, edge_mask, *,
             gnn, num_layers, train, rng=None, drop_rate=0.0, local="sum", ea_steps=15):
    """OGB's ``GNN_node`` (JK = last, no residual): node embeddings ``[N, w]``.

    ``h_0 = AtomEncoder(x)``; for each layer, ``h = BN(conv(h))``, then ReLU (not after the
    last layer) and dropout (train only, through ``rng.bernoulli``).

    Returns:
        ``(h [N, w], {name: new state}, logs)``; with ``local="ea"`` the logs hold, per node
        ``[N]``, ``local_ea_aux`` (eq. 5 summed over the layers) and
        ``local_ea_grad_max_norm`` (the largest over the layers).
    """
    conv = CONVS[gnn]
    h = encode(params, f"{prefix}_atom", x, len(ATOM_DIMS))
    new_state, aux, grad = {}, None, None
    for layer in range(num_layers):
        p = f"{prefix}_{layer}"
        h, conv_state, logs = conv(ops, params, state, p, h, edge_index, edge_attr, node_mask,
                                   edge_mask, train, local=local, ea_steps=ea_steps)
        h, bn_state = ops.batch_norm(params, state, p, h, train=train, mask=node_mask)
        new_state.update(conv_state)
        new_state.update(bn_state)
        if layer < num_layers - 1:
            h = ops.relu(h)
        if train:
            h = dropout(ops, h, drop_rate, rng)
        if logs:
            aux = logs["ea_aux"] if aux is None else aux + logs["ea_aux"]
            g = logs["ea_grad_max_norm"]
            grad = g if grad is None else ops.where(g > grad, g, grad)
    logs = {} if aux is None else {"local_ea_aux": aux, "local_ea_grad_max_norm": grad}
    return h, new_state, logs


# --- NumPy binding (the reference) -----------------------------------------------------------

def _np_segment_sum(data, index, num_segments):
    out = np.zeros((num_segments,) + data.shape[1:], data.dtype)
    np.add.at(out, index, data)
    return out


def _np_ea(params, x, index, num_sets, num_steps):
    from setwise.reference import equilibrium_aggregation

    return equilibrium_aggregation(params, x, index=index, num_sets=num_sets,
                                   num_steps=num_steps, return_info=True)


NUMPY_OPS = Ops(segment_sum=_np_segment_sum, relu=lambda x: np.maximum(x, 0), where=np.where,
                to_float=lambda m, like: np.asarray(m).astype(like.dtype), aggregate_ea=_np_ea,
                batch_norm=bn.batch_norm)
