"""The molecules task (paper 1, section 5.3): metric, data, GNN layers, model vs reference.

The cross-backend loss / gradient check, training and resume are in test_every_task.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from setwise.tasks.config import resolve
from setwise.tasks.datasets.errors import MissingDataError
from setwise.tasks.layers import gnn as G
from setwise.tasks.molecules import data
from setwise.tasks.molecules.metrics import masked_bce, ogb_metric
from setwise.tasks.molecules.model import reference_predict
from setwise.tasks.molecules.task import MoleculesTask, ea_hidden


@pytest.fixture(scope="module")
def task():
    return MoleculesTask()


@pytest.fixture(scope="module")
def tiny(task, data_dir):
    try:
        config = resolve(task, "tiny", {"data_dir": str(data_dir)})
        task.train_batch(config, 0)
    except MissingDataError as error:
        pytest.skip(f"ogbg-molbace not available: {error}")
    return config


# --- metric -------------------------------------------------------------------------------

def test_ogb_metric_on_hand_made_scores():
    y = np.array([[1, 0], [0, np.nan], [1, 1], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 5.0], [0.1, 0.8], [0.3, 0.4]])
    # task 0: positives {0.9, 0.1}, negatives {0.2, 0.3}: 2 of 4 pairs ordered -> 0.5
    # task 1 (row 1 missing): positive {0.8} above negatives {0.1, 0.4} -> 1.0
    assert ogb_metric("ogbg-moltox21", np.pad(y, ((0, 0), (0, 10)), constant_values=np.nan),
                      np.pad(scores, ((0, 0), (0, 10)))) == pytest.approx(0.75)
    # average precision: ranking 0.9 (pos), 0.3, 0.2, 0.1 (pos) -> (1 + 2/4) / 2
    ap = ogb_metric("ogbg-molmuv", np.pad(y[:, :1], ((0, 0), (0, 16)), constant_values=np.nan),
                    np.pad(scores[:, :1], ((0, 0), (0, 16))))
    assert ap == pytest.approx(0.75)


def test_ogb_metric_without_both_classes_is_nan():
    assert np.isnan(ogb_metric("ogbg-molbace", np.ones((3, 1)), np.zeros((3, 1))))


def test_masked_bce_ignores_missing_labels_and_padding_graphs():
    y = np.array([[1, np.nan], [0, 1], [1, 1]], np.float32)
    logits = np.array([[2.0, 1.0], [-1.0, 3.0], [0.5, -2.0]])
    mask = np.array([True, True, False])
    softplus = np.logaddexp(0, np.array([-2.0, -1.0, -3.0]))
    assert masked_bce(logits, y, mask, np) == pytest.approx(softplus.mean())
    nothing = masked_bce(logits, np.full_like(y, np.nan), mask, np)
    assert nothing == 0 and np.isfinite(nothing)


# --- data ---------------------------------------------------------------------------------

def test_batches_are_pure_fixed_shape_and_cover_an_epoch(task, tiny):
    first = task.train_batch(tiny, 7)
    again = MoleculesTask().train_batch(tiny, 7)
    assert all(np.array_equal(first[k], again[k], equal_nan=True) for k in first)
    shapes = {k: v.shape for k, v in first.items()}
    room = data.budget(data.load(tiny["dataset"], tiny["data_dir"]).graphs, tiny)
    assert shapes["x"] == (room.nodes, 9) and shapes["edge_index"] == (2, room.edges)
    assert shapes["y"] == (room.graphs, 1)
    stream = task._stream(tiny)
    epoch = stream.epoch(0)
    rows = np.sort(np.concatenate(epoch))
    assert np.array_equal(rows, np.arange(len(stream.graphs)))  # every graph once per epoch
    for step in (0, len(epoch) - 1, len(epoch), len(epoch) + 3):
        b = task.train_batch(tiny, step)
        assert {k: v.shape for k, v in b.items()} == shapes
        assert b["graph_mask"].sum() <= tiny["max_graphs"]
        assert b["node_mask"].sum() <= tiny["max_nodes"]
        # padding: nodes in a padding graph, edges on padding nodes only
        assert not b["graph_mask"][b["node_graph"][~b["node_mask"]]].any()
        assert np.all(~b["node_mask"][b["edge_index"][:, ~b["edge_mask"]]])


def test_fixed_batching_budget_bounds_every_batch(task, tiny):
    config = {**tiny, "batching": "fixed", "batch_size": 5}
    for step in range(0, 400, 37):
        b = task.train_batch(config, step)
        assert b["graph_mask"].sum() == 5 and b["y"].shape[0] == 6


def test_eval_batches_tag_validation_then_test(task, tiny):
    batches = task.eval_batches(tiny)
    split = np.concatenate([b["split"] for b in batches])
    graph_mask = np.concatenate([b["graph_mask"] for b in batches])
    assert np.array_equal(split >= 0, graph_mask)
    assert (split == 0).sum() == tiny["eval_limit"] == (split == 1).sum()


def test_dynamic_packing_is_greedy_within_limits():
    nodes = np.array([5, 5, 5, 9, 1])
    edges = 2 * nodes
    plan = data.pack(nodes, edges, np.arange(5), data.Budget(3, 11, 40))
    assert [list(p) for p in plan] == [[0, 1], [2], [3, 4]]
    with pytest.raises(ValueError, match="molecules: graph 3"):
        data.pack(nodes, edges, np.arange(5), data.Budget(3, 9, 40))


# --- layers and model -----------------------------------------------------------------------

def test_ogb_feature_vocabularies():
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

    assert tuple(get_atom_feature_dims()) == G.ATOM_DIMS
    assert tuple(get_bond_feature_dims()) == G.BOND_DIMS


def _toy_graph():
    # a triangle 0-1-2 and a pendant 3 on 2, both directions; one padding edge on node 4
    src = np.array([0, 1, 1, 2, 2, 0, 2, 3, 4])
    dst = np.array([1, 0, 2, 1, 0, 2, 3, 2, 4])
    x = np.zeros((5, 9), np.int64)
    x[:, 0] = [5, 6, 7, 8, 0]
    edge_attr = np.zeros((9, 3), np.int64)
    edge_attr[:, 0] = [1, 1, 2, 2, 0, 0, 3, 3, 0]
    node_mask = np.array([True] * 4 + [False])
    edge_mask = np.array([True] * 8 + [False])
    return x, np.stack([src, dst]), edge_attr, node_mask, edge_mask


def test_gcn_conv_matches_ogb_formula():
    params, state = {}, {}
    G.init_conv(0, params, state, "c", "gcn", 4, dtype="float64")
    h = np.random.default_rng(1).normal(size=(5, 4))
    x, edge_index, edge_attr, node_mask, edge_mask = _toy_graph()
    out, _, _ = G.gcn_conv(G.NUMPY_OPS, params, state, "c", h, edge_index, edge_attr,
                           node_mask, edge_mask, True)
    lin = h @ params["c_w"] + params["c_b"]
    deg = np.array([2, 2, 3, 1]) + 1.0
    expect = np.maximum(lin[:4] + params["c_root"], 0) / deg[:, None]
    for (j, i), attr in zip(edge_index[:, :8].T, edge_attr[:8]):
        bond = sum(params[f"c_bond_{k}"][attr[k]] for k in range(3))
        expect[i] += np.maximum(lin[j] + bond, 0) / np.sqrt(deg[i] * deg[j])
    np.testing.assert_allclose(out[:4], expect, rtol=1e-12)


def test_gin_conv_matches_ogb_formula_in_eval_mode():
    params, state = {}, {}
    G.init_conv(0, params, state, "c", "gin", 4, dtype="float64")
    params["c_eps"] = np.asarray(0.3)
    h = np.random.default_rng(1).normal(size=(5, 4))
    x, edge_index, edge_attr, node_mask, edge_mask = _toy_graph()
    out, new_state, _ = G.gin_conv(G.NUMPY_OPS, params, state, "c", h, edge_index, edge_attr,
                                   node_mask, edge_mask, False)
    assert new_state == {}
    agg = np.zeros((4, 4))
    for (j, i), attr in zip(edge_index[:, :8].T, edge_attr[:8]):
        agg[i] += np.maximum(h[j] + sum(params[f"c_bond_{k}"][attr[k]] for k in range(3)), 0)
    z = (1.3 * h[:4] + agg) @ params["c_mlp_0_w"] + params["c_mlp_0_b"]
    z = z / np.sqrt(1 + 1e-5)  # running statistics mean 0, var 1 at initialisation
    expect = np.maximum(z, 0) @ params["c_mlp_1_w"] + params["c_mlp_1_b"]
    np.testing.assert_allclose(out[:4], expect, rtol=1e-10)


def test_local_ea_aggregates_only_real_incoming_messages():
    params, state = {}, {}
    G.init_conv(0, params, state, "c", "gin", 4, local="ea", ea_hidden=(8, 4, 3),
                dtype="float64")
    x, edge_index, edge_attr, node_mask, edge_mask = _toy_graph()
    msgs = np.random.default_rng(3).normal(size=(9, 4))
    agg, logs = G.aggregate_neighbours(G.NUMPY_OPS, params, "c", msgs, edge_index[1],
                                       edge_mask, 5, local="ea", ea_steps=3)
    from setwise.reference import equilibrium_aggregation

    own = G.sub_params(params, "c_ea")
    node2 = equilibrium_aggregation(own, msgs[[2, 5, 7]], index=np.zeros(3, int), num_sets=1,
                                    num_steps=3)
    np.testing.assert_allclose(agg[2], node2[0], rtol=1e-12)
    np.testing.assert_allclose(agg[4], 0)  # the padding edge went to the dropped set
    assert logs["ea_aux"].shape == (5,)


def test_prediction_does_not_depend_on_batch_companions(task, tiny):
    config = {**tiny, "aggregator": "ea", "local_aggregator": "ea"}
    spec = task.spec(config)
    params, state = task.init_params(config, "float64"), task.init_state(config, "float64")
    graphs = task._split(config, "valid")
    room = task._budget(config)
    alone = data.to_batch(graphs, np.array([3]), room)
    together = data.to_batch(graphs, np.array([0, 3, 5]), room)
    a = reference_predict(spec, params, state, alone)["logits"][0]
    b = reference_predict(spec, params, state, together)["logits"][1]
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_paper_preset_sizes(task):
    paper = resolve(task, "paper", {})
    assert (paper["dataset"], paper["width"], paper["num_layers"]) == ("ogbg-molpcba", 300, 5)
    assert (paper["ea_steps"], paper["local_ea_steps"]) == (15, 15)
    assert (paper["max_graphs"], paper["max_nodes"], paper["batching"]) == (8, 1024, "dynamic")
    assert (paper["ea_aux_weight"], paper["local_aux_weight"]) == (1.0, 1e-4)
    assert ea_hidden(300, 1.0) == (600, 300, 32)


def test_every_combination_is_a_check_variant(task, tiny):
    variants = task.check_variants(tiny)
    combos = {(v["gnn"], v["aggregator"], v["local_aggregator"]) for v in variants}
    assert len(combos) == 2 * 4 * 2


# --- ogbg-molpcba (the paper preset) on an official-layout fixture ----------------------------

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN(CC)CC", "O=C=O", "c1ccncc1", "CC(C)O",
          "C1CCCCC1", "CCOC(=O)C", "c1ccc2ccccc2c1", "NC(=O)N", "CC#N"]


@pytest.fixture
def molpcba_fixture(tmp_path, monkeypatch):
    """ogbg-molpcba's layout (mapping/mol.csv.gz with 128 tasks, scaffold split) for 12
    molecules; the official-size check is pointed at the fixture's sizes."""
    import pandas as pd

    from setwise.tasks.datasets import ogbg

    folder = tmp_path / "data" / "ogb" / "ogbg_molpcba"
    (folder / "mapping").mkdir(parents=True)
    (folder / "split" / "scaffold").mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (len(SMILES), 128)).astype(float)
    labels[rng.random(labels.shape) < 0.3] = np.nan
    table = pd.DataFrame(labels, columns=[f"PCBA-{i}" for i in range(128)])
    table["smiles"], table["mol_id"] = SMILES, [f"m{i}" for i in range(len(SMILES))]
    table.to_csv(folder / "mapping" / "mol.csv.gz", index=False)
    for name, rows in (("train", range(8)), ("valid", range(8, 10)), ("test", range(10, 12))):
        pd.DataFrame(list(rows)).to_csv(folder / "split" / "scaffold" / f"{name}.csv.gz",
                                        header=False, index=False)
    monkeypatch.setitem(ogbg.OFFICIAL_SIZES, "ogbg-molpcba", (12, (8, 2, 2)))
    monkeypatch.setenv("SETWISE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


def test_paper_preset_on_molpcba_fixture(task, molpcba_fixture):
    import torch

    from setwise.tasks.rng import NumpyRng

    config = resolve(task, "paper", {"data_dir": str(molpcba_fixture)})
    batch = task.train_batch(config, 0)
    assert batch["y"].shape == (9, 128) and batch["x"].shape == (1025, 9)
    assert batch["graph_mask"].sum() == 8  # the 8 training molecules fit in one batch
    params = {k: torch.from_numpy(v).requires_grad_() for k, v in task.init_params(config).items()}
    state = {k: torch.from_numpy(v) for k, v in task.init_state(config).items()}
    assert params["readout_potential_0_w"].shape[1] == 600
    model = task.build_model("torch", config)
    loss, logs, new_state = model.loss(params, state, {k: torch.from_numpy(v) for k, v in
                                                       batch.items()},
                                       NumpyRng(0, torch.from_numpy), True)
    loss.backward()
    assert torch.isfinite(loss) and set(new_state) == set(state)
    assert {"bce", "ea_aux", "ea_grad_max_norm"} <= set(logs)
    evaluated = task.evaluate([{"logits": np.zeros((9, 128))}] * 2, task.eval_batches(config))
    assert set(evaluated) == {"valid_metric", "test_metric"}


def test_appendix_e_ablations_have_the_papers_grids(task):
    """E.1 (T, GCN + EA), E.3 (auxiliary weight, GIN + EA), E.4 (potential width, GCN +
    EA) as named ablations with the issue's grids, each a sweep of its own."""
    from setwise.tasks.sweep import grid

    expected = {"inner-steps": ("ea_steps", (1, 2, 5, 10), "gcn"),
                "aux-weight": ("ea_aux_weight", (1e-4, 1e-3, 1e-2, 1e-1, 1.0), "gin"),
                "capacity": ("ea_capacity", (0.1, 0.3, 0.6, 1.0, 1.3), "gcn")}
    assert set(task.ablations) == set(expected)
    for which, (option, values, gnn) in expected.items():
        spec = task.sweep_spec(which)
        assert dict(spec.grid) == {option: values} and len(spec.seeds) >= 2
        configs = grid(task, which=which, seeds=(0,))
        assert [c[option] for c in configs] == list(values)
        assert {(c["gnn"], c["aggregator"], c["local_aggregator"]) for c in configs} == \
            {(gnn, "ea", "sum")}
        assert spec.notes and spec.figure.startswith("appendix E.")
    # E.4 scales the potential's hidden widths [2w, w] (not its output)
    capacity = grid(task, which="capacity", seeds=(0,))
    assert [task.spec(c).readout.ea_hidden for c in capacity] == [
        ea_hidden(64, c) for c in (0.1, 0.3, 0.6, 1.0, 1.3)]
    assert ea_hidden(64, 0.1) == (13, 6, 32) and ea_hidden(64, 1.3) == (166, 83, 32)


def test_ablation_page_from_fake_runs(task, tmp_path):
    """``report_ablation`` writes the mean ± std of the best validation metric and the test
    metric at it per T, the paper's column, EA's diagnostics and the verdict, from runs made
    by hand (the verdict's arithmetic is checked on numbers chosen for it)."""
    import json

    from setwise.tasks.sweep import Run, grid, run_names

    configs = grid(task, which="inner-steps", values={"ea_steps": (1, 10)}, seeds=(0, 1))
    valid = {1: [0.60, 0.62], 10: [0.70, 0.72]}
    runs_dir = tmp_path / "runs"
    runs = []
    for config, run_name in zip(configs, run_names(task, configs)):
        v = valid[config["ea_steps"]][config["seed"]]
        summary = {"best": {"valid_metric": v, "test_metric": v - 0.05, "step": 375},
                   "final": {"valid_metric": v - 0.01, "ea_aux": 0.5 / config["ea_steps"],
                             "ea_grad_max_norm": 0.01, "step": 500},
                   "time": 30.0, "steps_per_second_this_process": 2.0}
        run_dir = runs_dir / run_name
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps(config))
        (run_dir / "summary.json").write_text(json.dumps(summary))
        runs.append(Run(config, summary, [], run_dir))
    # a finished run of another budget in the same folder stays off the page
    other = {**configs[0], "steps": 7}
    (runs_dir / "other").mkdir()
    (runs_dir / "other" / "config.json").write_text(json.dumps(other))
    (runs_dir / "other" / "summary.json").write_text(json.dumps(runs[0].summary))
    md, png = task.report_ablation("inner-steps", runs[:3], tmp_path / "page",
                                   command="setwise sweep molecules:inner-steps")
    text = md.read_text()
    assert md.name == "molecules-inner-steps.md" and png.exists()
    assert "# molecules: appendix E.1" in text and "4 runs on torch" in text
    assert "| 1 | 2 | 0.61 ± 0.014 | 0.56 ± 0.014 | 0.235 | 0.5 ± 0 | 0.01 ± 0 | 2.00 |" in text
    assert "| 10 | 2 | 0.71 ± 0.014 | 0.66 ± 0.014 | 0.268 | 0.05 ± 0 |" in text
    assert "best mean validation at 10 (paper: 10)" in text
    assert "the paper's trend holds at this budget (T = 10 minus T = 1: +0.100" in text
    # the Table 2 page links the ablation pages beside it, with their verdicts
    from setwise.tasks.molecules.report import ablation_links

    links = ablation_links(task, tmp_path / "page")
    assert links[0] == "## Ablations (appendix E)"
    assert links[2].startswith("- [appendix E.1: inner steps T of the EA readout (GCN + EA)]"
                               "(molecules-inner-steps.md): paper: increasing with T")
    assert "Verdict: the paper's trend holds at this budget" in links[2] and len(links) == 4
