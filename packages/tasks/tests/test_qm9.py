"""QM9 (paper 2, Table 5): the generation metrics on hand-made molecules, the appendix D.3
matching and loss terms, the Set2Graph layer on three backends, the data pipeline, and
``setwise sample qm9`` writing SMILES and SDF."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from setwise.tasks.datasets.qm9 import atom_scores
from setwise.tasks.layers.mlp import MLPSpec
from setwise.tasks.layers.set2graph import init_set2graph, set2graph
from setwise.tasks.qm9 import data, metrics
from setwise.tasks.qm9 import model as M

C, N, O, F = 0, 1, 2, 3


def graph(atoms, bonds, size=9):
    """Pad one molecule: ``atoms`` types, ``bonds`` ``{(i, j): type}``."""
    a = np.full(size, -1)
    a[:len(atoms)] = atoms
    b = np.zeros((size, size), int)
    for (i, j), t in bonds.items():
        b[i, j] = b[j, i] = t
    return a, b


def stack(*graphs):
    return np.stack([g[0] for g in graphs]), np.stack([g[1] for g in graphs])


ETHANOL = graph([C, C, O], {(0, 1): 1, (1, 2): 1})
PENTAVALENT = graph([C, C, C, C, C, C], {(0, k): 1 for k in range(1, 6)})
TWO_FRAGMENTS = graph([C, O, N], {(0, 1): 2})  # formaldehyde and a lone ammonia
ACETAMIDE = graph([C, C, O, N], {(0, 1): 1, (1, 2): 2, (1, 3): 1})


# --- metrics --------------------------------------------------------------------------------

def test_validity_and_uniqueness_of_hand_made_molecules():
    atoms, bonds = stack(ETHANOL, PENTAVALENT, ETHANOL, TWO_FRAGMENTS)
    got = metrics.generation_metrics(atoms, bonds)
    # valid: ethanol twice and the two fragments; the pentavalent carbon is not
    assert got["validity"] == pytest.approx(3 / 4)
    assert got["uniqueness"] == pytest.approx(2 / 3)  # CCO twice, C=O.N once
    assert got["valid_unique"] == pytest.approx(2 / 4)
    assert got["valid_connected"] == pytest.approx(2 / 4)  # the fragments are not
    smiles = metrics.canonical_smiles(atoms, bonds)
    assert smiles[0] == "CCO" and smiles[1] is None and "." in smiles[3]


def test_to_graphs_thresholds_symmetric_logits_and_pads():
    atoms, bonds = ACETAMIDE
    n = np.array([4])
    atom_logits = np.eye(4)[np.maximum(atoms, 0)][None] * 5
    edge = np.where(bonds > 0, 3.0, -3.0)[None]
    edge[0, 0, 1], edge[0, 1, 0] = 4.0, -1.0  # mean 1.5 > 0: a bond
    kind = (np.eye(4)[bonds][..., 1:] * 5)[None]
    got_atoms, got_bonds = metrics.to_graphs(
        {"atom_logits": atom_logits, "edge_logits": edge, "type_logits": kind}, n)
    np.testing.assert_array_equal(got_atoms[0], atoms)
    np.testing.assert_array_equal(got_bonds[0], bonds)
    assert (got_bonds[0] == got_bonds[0].T).all()


def test_reconstruction_is_up_to_atom_order():
    atoms, bonds = ACETAMIDE
    order = np.array([3, 1, 0, 2, 4, 5, 6, 7, 8])
    permuted = (atoms[order][None], bonds[np.ix_(order, order)][None])
    target = (atoms[None], bonds[None])
    assert metrics.reconstruction(*permuted, *target) == 1.0
    other = stack(graph([C, C, O, N], {(0, 1): 1, (1, 2): 1, (2, 3): 1}))
    assert metrics.reconstruction(*other, *target) == 0.0


# --- matching and loss ----------------------------------------------------------------------

def torch_ops():
    pytest.importorskip("torch")
    from setwise.tasks.qm9.torch_model import TorchOps

    return TorchOps


def perfect_prediction(atoms, bonds, order, scale=30.0):
    """Logits that decode to the molecule with its atoms in ``order`` (creation order)."""
    import torch

    a, b = atoms[order], bonds[np.ix_(order, order)]
    n = int((a >= 0).sum())
    mask = np.arange(9) < n
    pairs = mask[:, None] & mask[None] & ~np.eye(9, dtype=bool)
    out = {"atom_logits": np.where(mask[:, None], np.eye(4)[np.maximum(a, 0)] * scale, 0),
           "edge_logits": np.where(pairs, np.where(b > 0, scale, -scale), 0),
           "type_logits": np.where(pairs[..., None], np.eye(4)[b][..., 1:] * scale, 0),
           "valency": np.where(mask, b.sum(1), 0).astype(float)}
    return {k: torch.tensor(v[None], dtype=torch.float64) for k, v in out.items()}, n


def test_predicted_scores_are_the_appendix_d3_score():
    K = torch_ops()
    import torch

    atoms, bonds = ACETAMIDE
    out, n = perfect_prediction(atoms, bonds, np.arange(9))
    mask = torch.arange(9)[None] < n
    got = M.predicted_scores(K, out, mask).numpy()[0]
    want = atom_scores(atoms[None], bonds[None], atoms[None] >= 0)[0]
    np.testing.assert_allclose(got[:n], want[:n])
    assert (got[n:] == M.PAD_SCORE).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_permuted_perfect_prediction_has_no_loss(seed):
    """The matching undoes any creation order: a prediction of the right molecule in
    another atom order costs (almost) nothing, a wrong atom type does."""
    K = torch_ops()
    import torch

    atoms, bonds = ACETAMIDE  # distinct scores: no ties
    order = np.concatenate([np.random.default_rng(seed).permutation(4), np.arange(4, 9)])
    target = data.pack(_graphs(atoms, bonds), 1)
    batch = {k: torch.as_tensor(v) for k, v in target.items()}
    out, _ = perfect_prediction(atoms, bonds, order)
    terms = M.graph_terms(K, M.QM9Spec(), out, batch)
    for name, value in terms.items():
        assert float(value[0]) < 1e-6, name
    wrong = dict(out)
    wrong["atom_logits"] = out["atom_logits"].roll(1, dims=-1)
    assert float(M.graph_terms(K, M.QM9Spec(), wrong, batch)["atom_ce"][0]) > 1


def _graphs(atoms, bonds):
    from setwise.tasks.datasets.qm9 import MolGraphs, score_order

    g = MolGraphs(atoms[None], bonds[None], atoms[None] >= 0, np.zeros((1, 9), int),
                  np.array(["x"]))
    return g.reorder(score_order(g))


def test_regularisers_are_matching_free():
    """Formula, edges per atom and edge-type distribution compare counts: a prediction
    with the right formula but atoms swapped around keeps them at 0."""
    K = torch_ops()
    import torch

    atoms, bonds = ACETAMIDE
    batch = {k: torch.as_tensor(v) for k, v in data.pack(_graphs(atoms, bonds), 1).items()}
    swapped = graph([C, O, C, N], {(0, 1): 1, (1, 2): 2, (1, 3): 1})  # O in the middle
    out, _ = perfect_prediction(*swapped, np.arange(9))
    terms = M.graph_terms(K, M.QM9Spec(), out, batch)
    for name in ("formula_mse", "edges_mse", "edge_dist_mse"):
        assert float(terms[name][0]) < 1e-6, name
    assert float(terms["edge_bce"][0]) > 1  # the bonds sit elsewhere after the matching


# --- Set2Graph ------------------------------------------------------------------------------

def test_set2graph_is_symmetric_equivariant_and_masked_on_every_backend():
    rng = np.random.default_rng(0)
    spec = MLPSpec((6, 5))
    params: dict = {}
    init_set2graph(rng, params, "s2g", 4, spec, "float64")
    x = rng.standard_normal((2, 5, 4))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    e = set2graph(params, "s2g", spec, x, mask)
    assert e.shape == (2, 5, 5, 5)
    np.testing.assert_allclose(e, np.swapaxes(e, 1, 2))
    assert (e[:, np.arange(5), np.arange(5)] == 0).all() and (e[0, 3:] == 0).all()
    perm = np.array([4, 2, 0, 1, 3])
    ep = set2graph(params, "s2g", spec, x[:, perm], mask[:, perm])
    np.testing.assert_allclose(ep, e[:, perm][:, :, perm], atol=1e-12)
    # a padding row's values do not leak
    x2 = x.copy()
    x2[0, 3:] = 100
    np.testing.assert_allclose(set2graph(params, "s2g", spec, x2, mask)[0], e[0])
    import jax.numpy as jnp
    import torch

    from setwise.tasks.layers.jax.set2graph import set2graph as jax_s2g
    from setwise.tasks.layers.torch.set2graph import set2graph as torch_s2g

    got_t = torch_s2g({k: torch.tensor(v) for k, v in params.items()}, "s2g", spec,
                      torch.tensor(x), torch.tensor(mask)).numpy()
    np.testing.assert_allclose(got_t, e, atol=1e-12)
    got_j = np.asarray(jax_s2g({k: jnp.asarray(v, jnp.float32) for k, v in params.items()},
                               "s2g", spec, jnp.asarray(x, jnp.float32), jnp.asarray(mask)))
    np.testing.assert_allclose(got_j, e, atol=1e-5)


# --- data -----------------------------------------------------------------------------------

def test_batches_are_pure_score_ordered_and_unclipped():
    a = data.train_batch(3, 5, 8, 64)
    b = data.train_batch(3, 5, 8, 64)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["atoms"], data.train_batch(4, 5, 8, 64)["atoms"])
    scores = atom_scores(a["atoms"], a["bonds"], a["atoms"] >= 0)
    assert (np.diff(scores, axis=1)[np.isfinite(np.diff(scores, axis=1))] >= 0).all()
    assert a["x"].shape == (72, 9) and a["edge_index"].shape == (2, 8 * 72)
    # the flat encoder input holds exactly the bonds of the dense target
    assert a["edge_mask"].sum() == (a["bonds"] > 0).sum()
    assert (data.molecules("train", 2000).num_atoms == 9).sum() > 1000  # 9 atoms kept


def test_generation_batches_draw_training_sizes():
    batches = data.generation_batches(20, 0, 4, 8, 64)
    n = np.concatenate([b["n"] for b in batches])
    assert len(batches) == 3 and (n[:20] >= 1).all() and (n[20:] == 0).all()
    assert all(bool(b["generate"]) and int(b["part"]) == 1 for b in batches)


# --- sampling -------------------------------------------------------------------------------

def test_sample_writes_smiles_sdf_and_metrics(tmp_path, capsys):
    pytest.importorskip("torch")
    from setwise.tasks import sample
    from setwise.tasks.config import resolve
    from setwise.tasks.registry import get_task
    from setwise.tasks.train import fit

    task = get_task("qm9")
    run_dir = tmp_path / "run"
    fit(task, resolve(task, "tiny", {"steps": 2, "eval_every": 2}), run_dir, device="cpu",
        progress=False, plot=False)
    args = SimpleNamespace(task="qm9", run_dir=run_dir, num=6, seed=0, extrapolation=False,
                           backend=None, device="cpu", out=tmp_path / "out")
    assert sample.run(args) == 0
    lines = (tmp_path / "out" / "generated.smi").read_text().split("\n")[:-1]
    assert len(lines) == 6
    found = json.loads((tmp_path / "out" / "generated_metrics.json").read_text())
    valid = [line for line in lines if line != "INVALID"]
    assert found["validity"] == pytest.approx(len(valid) / 6)
    sdf = (tmp_path / "out" / "generated.sdf").read_text()
    assert sdf.count("$$$$") == len(valid)


# --- results page ---------------------------------------------------------------------------

def _run(creator, valid, unique):
    final = {"validity": valid, "valid_unique": unique, "uniqueness": unique / max(valid, 1e-9),
             "valid_connected": valid / 2, "reconstruction": 0.1}
    return SimpleNamespace(config={"creator": creator, "backend": "torch"},
                           summary={"final": final, "steps": 10, "time": 2.0}, metrics=[])


def test_page_verdict_follows_the_numbers():
    from setwise.tasks.qm9.report import ordering, table5
    from setwise.tasks.qm9.task import PAPER_BASELINES, PAPER_TABLE5

    good = [_run(c, v, v - 0.05) for c, v in (("top_n", 0.6), ("first_n", 0.61),
                                               ("mlp", 0.59), ("iid", 0.3))]
    assert "as in the paper" in ordering(good)
    bad = [_run(c, v, v - 0.05) for c, v in (("top_n", 0.3), ("first_n", 0.61),
                                              ("mlp", 0.59), ("iid", 0.5))]
    assert "does not hold" in ordering(bad)
    table = table5(good, PAPER_TABLE5, PAPER_BASELINES)
    assert "60.0 ± 0.0" in table and "59.9 ± 1.4" in table and "MolGAN" in table


def test_sampled_graphs_follow_the_decoder_distribution():
    """Generation samples atoms, bonds and bond types (the authors' ``generate``): sure
    logits give the most likely graph; even edge logits give about half the pairs bonded,
    always symmetric, never on the diagonal or on padding."""
    atoms, bonds = ACETAMIDE
    n = np.array([4])
    sure = {"atom_logits": np.eye(4)[np.maximum(atoms, 0)][None] * 60,
            "edge_logits": np.where(bonds > 0, 60.0, -60.0)[None],
            "type_logits": (np.eye(4)[bonds][..., 1:] * 60)[None]}
    rng = np.random.default_rng(0)
    got = metrics.to_graphs(sure, n, rng)
    np.testing.assert_array_equal(got[0][0], atoms)
    np.testing.assert_array_equal(got[1][0], bonds)
    even = {"atom_logits": np.zeros((200, 9, 4)), "edge_logits": np.zeros((200, 9, 9)),
            "type_logits": np.zeros((200, 9, 9, 3))}
    a, b = metrics.to_graphs(even, np.full(200, 6), rng)
    assert (b == np.swapaxes(b, 1, 2)).all() and (b[:, np.arange(9), np.arange(9)] == 0).all()
    assert (b[:, 6:] == 0).all() and (a[:, 6:] == -1).all()
    frac = (b[:, :6, :6] > 0).sum() / (200 * 30)
    assert 0.45 < frac < 0.55
    assert set(np.unique(b[b > 0])) == {1, 2, 3} and set(np.unique(a[:, :6])) == {0, 1, 2, 3}
