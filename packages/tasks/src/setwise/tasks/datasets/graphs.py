"""Graphs as NumPy arrays, and their batches: segments (PyG / jraph style) or dense nodes.

A batch of graphs in segment form is :class:`GraphBatch`; :func:`pad_graph_batch` and
:meth:`Graphs.dynamic_batches` give it the static shapes ``jax.jit`` needs, with jraph's
convention: padding nodes belong to one extra padding graph, padding edges join padding nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from setwise.reference.segments import index_from_ptr
from setwise.tasks.datasets.sets import DenseBatch, RaggedSets, batch_indices


class GraphBatch(NamedTuple):
    """A batch of graphs in segment form.

    Attributes:
        x: ``[num_nodes, node_dim]`` node features.
        edge_index: ``[2, num_edges]`` int64 node indices within the batch.
        edge_attr: ``[num_edges, edge_dim]`` edge features.
        node_graph: ``[num_nodes]`` int64 graph of each node (the segment ``index``).
        y: ``[num_graphs, num_tasks]`` float32 targets (NaN = missing label).
        num_graphs: number of graphs, padding graph included.
        node_mask, edge_mask, graph_mask: ``[num_nodes]``, ``[num_edges]``, ``[num_graphs]``
            bool, True for real entries.
        indices: ``[real graphs]`` dataset rows of the real graphs.
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    node_graph: np.ndarray
    y: np.ndarray
    num_graphs: int
    node_mask: np.ndarray
    edge_mask: np.ndarray
    graph_mask: np.ndarray
    indices: np.ndarray


def _gather(ptr: np.ndarray, indices: np.ndarray):
    """Rows of the segments ``indices`` of a CSR ``ptr``, and the new ``ptr``."""
    sizes = np.diff(ptr)[indices]
    new_ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rows = np.repeat(ptr[indices], sizes) + np.arange(new_ptr[-1]) - np.repeat(new_ptr[:-1], sizes)
    return rows, new_ptr


@dataclass(frozen=True)
class Graphs:
    """Graphs stored back to back (the NumPy counterpart of a PyG ``InMemoryDataset``).

    Attributes:
        x: ``[total_nodes, node_dim]`` node features (OGB: int64, 9 categorical features).
        edge_index: ``[2, total_edges]`` int64, node indices *within each graph*; both
            directions of a bond are stored, as in PyG.
        edge_attr: ``[total_edges, edge_dim]`` edge features (OGB: int64, 3 features).
        node_ptr: ``[num_graphs + 1]`` int64 node offsets.
        edge_ptr: ``[num_graphs + 1]`` int64 edge offsets.
        y: ``[num_graphs, num_tasks]`` float32 labels, NaN where missing.
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    node_ptr: np.ndarray
    edge_ptr: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def num_nodes(self) -> np.ndarray:
        """``[num_graphs]`` int64 nodes per graph."""
        return np.diff(self.node_ptr)

    @property
    def num_edges(self) -> np.ndarray:
        """``[num_graphs]`` int64 directed edges per graph."""
        return np.diff(self.edge_ptr)

    def take(self, indices) -> Graphs:
        """The graphs ``indices``, in that order."""
        indices = np.asarray(indices, np.int64)
        nodes, node_ptr = _gather(self.node_ptr, indices)
        edges, edge_ptr = _gather(self.edge_ptr, indices)
        return Graphs(self.x[nodes], self.edge_index[:, edges], self.edge_attr[edges], node_ptr,
                      edge_ptr, self.y[indices])

    def batch(self, indices) -> GraphBatch:
        """Segment form of the graphs ``indices`` (exact sizes, all masks True)."""
        sub = self.take(indices)
        node_graph = index_from_ptr(sub.node_ptr)
        edge_graph = index_from_ptr(sub.edge_ptr)
        edge_index = sub.edge_index + sub.node_ptr[edge_graph][None, :]
        return GraphBatch(sub.x, edge_index, sub.edge_attr, node_graph, sub.y, len(sub),
                          np.ones(len(sub.x), bool), np.ones(edge_index.shape[1], bool),
                          np.ones(len(sub), bool), np.asarray(indices, np.int64))

    def dense_nodes(self, indices, max_nodes: int | None = None) -> DenseBatch:
        """Node features of the graphs ``indices`` as ``x [batch, max_nodes, d]`` + mask."""
        sub = self.take(indices)
        return RaggedSets(sub.x, sub.node_ptr).dense(max_size=max_nodes)._replace(
            indices=np.asarray(indices, np.int64))

    def batches(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                drop_last: bool = False) -> Iterator[GraphBatch]:
        """Fixed-count batches of graphs in segment form (sizes vary)."""
        for indices in batch_indices(len(self), batch_size, seed, epoch, shuffle, drop_last):
            yield self.batch(indices)

    def dynamic_batches(self, max_graphs: int = 8, max_nodes: int = 1024,
                        max_edges: int | None = None, seed: int = 0, epoch: int = 0,
                        shuffle: bool = True) -> Iterator[GraphBatch]:
        """Batches of static shape, filled greedily (jraph's ``dynamically_batch``).

        Graphs are added in (shuffled) order while the batch holds at most ``max_graphs``
        graphs, ``max_nodes`` nodes and ``max_edges`` edges; each batch is then padded to
        ``max_graphs + 1`` graphs, ``max_nodes + 1`` nodes and ``max_edges`` edges (one
        padding graph with at least one node), so every batch has the same shapes.

        Args:
            max_edges: defaults to ``4 * max_nodes``.
        """
        max_edges = 4 * max_nodes if max_edges is None else max_edges
        too_big = (self.num_nodes > max_nodes) | (self.num_edges > max_edges)
        if too_big.any():
            row = int(np.flatnonzero(too_big)[0])
            raise ValueError(f"dynamic_batches: graph {row} has {self.num_nodes[row]} nodes and "
                             f"{self.num_edges[row]} edges, over max_nodes={max_nodes} / "
                             f"max_edges={max_edges}")
        if len(self) == 0:
            return
        order = next(batch_indices(len(self), len(self), seed, epoch, shuffle))
        nodes, edges = self.num_nodes[order], self.num_edges[order]
        start = 0
        while start < len(order):
            stop, n, e = start, 0, 0
            while (stop < len(order) and stop - start < max_graphs
                   and n + nodes[stop] <= max_nodes and e + edges[stop] <= max_edges):
                n, e, stop = n + nodes[stop], e + edges[stop], stop + 1
            yield pad_graph_batch(self.batch(order[start:stop]), max_graphs + 1, max_nodes + 1,
                                  max_edges)
            start = stop


def pad_graph_batch(batch: GraphBatch, num_graphs: int, num_nodes: int,
                    num_edges: int) -> GraphBatch:
    """Pad a batch to exactly ``num_graphs`` graphs, ``num_nodes`` nodes, ``num_edges`` edges.

    Padding nodes belong to graph ``batch.num_graphs`` (the first padding graph); padding
    edges join the first padding node to itself; padding features and targets are zero.
    Needs at least one padding graph and one padding node (jraph's convention).
    """
    real_graphs, real_nodes, real_edges = batch.num_graphs, len(batch.x), batch.edge_index.shape[1]
    if num_graphs <= real_graphs or num_nodes <= real_nodes or num_edges < real_edges:
        raise ValueError(f"pad_graph_batch: {real_graphs} graphs / {real_nodes} nodes / "
                         f"{real_edges} edges need num_graphs > {real_graphs}, num_nodes > "
                         f"{real_nodes}, num_edges >= {real_edges}; got {num_graphs} / "
                         f"{num_nodes} / {num_edges}")

    def grow(array, size, fill=0):
        out = np.full((size,) + array.shape[1:], fill, dtype=array.dtype)
        out[:len(array)] = array
        return out

    edge_index = np.full((2, num_edges), real_nodes, np.int64)
    edge_index[:, :real_edges] = batch.edge_index
    return GraphBatch(
        grow(batch.x, num_nodes), edge_index, grow(batch.edge_attr, num_edges),
        grow(batch.node_graph, num_nodes, real_graphs), grow(batch.y, num_graphs), num_graphs,
        np.arange(num_nodes) < real_nodes, np.arange(num_edges) < real_edges,
        np.arange(num_graphs) < real_graphs, batch.indices)
