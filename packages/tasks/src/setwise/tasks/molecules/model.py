"""The molecule model of paper 1, section 5.3, described and initialised once, in NumPy.

OGB's ``GNN`` (Hu et al. 2020) with only the global readout varied::

    AtomEncoder -> num_layers x [GCN | GIN conv (local sum | EA) -> BatchNorm -> ReLU -> dropout]
    -> readout (Sum | MHA | PNA | EA) -> Linear(width, num_tasks)

(no ReLU after the last layer, JK = last, no residual, as OGB's defaults). The loss is OGB's
multi-task binary cross-entropy over labelled entries plus EA's auxiliary loss (eq. 5):
``bce + ea_aux_weight * ea_aux + local_aux_weight * local_ea_aux``.

Parameter layout: ``gnn_*`` (:mod:`setwise.tasks.layers.gnn`, prefix ``gnn``), ``readout_*``
(:mod:`setwise.tasks.layers.readout`), ``head_w [width, num_tasks]``, ``head_b``; state: the
batch norms' running statistics.

The forward pass is written once here (:func:`forward`) against a :class:`Backend`; the torch
and JAX models bind it. :func:`reference_predict` binds it to NumPy and the setwise reference
operators: the ground truth of the backend models' predictions.

Notes:
    ``ea_aux`` is the mean of eq. 5 over the batch's real graphs; ``local_ea_aux`` is, per
    node, eq. 5 summed over the layers, then the mean over real nodes (the paper does not say
    how it combines the layers' auxiliary losses). Padding graphs and nodes never enter a
    loss, a statistic or a log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from setwise.tasks.layers import gnn as G
from setwise.tasks.layers.mlp import init_linear
from setwise.tasks.layers.readout import ReadoutSpec, init_readout
from setwise.tasks.molecules.metrics import masked_bce


@dataclass(frozen=True)
class MoleculeSpec:
    """Sizes and options of the model.

    Attributes:
        num_tasks: binary targets per molecule (molpcba 128, moltox21 12, molbace 1).
        gnn: ``gcn`` or ``gin``.
        width: node embedding width (paper 300).
        num_layers: convolutions (paper 5).
        drop_rate: dropout after every layer in training (OGB 0.5).
        readout: the global readout (paper: EA with hidden ``[600, 300, 32]``, 15 steps).
        local: neighbour aggregation in every convolution, ``sum`` or ``ea``.
        local_ea_steps: inner steps of the local EA (paper 15).
        local_ea_hidden: the local EA's potential sizes (default ``[2w, w, 32]``).
        ea_aux_weight: weight of the readout EA's auxiliary loss (appendix D.2: 1).
        local_aux_weight: weight of the local EA's auxiliary loss (appendix D.2: 1e-4).
    """

    num_tasks: int
    gnn: str
    width: int
    num_layers: int
    drop_rate: float
    readout: ReadoutSpec
    local: str = "sum"
    local_ea_steps: int = 15
    local_ea_hidden: tuple[int, ...] | None = None
    ea_aux_weight: float = 1.0
    local_aux_weight: float = 1e-4


def init_model(spec: MoleculeSpec, seed: int, dtype="float32"):
    """``(params, state)`` of ``spec`` drawn from ``seed`` (layout: module docstring)."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    state: dict[str, np.ndarray] = {}
    G.init_gnn_node(rng, params, state, "gnn", spec.gnn, spec.width, spec.num_layers,
                    local=spec.local, ea_hidden=spec.local_ea_hidden,
                    ea_step_size=spec.readout.ea_step_size, dtype=dtype)
    init_readout(rng, params, "readout", spec.readout, dtype)
    init_linear(rng, params, "head", spec.readout.width, spec.num_tasks, dtype)
    return params, state


@dataclass(frozen=True)
class Backend:
    """What :func:`forward` needs from one array framework.

    Attributes:
        gnn_ops: :class:`setwise.tasks.layers.gnn.Ops` of the backend.
        readout: the backend's ``layers.<backend>.readout.readout``.
        xp: ``numpy``, ``torch`` or ``jax.numpy`` (the loss's arithmetic).
    """

    gnn_ops: G.Ops
    readout: Callable
    xp: Any


def forward(be: Backend, spec: MoleculeSpec, params: Mapping, state: Mapping, batch: Mapping,
            rng, train: bool):
    """``(logits [G, num_tasks], logs, state updates)`` of a padded batch (see
    :mod:`setwise.tasks.molecules.data`)."""
    num_graphs = batch["graph_mask"].shape[0]
    h, updates, logs = G.gnn_node(
        be.gnn_ops, params, state, "gnn", batch["x"], batch["edge_index"], batch["edge_attr"],
        batch["node_mask"], batch["edge_mask"], gnn=spec.gnn, num_layers=spec.num_layers,
        train=train, rng=rng, drop_rate=spec.drop_rate, local=spec.local,
        ea_steps=spec.local_ea_steps)
    node_weight = be.gnn_ops.to_float(batch["node_mask"], h)
    logs = {k: (v * node_weight).sum() / node_weight.sum() for k, v in logs.items()}
    pooled, readout_logs = be.readout(params, "readout", spec.readout, h,
                                      index=batch["node_graph"], num_sets=num_graphs,
                                      set_mask=be.gnn_ops.to_float(batch["graph_mask"], h))
    logits = pooled @ params["head_w"] + params["head_b"]
    return logits, {**logs, **readout_logs}, updates


def loss(be: Backend, spec: MoleculeSpec, params, state, batch, rng, train):
    """The protocol's ``loss``: ``(total, logs, new state)`` (module docstring)."""
    logits, logs, updates = forward(be, spec, params, state, batch, rng, train)
    bce = masked_bce(logits, batch["y"], batch["graph_mask"], be.xp)
    total = bce
    if "ea_aux" in logs:
        total = total + spec.ea_aux_weight * logs["ea_aux"]
    if "local_ea_aux" in logs:
        total = total + spec.local_aux_weight * logs["local_ea_aux"]
    new_state = {**state, **updates} if train else state
    return total, {"bce": bce, **logs}, new_state


def predict(be: Backend, spec: MoleculeSpec, params, state, batch, rng):
    """The protocol's ``predict``: ``{"logits": [G, num_tasks]}`` plus EA's diagnostics
    (scalars, means over the batch's real graphs / nodes) in evaluation mode."""
    logits, logs, _ = forward(be, spec, params, state, batch, rng, False)
    return {"logits": logits, **logs}


def reference_predict(spec: MoleculeSpec, params, state, batch) -> dict:
    """:func:`predict` in NumPy with the setwise reference operators (float64 ground truth)."""
    import setwise.reference as ref
    from setwise.tasks.layers import readout as R

    def readout(params, prefix, rspec, x, mask=None, **kw):
        return R.readout(ref, params, prefix, rspec, x, mask, **kw)

    be = Backend(G.NUMPY_OPS, readout, np)
    return predict(be, spec, params, state, batch, None)
