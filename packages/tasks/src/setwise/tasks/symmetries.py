"""What a task declares about the symmetries of its batches and predictions.

The conformance suite (``conformance/test_task_models.py``) reads a task's declaration
(:meth:`setwise.tasks.registry.Task.symmetries`) and checks, on both backends, that the task's
model has the symmetries of a set function: no per-task code in the suite.

A batch is a mapping of NumPy arrays. A :class:`SetAxis` names the arrays that share one
axis of elements (the points of a set, the nodes or the edges of a graph, the sets of the
batch) and the presence mask of that axis. Two layouts:

- *dense*: every array of the axis is also an array of the batch axis; axis 0 indexes the
  sets, the named axis (1) their slots: ``x [num_sets, max_size, dim]``, ``mask [num_sets,
  max_size]``.
- *flat*: the elements of every set are rows of one array (``x [num_nodes, 9]``); which set
  an element belongs to is an array of the element axis whose *values* are positions on
  another axis (``node_graph`` points into the graph axis, ``edge_index`` into the node
  axis): those arrays are the pointed-to axis's :attr:`SetAxis.pointers`.

Example (a graph batch)::

    graphs = SetAxis({"y": 0, "graph_mask": 0}, "graph_mask", pointers=("node_graph",))
    nodes = SetAxis({"x": 0, "node_graph": 0, "node_mask": 0}, "node_mask",
                    pointers=("edge_index",), name="nodes")
    edges = SetAxis({"edge_index": 1, "edge_attr": 0, "edge_mask": 0}, "edge_mask",
                    name="edges")
    Symmetries(batch=graphs, sets=(nodes, edges), invariant=("logits",))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SetAxis:
    """One axis of elements shared by several batch arrays.

    Attributes:
        arrays: batch key -> the axis of that array that indexes this axis's elements.
        mask: the batch key of the presence mask (True = present), or None: all present.
        pointers: batch keys whose integer *values* are positions on this axis
            (``edge_index`` on the node axis); they are remapped when the axis is permuted.
        resizable: padding slots may be appended (False where the model's shapes are fixed
            by the configuration, e.g. a decoder that creates ``max_size`` points).
        name: for messages (``"nodes"``, ``"points"``).
    """

    arrays: Mapping[str, int]
    mask: str | None = None
    pointers: tuple[str, ...] = ()
    resizable: bool = True
    name: str = "elements"


@dataclass(frozen=True)
class SetOutput:
    """A set-valued prediction ``[num_sets, size, ...]``: rows compared as a set.

    Attributes:
        arrays: predict outputs whose rows (axis 1) are one set's elements, concatenated
            feature-wise (``("points", "presence")``).
        mask: the key (of the predict outputs, else of the batch) of the rows that are the
            set's elements; None: every row.
    """

    arrays: tuple[str, ...]
    mask: str | None = None


@dataclass(frozen=True)
class Symmetries:
    """A task's batch layout and which of its predictions are set functions.

    Attributes:
        batch: the axis of the batch's sets (examples); every invariant and set-valued
            prediction has it as axis 0.
        sets: the axes whose order must not matter (a set's elements; a graph's nodes and
            edges).
        invariant: predict outputs ``[num_sets, ...]`` unchanged by permuting or padding a
            set (a set-level prediction).
        equivariant: set-valued predict outputs, equal as sets (:class:`SetOutput`).
        diagnostics: predict outputs that are statistics of the whole batch (EA's mean inner
            gradient norm): exempt from the checks.
        lemma1: with the step's noise fixed, the parameter gradients of the training loss
            are identical for a batch and any permutation of its sets' elements (paper 2,
            Lemma 1; also true of an invariant model without per-element noise). False
            where the training step draws noise per element slot (dropout per node).
        per_set_noise: evaluation draws noise per row of the batch (an i.i.d. set creator):
            a set's prediction depends on its row's draw, so batch independence holds in
            distribution only and is not checked with fixed noise.
        notes: why a property is not declared.
    """

    batch: SetAxis
    sets: tuple[SetAxis, ...]
    invariant: tuple[str, ...] = ()
    equivariant: tuple[SetOutput, ...] = ()
    diagnostics: tuple[str, ...] = ()
    lemma1: bool = False
    per_set_noise: bool = False
    notes: str = field(default="")

    def declared_outputs(self) -> set[str]:
        """Every predict output named by the declaration (a set-valued output's mask
        included)."""
        names = set(self.invariant) | set(self.diagnostics)
        for out in self.equivariant:
            names |= set(out.arrays) | ({out.mask} if out.mask else set())
        return names

    def is_dense(self, axis: SetAxis) -> bool:
        """True when ``axis`` is a dense set axis (every array also on the batch axis)."""
        return all(k in self.batch.arrays for k in axis.arrays)


def dense_sets(batch_keys: Mapping[str, int], set_keys: tuple[str, ...], mask: str | None,
               *, resizable: bool = True, name: str = "elements") -> tuple[SetAxis, SetAxis]:
    """``(batch axis, set axis)`` of a dense batch: ``batch_keys`` (key -> axis of the sets,
    0) and ``set_keys``, arrays ``[num_sets, max_size, ...]`` sharing the slot axis 1."""
    return (SetAxis(dict(batch_keys)),
            SetAxis({k: 1 for k in set_keys}, mask, resizable=resizable, name=name))
