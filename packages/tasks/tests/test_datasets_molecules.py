"""Synthetic 3-D sets, QM9 graphs and OGB molecules."""

from __future__ import annotations

import gzip
import shutil
import zipfile

import numpy as np
import pytest

from setwise.tasks.datasets import CorruptDataError, MissingDataError, load, ogbg, qm9, synthetic
from setwise.tasks.datasets import cli as data_cli

# --- synthetic molecule-like sets -------------------------------------------------------


def test_synthetic_sets_follow_the_rules_of_appendix_d2(cache_dir):
    train = load("synthetic-molecules", "train", cache_dir=cache_dir)
    test = load("synthetic-molecules", "test", cache_dir=cache_dir)
    assert (len(train), len(test)) == (2000, 500)
    for data in (train, test):
        sizes = data.points.sizes
        assert sizes.min() >= 2 and sizes.max() <= 35
        assert 7.0 < sizes.mean() < 8.0
        assert set(np.unique(data.degree).tolist()) <= {1, 2, 3, 4}
    for i in range(0, 2000, 37):
        points = train.points[i]
        dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        assert dist.min() >= 1.0 - 1e-5
        assert (dist.min(1) < 2.0).all()
        start = train.points.ptr[i]
        np.testing.assert_array_equal((dist < 2.0).sum(1),
                                      train.degree[start:start + len(points)])
    features = train.features
    assert features.x.shape == (train.points.sizes.sum(), 7)
    np.testing.assert_array_equal(features.x[:, 3:].argmax(1) + 1, train.degree)
    batch = next(train.batches(16, same_size=True, seed=2))
    assert batch.x.shape[2] == 7 and batch.mask.all(axis=0).sum() == batch.mask.sum(1)[0]
    assert len(set(batch.mask.sum(1).tolist())) == 1
    extra = train.extrapolation_sizes(5000)
    assert abs(extra.mean() - train.points.sizes.mean() - 10) < 0.5


def test_synthetic_generation_is_deterministic_by_seed():
    config = synthetic.SyntheticConfig(num_train=20, num_test=5)
    a = synthetic.generate(config, seed=1, progress=False)
    b = synthetic.generate(config, seed=1, progress=False)
    c = synthetic.generate(config, seed=2, progress=False)
    np.testing.assert_array_equal(a["positions"], b["positions"])
    assert not np.array_equal(a["ptr"], c["ptr"]) or not np.array_equal(
        a["positions"], c["positions"])
    assert len(a["ptr"]) == 26


def test_synthetic_histograms_are_saved(cache_dir, tmp_path):
    paths = synthetic.save_histograms(tmp_path, cache_dir=cache_dir)
    assert [p.name for p in paths] == ["synthetic_size_histogram.png",
                                       "synthetic_degree_histogram.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


# --- QM9 ---------------------------------------------------------------------------------


def test_qm9_counts_and_encoding(data_dir, cache_dir):
    graphs, rejected = qm9.load_all(data_dir, cache_dir)
    assert len(graphs) == 133_885 and rejected == []
    assert graphs.atoms.shape == (133_885, 9) and graphs.num_atoms.max() == 9
    splits = {s: load("qm9", s, data_dir, cache_dir=cache_dir) for s in ("train", "valid",
                                                                         "test")}
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [113_885, 10_000, 10_000]
    x, e = graphs.atom_one_hot()[:100], graphs.bond_one_hot()[:100]
    assert x.shape == (100, 9, 4) and e.shape == (100, 9, 9, 3)
    np.testing.assert_array_equal(x.sum(-1), graphs.mask[:100])
    np.testing.assert_array_equal(graphs.bonds, graphs.bonds.transpose(0, 2, 1))
    assert not graphs.bonds[~graphs.mask].any()
    segments = graphs.take(np.arange(50)).to_graphs()
    assert segments.x.shape == (graphs.num_atoms[:50].sum(), 4)
    assert segments.edge_index.shape[1] == 2 * (np.triu(graphs.bonds[:50], 1) > 0).sum()
    batch = next(splits["valid"].batches(64, same_size=True))
    assert len(batch) <= 64 and len(set(batch.num_atoms.tolist())) == 1
    first = qm9.check_molecules(graphs.atoms[:1], graphs.bonds[:1])
    from rdkit import Chem

    assert first.smiles[0] == Chem.MolToSmiles(Chem.MolFromSmiles(str(graphs.smiles[0])))


def test_qm9_download_and_missing_file(tmp_path, monkeypatch):
    with pytest.raises(MissingDataError, match="qm9_smiles.txt"):
        qm9.load_all(tmp_path, tmp_path)
    (tmp_path / "src.txt").write_text("CCO\nC1=CC=CC=C1\nCCl\n")
    monkeypatch.setattr(qm9, "URL", (tmp_path / "src.txt").as_uri())
    with pytest.raises(CorruptDataError, match=r"qm9_smiles.txt: corrupt; expected QM9's "
                       r"133,885 SMILES, one per line, found 3 SMILES lines"):
        qm9.load_all(tmp_path / "data", tmp_path / "cache", progress=False, download=True)
    graphs, rejected = qm9.load_all(tmp_path / "data", tmp_path / "cache", progress=False,
                                    check_counts=False)
    assert len(graphs) == 2 and rejected == [(2, "CCl", "atom types ['Cl'] outside C/N/O/F")]
    np.testing.assert_array_equal(graphs.bonds[1, :6, :6].sum(1), [3] * 6)


def test_qm9_cut_short_is_refused_on_load_and_by_setwise_data(data_dir, tmp_path, capsys):
    lines = (data_dir / "qm9" / "qm9_smiles.txt").read_text().splitlines()[:1000]
    (tmp_path / "qm9").mkdir()
    (tmp_path / "qm9" / "qm9_smiles.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptDataError, match=r"qm9_smiles.txt: corrupt.*found 1,000 SMILES"):
        load("qm9", "train", tmp_path, cache_dir=tmp_path / "cache")
    assert data_cli.main(["data", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "qm9                  CORRUPT" in out
    assert "corrupt: 1,000 SMILES lines, expected 133,885" in out
    with pytest.raises(ValueError, match="leave none for split 'train'"):  # no 0/1000/0 split
        qm9.load_qm9("train", tmp_path, tmp_path / "cache", progress=False, check_counts=False)


def test_atom_score_order_of_appendix_d3():
    # N#C-C(=O)F  : atoms N, C, C, O, F  (types 2, 1, 1, 3, 4)
    graphs, _ = qm9.graphs_from_smiles(["N#CC(=O)F"], progress=False)
    scores = qm9.atom_scores(graphs.atoms, graphs.bonds, graphs.mask)[0]
    np.testing.assert_array_equal(scores[:5], [
        2e5 + 1e4 + 3 * 1, 1e5 + 2e4 + 3 * 2 + 1 * 1, 1e5 + 3e4 + 1 * 1 + 2 * 3 + 1 * 4,
        3e5 + 1e4 + 2 * 1, 4e5 + 1e4 + 1 * 1])
    assert np.isinf(scores[5:]).all()
    order = qm9.score_order(graphs)
    assert order[0].tolist()[:5] == [1, 2, 0, 3, 4]
    again = graphs.reorder(order)
    ordered = qm9.atom_scores(again.atoms, again.bonds, again.mask)[0]
    assert (np.diff(ordered[:5]) >= 0).all()
    assert qm9.check_molecules(again.atoms, again.bonds).smiles == \
        qm9.check_molecules(graphs.atoms, graphs.bonds).smiles


def test_validity_and_uniqueness_checker():
    graphs, _ = qm9.graphs_from_smiles(["CCO", "OCC", "C=C"], progress=False)
    atoms, bonds = graphs.atoms.copy(), graphs.bonds.copy()
    bad_atoms = np.array([[1, 2, 2, 2, 2, -1, -1, -1, -1]])
    bad_bonds = np.zeros((1, 9, 9), np.int64)
    bad_bonds[0, 0, 1:5] = bad_bonds[0, 1:5, 0] = 2      # N with four double bonds
    report = qm9.check_molecules(np.concatenate([atoms, bad_atoms]),
                                 np.concatenate([bonds, bad_bonds]))
    assert report.valid.tolist() == [True, True, True, False]
    assert report.validity == 0.75 and report.uniqueness == pytest.approx(2 / 3)
    split = np.zeros((1, 9, 9), np.int64)
    two = np.array([[0, 0, -1, -1, -1, -1, -1, -1, -1]])
    assert qm9.check_molecules(two, split).valid.tolist() == [True]
    assert qm9.check_molecules(two, split, require_connected=True).valid.tolist() == [False]


# --- OGB ---------------------------------------------------------------------------------

OFFICIAL = {"ogbg-molhiv": (41_127, (32_901, 4_113, 4_113)),
            "ogbg-molmuv": (93_087, (74_469, 9_309, 9_309)),
            "ogbg-moltox21": (7_831, (6_264, 783, 784)),
            "ogbg-molbace": (1_513, (1_210, 151, 152)),
            "ogbg-molpcba": (437_929, (350_343, 43_793, 43_793))}


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_ogb_split_counts_equal_provenance(data_dir, name):
    total, sizes = OFFICIAL[name]
    split = ogbg.read_split(ogbg.source_dir(name, data_dir))
    assert tuple(len(split[s]) for s in ogbg.SPLITS) == sizes
    np.testing.assert_array_equal(np.sort(np.concatenate(list(split.values()))),
                                  np.arange(total))


def copy_ogb(data_dir, tmp_path, name):
    source = ogbg.source_dir(name, data_dir)
    target = ogbg.source_dir(name, tmp_path)
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


@pytest.mark.parametrize("cut", ["half", "garbage", "shared"])
def test_ogb_split_file_cut_in_half_is_refused_on_load_and_by_setwise_data(
        data_dir, tmp_path, capsys, cut):
    target = copy_ogb(data_dir, tmp_path, "ogbg-molbace")
    path = target / "split" / "scaffold" / "train.csv.gz"
    rows = gzip.decompress(path.read_bytes()).decode().splitlines()
    if cut == "half":
        rows = rows[:len(rows) // 2]
    elif cut == "shared":  # the right count, but one index also in the test split
        rows[0] = gzip.decompress((path.parent / "test.csv.gz").read_bytes()).decode().split()[0]
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()) if cut != "garbage"
                     else path.read_bytes()[:100])
    with pytest.raises(CorruptDataError, match="split/scaffold/train.csv.gz: corrupt"):
        load("ogbg-molbace", "train", tmp_path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "ogb" / "ogbg_molbace").exists()
    assert data_cli.main(["data", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    if cut != "shared":  # setwise data checks counts; the overlap is found on load
        assert "ogbg-molbace         CORRUPT" in out


def test_ogb_mapping_cut_short_is_refused(data_dir, tmp_path):
    target = copy_ogb(data_dir, tmp_path, "ogbg-moltox21")
    mapping = target / "mapping" / "mol.csv.gz"
    rows = gzip.decompress(mapping.read_bytes()).decode().splitlines()
    mapping.write_bytes(gzip.compress(("\n".join(rows[:500]) + "\n").encode()))
    assert ogbg.mapping_problem("ogbg-moltox21", mapping) == "499 molecules, expected 7,831"
    with pytest.raises(CorruptDataError, match=r"mapping/mol.csv.gz: corrupt; expected 7,831"):
        ogbg.prepare("ogbg-moltox21", tmp_path, tmp_path / "cache", progress=False)


def assert_pyg_equals_numpy(dataset, data):
    graphs = data.graphs
    np.testing.assert_array_equal(dataset._data.x.numpy(), graphs.x)
    np.testing.assert_array_equal(dataset._data.edge_index.numpy(), graphs.edge_index)
    np.testing.assert_array_equal(dataset._data.edge_attr.numpy(), graphs.edge_attr)
    np.testing.assert_array_equal(dataset.slices["x"].numpy(), graphs.node_ptr)
    np.testing.assert_array_equal(dataset.slices["edge_index"].numpy(), graphs.edge_ptr)
    np.testing.assert_allclose(dataset._data.y.numpy().astype(np.float32), graphs.y)
    split = dataset.get_idx_split()
    for s in ogbg.SPLITS:
        np.testing.assert_array_equal(split[s].numpy(), data.split[s])


def test_ogb_tox21_built_from_smiles_counts_rdkit_rejects(data_dir, cache_dir):
    data = ogbg.load_ogb_all("ogbg-moltox21", data_dir, cache_dir, progress=False)
    prepared = data.prepared
    assert prepared.built_from_smiles and prepared.num_source == 7_831
    assert len(prepared.rejected) == 8 and all("Al" in r[2] for r in prepared.rejected)
    assert len(data.graphs) == 7_823 == sum(len(v) for v in data.split.values())
    assert data.graphs.y.shape == (7_823, 12) and np.isnan(data.graphs.y).any()
    rejected_rows = {r[0] for r in prepared.rejected}
    assert not rejected_rows & set(prepared.kept.tolist())
    listing = (prepared.folder / "setwise" / "rejected.csv").read_text().splitlines()
    assert listing[0] == "source_index,split,smiles" and len(listing) == 9
    pytest.importorskip("torch_geometric")
    assert_pyg_equals_numpy(ogbg.pyg_dataset("ogbg-moltox21", data_dir, cache_dir,
                                             progress=False), data)
    batch = next(data.graphs.take(data.split["train"]).dynamic_batches(8, 1024, seed=0))
    assert batch.x.shape == (1025, 9) and batch.edge_index.shape == (2, 4096)
    assert batch.graph_mask.sum() == 8


def test_ogb_bace_native_raw_and_our_smiles_builder_agree(data_dir, cache_dir, tmp_path):
    data = ogbg.load_ogb_all("ogbg-molbace", data_dir, cache_dir, progress=False)
    assert not data.prepared.built_from_smiles and len(data.graphs) == 1_513
    assert [len(data.split[s]) for s in ogbg.SPLITS] == [1_210, 151, 152]
    smiles, labels = ogbg._read_mapping(ogbg.source_dir("ogbg-molbace", data_dir) / "mapping"
                                        / "mol.csv.gz")
    assert ogbg.build_raw(smiles, labels, tmp_path / "raw", progress=False) == []
    ours = ogbg.read_raw(tmp_path / "raw")
    for field in ("x", "edge_index", "edge_attr", "node_ptr", "edge_ptr", "y"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(data.graphs, field))
    pytest.importorskip("torch_geometric")
    assert_pyg_equals_numpy(ogbg.pyg_dataset("ogbg-molbace", data_dir, cache_dir,
                                             progress=False), data)


@pytest.mark.parametrize("name", ["ogbg-molhiv", "ogbg-molmuv"])
def test_ogb_large_folders_build_raw_from_smiles(data_dir, tmp_path, name):
    smiles, labels = ogbg._read_mapping(ogbg.source_dir(name, data_dir) / "mapping"
                                        / "mol.csv.gz")
    assert len(smiles) == OFFICIAL[name][0] and len(labels) == len(smiles)
    rejected = ogbg.build_raw(smiles[:300], labels[:300], tmp_path / "raw", progress=False)
    graphs = ogbg.read_raw(tmp_path / "raw")
    assert len(graphs) == 300 - len(rejected) and graphs.x.shape[1] == 9


@pytest.mark.slow
@pytest.mark.parametrize("name, rejects", [("ogbg-molhiv", 7), ("ogbg-molmuv", 0)])
def test_ogb_large_folders_in_full(full_data, data_dir, cache_dir, name, rejects):
    data = ogbg.load_ogb_all(name, data_dir, cache_dir)
    assert data.prepared.num_source == OFFICIAL[name][0]
    assert len(data.prepared.rejected) == rejects
    assert len(data.graphs) == OFFICIAL[name][0] - rejects
    assert_pyg_equals_numpy(ogbg.pyg_dataset(name, data_dir, cache_dir), data)


def test_ogb_molpcba_without_graphs_is_a_clear_error(data_dir, tmp_path):
    with pytest.raises(MissingDataError) as info:
        load("ogbg-molpcba", "train", data_dir, cache_dir=tmp_path)
    message = str(info.value)
    assert "ogbg_molpcba/mapping/mol.csv.gz" in message and "only split/ exists" in message
    pytest.importorskip("torch_geometric")
    with pytest.raises(MissingDataError):
        ogbg.pyg_dataset("ogbg-molpcba", data_dir, tmp_path)


def test_ogb_download_path_fetches_the_zip(data_dir, tmp_path, monkeypatch):
    source = ogbg.source_dir("ogbg-molbace", data_dir)
    archive = tmp_path / "bace.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in source.rglob("*"):
            if path.is_file():
                handle.write(path, "bace/" + str(path.relative_to(source)))
    monkeypatch.setattr(ogbg, "DOWNLOAD_URL", tmp_path.as_uri() + "/{}.zip")
    empty = tmp_path / "data"
    with pytest.raises(MissingDataError, match="download=True"):
        ogbg.prepare("ogbg-molbace", empty, tmp_path / "cache")
    prepared = ogbg.prepare("ogbg-molbace", empty, tmp_path / "cache", download=True)
    assert (prepared.folder / "raw" / "edge.csv.gz").exists()
    assert len(ogbg.load_ogb("ogbg-molbace", "valid", empty, tmp_path / "cache",
                             download=True)) == 151
    shutil.rmtree(tmp_path / "cache")
