"""Batches of OGB molecules for both backends: NumPy dicts of one fixed shape per run.

Two batchings (``--batching``):

- ``dynamic`` (paper 1, section 5.3, jraph's ``dynamically_batch``): graphs are added in
  shuffled order while the batch holds at most ``max_graphs`` graphs and ``max_nodes``
  nodes (and ``4 * max_nodes`` edges); the batch is padded to ``max_graphs + 1`` graphs,
  ``max_nodes + 1`` nodes, ``4 * max_nodes`` edges.
- ``fixed`` (OGB's example: ``batch_size`` graphs, the last partial batch of an epoch
  dropped): padded to ``batch_size + 1`` graphs and, for nodes and edges, the sum over the
  ``batch_size`` largest graphs of the dataset (+ 1 node), a bound no batch exceeds.

Either way every batch of a run has the same shapes (one JAX compilation) and is a pure
function of ``(seed, step)``: step ``s`` is batch ``s - start(e)`` of epoch ``e``, epochs
ordered by ``numpy.random.default_rng([seed, e])``.

A batch is ``{x [N, 9] int64, edge_index [2, E] int64, edge_attr [E, 3] int64, node_graph [N]
int64, node_mask [N], edge_mask [E], graph_mask [G] bool, y [G, num_tasks] float32 (NaN =
missing), split [G] int64}`` with padding as :func:`setwise.tasks.datasets.graphs.pad_graph_batch`
(padding nodes in graph ``G - 1``, padding edges on the first padding node); ``split`` is 0 for
validation, 1 for test, -1 for training and padding graphs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from setwise.tasks.datasets.graphs import Graphs, pad_graph_batch
from setwise.tasks.datasets.ogbg import load_ogb_all
from setwise.tasks.datasets.sets import batch_indices

BATCHINGS = ("dynamic", "fixed")
EVAL_SPLITS = ("valid", "test")


class Budget(NamedTuple):
    """The padded shape of every batch of a run: graphs, nodes, edges (padding included)."""

    graphs: int
    nodes: int
    edges: int


@functools.lru_cache(maxsize=4)
def load(dataset: str, data_dir: str | None = None):
    """The OGB dataset (:class:`setwise.tasks.datasets.ogbg.OgbData`), once per process."""
    return load_ogb_all(dataset, data_dir or None, progress=False)


def budget(graphs: Graphs, config: Mapping) -> Budget:
    """The padded batch shape of ``config``'s batching over ``graphs`` (every split)."""
    if config["batching"] == "dynamic":
        max_nodes = int(config["max_nodes"])
        return Budget(int(config["max_graphs"]) + 1, max_nodes + 1, 4 * max_nodes)
    size = int(config["batch_size"])
    nodes = np.sort(graphs.num_nodes)[::-1][:size].sum()
    edges = np.sort(graphs.num_edges)[::-1][:size].sum()
    return Budget(size + 1, int(nodes) + 1, max(int(edges), 1))


def pack(nodes: np.ndarray, edges: np.ndarray, order: np.ndarray, room: Budget) -> list:
    """Greedy packing of ``order`` (jraph's ``dynamically_batch``): ``[indices]`` per batch, at
    most ``room.graphs - 1`` graphs, ``room.nodes - 1`` nodes, ``room.edges`` edges each."""
    too_big = (nodes[order] > room.nodes - 1) | (edges[order] > room.edges)
    if too_big.any():
        row = int(order[np.flatnonzero(too_big)[0]])
        raise ValueError(f"molecules: graph {row} has {nodes[row]} nodes and {edges[row]} edges, "
                         f"over max_nodes={room.nodes - 1} / max_edges={room.edges}")
    out, start = [], 0
    while start < len(order):
        stop, n, e = start, 0, 0
        while (stop < len(order) and stop - start < room.graphs - 1
               and n + nodes[order[stop]] <= room.nodes - 1
               and e + edges[order[stop]] <= room.edges):
            n, e, stop = n + nodes[order[stop]], e + edges[order[stop]], stop + 1
        out.append(order[start:stop])
        start = stop
    return out


def to_batch(graphs: Graphs, rows: np.ndarray, room: Budget, split: np.ndarray | None = None
             ) -> dict[str, np.ndarray]:
    """The padded batch dict (module docstring) of ``graphs`` rows ``rows``."""
    b = pad_graph_batch(graphs.batch(rows), room.graphs, room.nodes, room.edges)
    tags = np.full(room.graphs, -1, np.int64)
    if split is not None:
        tags[:len(rows)] = split
    return {"x": b.x, "edge_index": b.edge_index, "edge_attr": b.edge_attr,
            "node_graph": b.node_graph, "node_mask": b.node_mask, "edge_mask": b.edge_mask,
            "graph_mask": b.graph_mask, "y": b.y.astype(np.float32), "split": tags}


class TrainStream:
    """Training batches of one run as a pure function of ``step``.

    Args:
        graphs: the training graphs.
        room: the batch budget.
        seed: orders the epochs.
        batching: ``dynamic`` or ``fixed``.
    """

    def __init__(self, graphs: Graphs, room: Budget, seed: int, batching: str):
        self.graphs, self.room, self.seed, self.batching = graphs, room, seed, batching
        self._starts = [0]  # first step of each epoch planned so far
        self._epoch, self._plan = -1, []

    def epoch(self, epoch: int) -> list:
        """Row indices of every batch of ``epoch``."""
        if epoch != self._epoch:
            size = self.room.graphs - 1
            if self.batching == "fixed":
                self._plan = list(batch_indices(len(self.graphs), size, self.seed, epoch,
                                                drop_last=len(self.graphs) >= size))
            else:
                order = next(batch_indices(len(self.graphs), len(self.graphs), self.seed, epoch))
                self._plan = pack(self.graphs.num_nodes, self.graphs.num_edges, order, self.room)
            self._epoch = epoch
        return self._plan

    def locate(self, step: int) -> tuple[int, int]:
        """``(epoch, batch within the epoch)`` of ``step``."""
        while self._starts[-1] <= step:
            self._starts.append(self._starts[-1] + len(self.epoch(len(self._starts) - 1)))
        epoch = int(np.searchsorted(self._starts, step, side="right")) - 1
        return epoch, step - self._starts[epoch]

    def batch(self, step: int) -> dict[str, np.ndarray]:
        epoch, k = self.locate(step)
        return to_batch(self.graphs, self.epoch(epoch)[k], self.room)


def eval_batches(graphs_by_split: Mapping[str, Graphs], room: Budget, batching: str,
                 limit: int = 0) -> list[dict]:
    """Validation then test graphs in order (with ``limit``, that many of each, evenly spaced:
    OGB's scaffold splits are sorted, so the first ones can hold a single class), batched as in
    training without shuffling, tagged by ``split``."""
    out = []
    for tag, name in enumerate(EVAL_SPLITS):
        graphs = graphs_by_split[name]
        order = np.arange(len(graphs))
        if limit and limit < len(graphs):
            order = np.unique(np.linspace(0, len(graphs) - 1, limit).round().astype(np.int64))
        if batching == "fixed":
            plan = [order[i:i + room.graphs - 1] for i in range(0, len(order), room.graphs - 1)]
        else:
            plan = pack(graphs.num_nodes, graphs.num_edges, order, room)
        out += [to_batch(graphs, rows, room, np.full(len(rows), tag)) for rows in plan]
    return out
