"""Set and graph batching, files and caches, the registry and the ``setwise data`` command."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys

import numpy as np
import pytest

from setwise.reference import segments as ref
from setwise.tasks.datasets import (
    DATASETS,
    CorruptDataError,
    Graphs,
    MissingDataError,
    RaggedSets,
    batch_indices,
    files,
    load,
    pad_graph_batch,
    pad_segments,
)
from setwise.tasks.datasets import cli as data_cli
from setwise.tasks.datasets.sets import same_size_batches


def ragged(seed=0, num_sets=7, dim=3):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 6, num_sets)
    return RaggedSets.from_list([rng.normal(size=(n, dim)) for n in sizes])


def test_dense_and_segment_forms_hold_the_same_sets():
    sets = ragged()
    dense = sets.dense()
    seg = sets.segments()
    assert dense.x.shape == (len(sets), sets.sizes.max(), 3)
    np.testing.assert_array_equal(dense.mask.sum(1), sets.sizes)
    x, index, num_sets = ref.to_segments(dense.x, dense.mask)
    np.testing.assert_array_equal(x, seg.x)
    np.testing.assert_array_equal(index, seg.index)
    assert num_sets == seg.num_sets == len(sets)
    for i in range(len(sets)):
        np.testing.assert_array_equal(dense.x[i][dense.mask[i]], sets[i])


def test_take_and_padding():
    sets = ragged(1)
    sub = sets.take([4, 0, 4])
    np.testing.assert_array_equal(sub[0], sets[4])
    np.testing.assert_array_equal(sub[2], sets[4])
    assert sets.dense([1, 2], max_size=9).x.shape == (2, 9, 3)
    with pytest.raises(ValueError, match="max_size"):
        sets.dense(max_size=1)
    padded, mask = pad_segments(sets.segments(), 40)
    assert padded.x.shape == (40, 3) and padded.num_sets == len(sets) + 1
    assert mask.sum() == sets.sizes.sum()
    assert (padded.index[~mask] == len(sets)).all()
    with pytest.raises(ValueError):
        RaggedSets(np.zeros((3, 2)), np.array([0, 2]))


def test_batch_order_depends_only_on_seed_and_epoch():
    a = [b.tolist() for b in batch_indices(10, 3, seed=5, epoch=1)]
    b = [b.tolist() for b in batch_indices(10, 3, seed=5, epoch=1)]
    c = [b.tolist() for b in batch_indices(10, 3, seed=5, epoch=2)]
    assert a == b != c
    assert sorted(sum(a, [])) == list(range(10))
    assert [len(x) for x in batch_indices(10, 3, drop_last=True)] == [3, 3, 3]


def test_ragged_batches_in_both_forms_and_same_size_batches():
    sets = ragged(2, num_sets=30)
    dense = list(sets.batches(8, seed=1, max_size=6))
    segs = list(sets.batches(8, seed=1, form="segments"))
    assert [d.x.shape for d in dense] == [(8, 6, 3)] * 3 + [(6, 6, 3)]
    for d, s in zip(dense, segs):
        np.testing.assert_array_equal(d.indices, s.indices)
        np.testing.assert_array_equal(d.x[d.mask], s.x)
    groups = list(same_size_batches(sets.sizes, 4, seed=0))
    assert sorted(np.concatenate(groups).tolist()) == list(range(30))
    assert all(len(set(sets.sizes[g].tolist())) == 1 and len(g) <= 4 for g in groups)
    assert [g.tolist() for g in same_size_batches(sets.sizes, 4, seed=0)] == \
        [g.tolist() for g in groups]


def toy_graphs():
    # graph 0: path 0-1-2 ; graph 1: single node ; graph 2: edge 0-1
    edges = np.array([[0, 1], [1, 0], [1, 2], [2, 1], [0, 1], [1, 0]]).T
    return Graphs(np.arange(6)[:, None], edges, np.arange(6)[:, None] * 10,
                  np.array([0, 3, 4, 6]), np.array([0, 4, 4, 6]), np.eye(3, dtype=np.float32))


def test_graph_batches_shift_edges_and_pad_like_jraph():
    graphs = toy_graphs()
    batch = graphs.batch([2, 0])
    np.testing.assert_array_equal(batch.x[:, 0], [4, 5, 0, 1, 2])
    np.testing.assert_array_equal(batch.edge_index, [[0, 1, 2, 3, 3, 4], [1, 0, 3, 2, 4, 3]])
    np.testing.assert_array_equal(batch.node_graph, [0, 0, 1, 1, 1])
    padded = pad_graph_batch(batch, 4, 8, 10)
    assert padded.x.shape == (8, 1) and padded.edge_index.shape == (2, 10)
    assert padded.num_graphs == 4 and padded.graph_mask.tolist() == [True, True, False, False]
    assert (padded.node_graph[5:] == 2).all() and (padded.edge_index[:, 6:] == 5).all()
    with pytest.raises(ValueError, match="num_nodes"):
        pad_graph_batch(batch, 4, 5, 10)
    dense = graphs.dense_nodes([0, 1], max_nodes=4)
    assert dense.x.shape == (2, 4, 1) and dense.mask.sum() == 4


def test_dynamic_batches_have_static_shapes_and_cover_every_graph():
    graphs = toy_graphs()
    batches = list(graphs.dynamic_batches(max_graphs=2, max_nodes=4, max_edges=6, seed=3))
    assert {b.x.shape for b in batches} == {(5, 1)}
    assert {b.edge_index.shape for b in batches} == {(2, 6)}
    assert sorted(np.concatenate([b.indices for b in batches]).tolist()) == [0, 1, 2]
    for b in batches:
        assert b.node_mask.sum() <= 4 and b.graph_mask.sum() <= 2
    with pytest.raises(ValueError, match="over max_nodes"):
        list(graphs.dynamic_batches(max_nodes=2))


def test_fetch_downloads_and_checks_md5(tmp_path):
    payload = b"idx file content"
    src = tmp_path / "src.gz"
    with gzip.open(src, "wb") as handle:
        handle.write(payload)
    good = hashlib.md5(payload).hexdigest()
    out = files.fetch(src.as_uri(), tmp_path / "out" / "a.gz", good, decompressed_md5=True)
    assert gzip.open(out).read() == payload
    with pytest.raises(CorruptDataError, match="md5"):
        files.fetch(src.as_uri(), tmp_path / "b.gz", "0" * 32, decompressed_md5=True)
    assert not (tmp_path / "b.gz").exists()
    with pytest.raises(MissingDataError, match="download failed"):
        files.fetch((tmp_path / "nope").as_uri(), tmp_path / "c.gz")


def test_cached_arrays_rebuild_only_when_the_key_changes(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(3)}

    path = tmp_path / "c.npz"
    assert files.cached_arrays(path, "k1", build)["a"].tolist() == [0, 1, 2]
    files.cached_arrays(path, "k1", build)
    files.cached_arrays(path, "k2", build)
    assert len(calls) == 2
    path.write_bytes(b"garbage")
    files.cached_arrays(path, "k2", build)
    assert len(calls) == 3


def test_cached_memmap_is_built_once_per_key(tmp_path):
    calls = []

    def fill(array):
        calls.append(1)
        array[:] = 7

    first = files.cached_memmap(tmp_path / "m.npy", "k", (3, 2), np.uint8, fill)
    again = files.cached_memmap(tmp_path / "m.npy", "k", (3, 2), np.uint8, fill)
    assert isinstance(again, np.memmap) and (first == 7).all() and len(calls) == 1
    files.cached_memmap(tmp_path / "m.npy", "k2", (3, 2), np.uint8, fill)
    assert len(calls) == 2


def test_errors_name_the_path_and_what_was_expected(tmp_path):
    with pytest.raises(MissingDataError) as info:
        files.require(tmp_path / "x.bin", "the x file")
    assert str(tmp_path / "x.bin") in str(info.value) and "the x file" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_registry_load_rejects_unknown_names_and_splits():
    assert {"omniglot-counting", "setmnist", "synthetic-molecules", "qm9", "ogbg-molpcba",
            "clevr", "clevr-synthetic"} <= set(DATASETS)
    with pytest.raises(KeyError, match="known"):
        load("mnist3d")
    with pytest.raises(ValueError, match="split"):
        load("qm9", "holdout")


def test_setwise_data_lists_every_dataset_and_its_status(data_dir, tmp_path, capsys):
    assert data_cli.main(["data", "--data-dir", str(data_dir), "--cache-dir",
                          str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in DATASETS:
        assert name in out
    assert out.count("ok, md5 verified") == 4
    assert "partial" in out and "ogbg_molpcba/mapping/mol.csv.gz" in out


def test_setwise_data_reports_a_corrupt_file(data_dir, tmp_path, capsys):
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for path in (data_dir / "mnist").iterdir():
        (mnist / path.name).write_bytes(path.read_bytes())
    with gzip.open(mnist / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(b"\x00\x00\x08\x01\x00\x00\x27\x10" + b"\x01" * 10_000)
    assert data_cli.main(["data", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "corrupt: md5" in out and out.count("ok, md5 verified") == 3
    assert data_cli.main(["data", "stats", "clevr", "--data-dir", str(tmp_path)]) == 1
    assert "CLEVR_train_scenes.json: missing" in capsys.readouterr().err


def test_setwise_command_runs_the_data_subcommand(data_dir, cache_dir):
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from setwise.tasks.cli import main; "
         "sys.exit(main(sys.argv[1:]))", "data", "stats", "ogbg-molbace", "--data-dir",
         str(data_dir), "--cache-dir", str(cache_dir)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1,210 / 151 / 152" in result.stdout


def test_setwise_data_says_where_it_looked_and_how_to_point_elsewhere(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.delenv(files.DATA_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(files, "SIBLING_DATA_DIR", tmp_path / "no-checkout" / "shared" / "data")
    assert data_cli.main(["data"]) == 0
    out = capsys.readouterr().out
    assert f"looked in {tmp_path / 'setwise-data'} (the default, as $SETWISE_DATA is not set)" \
        in out and "--data-dir DIR or SETWISE_DATA=DIR" in out
    assert data_cli.main(["data", "stats", "qm9", "--data-dir", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "qm9_smiles.txt: missing" in err and f"looked in {tmp_path / 'x'} (--data-dir)" in err


def test_data_dir_beside_the_checkout_is_the_default_when_it_exists(tmp_path, capsys,
                                                                    monkeypatch):
    """A fresh clone with ``../shared/data`` beside it finds its data without a flag, and
    ``$SETWISE_DATA`` still wins."""
    sibling = tmp_path / "shared" / "data"
    sibling.mkdir(parents=True)
    monkeypatch.delenv(files.DATA_ENV, raising=False)
    monkeypatch.setattr(files, "SIBLING_DATA_DIR", sibling)
    assert files.data_dir() == sibling
    assert data_cli.main(["data"]) == 0
    assert f"data dir:  {sibling}  (from beside the checkout" in capsys.readouterr().out
    monkeypatch.setenv(files.DATA_ENV, str(tmp_path / "env"))
    assert files.data_dir() == tmp_path / "env"
