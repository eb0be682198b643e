"""The task-model measures catch what they claim to catch (e3nn's habit: test the checker).

Each property of ``test_task_models.py`` runs here on a real task model broken in exactly the
way it looks for, and must report a large error: an order-dependent readout, a padding leak
(on a dense set and on a graph's nodes and edges), batch statistics used in evaluation,
gradients that depend on the elements' order, a backend 1e-6 off, an undeclared output, a
task without a declaration. The measures are NumPy functions of a ``predict``/``grads``
closure, the same for either backend: the broken models run on torch.
"""

from __future__ import annotations

import numpy as np
import pytest

from conformance import test_task_models as suite
from conformance.model_checks import (
    backend_disagreement,
    companion_error,
    gradient,
    gradient_permutation_error,
    padding_error,
    permutation_error,
    predictor,
    undeclared_outputs,
)
from conformance.set_batches import permute, take_sets
from setwise.tasks.registry import Task
from setwise.tasks.symmetries import SetAxis, Symmetries

BROKEN = 1e-3  # every broken model below is off by far more; a correct one by < 1e-9


class Broken:
    """A task model whose ``predict`` / ``loss`` output is passed through ``edit``."""

    def __init__(self, inner, predict=None, loss=None):
        self.inner, self._predict, self._loss = inner, predict, loss

    def predict(self, params, state, batch, rng):
        out = dict(self.inner.predict(params, state, batch, rng))
        return self._predict(out, batch) if self._predict else out

    def loss(self, params, state, batch, rng, train):
        total, logs, new_state = self.inner.loss(params, state, batch, rng, train)
        if self._loss:
            total = self._loss(total, params, batch)
        return total, logs, new_state


def broken_predict(name, edit, backend="torch"):
    """``(symmetries, predict, first evaluation batch)`` of ``name``'s tiny model with
    ``edit(outputs, batch)`` applied to its predictions."""
    _, _, sym, params, state, batches = suite.setup(name, ())
    model = Broken(suite.model(name, (), backend), predict=edit)
    return sym, predictor(model, backend, params, state), batches[0]


def rng():
    return np.random.default_rng(0)


def test_order_dependent_readout_is_caught():
    """Median's prediction plus the first slot of each set."""
    sym, predict, batch = broken_predict(
        "median", lambda out, b: {"y": out["y"] + b["x"][:, 0, 0]})
    assert permutation_error(predict, batch, sym, sym.sets[0], rng()) > BROKEN


@pytest.mark.parametrize("axis, key", [(0, "x"), (1, "edge_index")])
def test_order_dependent_graph_readout_is_caught(axis, key):
    """Molecules' logits plus the first node's first feature / the first edge's source."""
    sym, predict, batch = broken_predict(
        "molecules", lambda out, b: {**out, "logits": out["logits"] + b[key][0, 0]})
    assert permutation_error(predict, batch, sym, sym.sets[axis], rng()) > BROKEN


def test_padding_leak_is_caught():
    """Median's prediction plus the sum over every slot, padding included."""
    sym, predict, batch = broken_predict(
        "median", lambda out, b: {"y": out["y"] + b["x"].sum((1, 2))})
    assert padding_error(predict, batch, sym, sym.sets[0], rng()) > BROKEN


def test_graph_padding_leak_is_caught():
    """Molecules' logits plus the count of node slots (padding included)."""
    sym, predict, batch = broken_predict(
        "molecules", lambda out, b: {**out, "logits": out["logits"] + 0.01 * b["x"].shape[0]})
    assert padding_error(predict, batch, sym, sym.sets[0], rng()) > BROKEN


class BatchStatisticsInEvaluation:
    """Omniglot counting's model predicting with batch norm's batch statistics (train=True)."""

    def __init__(self, inner):
        self.inner = inner

    def predict(self, params, state, batch, rng):
        return {"logits": self.inner.forward(params, state, batch["x"], batch["mask"], True)[0]}


def test_batch_statistics_in_evaluation_are_caught():
    name = "omniglot-counting"
    _, _, sym, params, state, batches = suite.setup(name, ())
    model = BatchStatisticsInEvaluation(suite.model(name, (), "torch"))
    predict = predictor(model, "torch", params, state)
    assert companion_error(predict, batches[0], sym, rng()) > BROKEN
    correct = predictor(suite.model(name, (), "torch"), "torch", params, state)
    assert companion_error(correct, batches[0], sym, rng()) < 1e-9


def test_order_dependent_gradients_are_caught():
    """Median's loss plus a term in the first slot of each set: gradients change with order."""
    task, config, sym, params, state, _ = suite.setup("median", ())
    model = Broken(suite.model("median", (), "torch"),
                   loss=lambda total, p, b: total + (p["head_0_b"] * b["x"][:, 0, 0].mean()).sum())
    grads = gradient(model, "torch", params, state)
    batch = task.train_batch(config, 0)
    assert gradient_permutation_error(grads, batch, sym, sym.sets[0], rng()) > BROKEN


def test_per_slot_noise_breaks_lemma1():
    """Molecules' dropout draws its noise per node slot: it declares no Lemma 1, rightly."""
    task, config, sym, params, state, _ = suite.setup("molecules", ())
    assert not sym.lemma1
    grads = gradient(suite.model("molecules", (), "torch"), "torch", params, state)
    batch = task.train_batch(config, 0)
    assert gradient_permutation_error(grads, batch, sym, sym.sets[0], rng()) > BROKEN


def test_backend_disagreement_is_caught():
    """The JAX model of median with its loss 1e-6 relative off."""
    task, config, _, params, state, _ = suite.setup("median", ())
    models = {"torch": suite.model("median", (), "torch"),
              "jax": Broken(suite.model("median", (), "jax"),
                            loss=lambda total, p, b: total * (1 + 1e-6))}
    row = backend_disagreement("median", models, params, state, task.train_batch(config, 0))
    assert not row.ok and any("grad" in f for f in row.failures)


def test_undeclared_output_is_caught():
    sym, predict, batch = broken_predict(
        "median", lambda out, b: {**out, "extra": out["y"]})
    assert undeclared_outputs(sym, predict(batch)) == {"extra"}


def test_task_without_declaration_fails_loudly():
    class Undeclared(Task):
        name = "undeclared"

    with pytest.raises(NotImplementedError, match="'undeclared' declares no symmetries"):
        Undeclared().symmetries({})


def test_correct_measures_are_near_zero_on_a_graph():
    """The same measures on the unbroken molecules model (nodes, edges, companions)."""
    _, _, sym, params, state, batches = suite.setup("molecules", ())
    predict = predictor(suite.model("molecules", (), "torch"), "torch", params, state)
    for axis in sym.sets:
        assert permutation_error(predict, batches[0], sym, axis, rng()) < 1e-9
        assert padding_error(predict, batches[0], sym, axis, rng()) < 1e-9
    assert companion_error(predict, batches[0], sym, rng()) < 1e-9


def test_flat_axis_declaration():
    """A declaration's dense / flat layout is read from which arrays the batch axis holds."""
    sets = SetAxis({"y": 0}, "graph_mask")
    nodes = SetAxis({"x": 0}, "node_mask")
    points = SetAxis({"y": 1})
    sym = Symmetries(sets, (nodes,))
    assert not sym.is_dense(nodes) and sym.is_dense(points)


def _edges(batch):
    """Every real edge as (source atom, target atom, bond, graph) features, sorted."""
    m = batch["edge_mask"]
    src, dst = batch["edge_index"][:, m]
    rows = np.concatenate([batch["x"][src], batch["x"][dst], batch["edge_attr"][m],
                           batch["node_graph"][src][:, None]], 1)
    return sorted(map(tuple, rows.tolist()))


def test_graph_transformations_keep_the_graphs():
    """Permuted nodes carry their edges along; a sub-batch holds exactly its graphs."""
    _, _, sym, _, _, batches = suite.setup("molecules", ())
    batch = batches[0]
    moved = permute(batch, sym, sym.sets[0], rng())
    assert (moved["x"] != batch["x"]).any() and _edges(moved) == _edges(batch)
    part, positions = take_sets(batch, sym, [1])
    real = part["graph_mask"]
    assert real.sum() == 1 and real[positions[0]]
    assert part["node_mask"].sum() == (batch["node_mask"] & (batch["node_graph"] == 1)).sum()
    assert part["edge_mask"].sum() == sum(e[-1] == 1 for e in _edges(batch))
    assert part["edge_index"].max() < len(part["x"])


def test_per_set_noise_breaks_batch_independence():
    """Synthetic's i.i.d. creator draws noise per row of the batch: it declares
    ``per_set_noise``, rightly (the suite then skips batch independence for it)."""
    overrides = (("creator", "iid"),)
    _, _, sym, params, state, batches = suite.setup("synthetic", overrides)
    assert sym.per_set_noise
    predict = predictor(suite.model("synthetic", overrides, "torch"), "torch", params, state)
    assert companion_error(predict, batches[0], sym, rng()) > BROKEN
