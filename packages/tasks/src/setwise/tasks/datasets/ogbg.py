"""OGB molecule graph-property datasets (paper 1, section 5.3: ogbg-molpcba and its kin).

The source is OGB's own folder layout under ``<data_dir>/ogb/<ogbg_molxxx>/``:
``mapping/mol.csv.gz`` (labels, ``smiles``, ``mol_id``), ``split/scaffold/*.csv.gz`` and,
when OGB's processed files are there, ``raw/`` (edge, node-feat, edge-feat, graph-label,
num-node-list, num-edge-list). :func:`prepare` makes a writable copy under
``<cache_dir>/ogb/<ogbg_molxxx>/`` that OGB's ``PygGraphPropPredDataset`` reads offline:

- a folder with ``raw/`` is copied as it is;
- a folder with only ``mapping/`` gets its ``raw/`` built from the SMILES with
  ``ogb.utils.smiles2graph``, which is what OGB itself did. Molecules current RDKit rejects
  are left out, counted and listed in ``setwise/rejected.csv``; the scaffold split is
  renumbered to the molecules kept.

OGB's own download path is never reached (its prompt would block): a missing folder is a
:class:`MissingDataError`, and ``download=True`` fetches OGB's zip with :func:`files.fetch`.

Two views of the same prepared files: :func:`pyg_dataset` (PyTorch Geometric, imports torch)
and :func:`load_ogb` (NumPy :class:`Graphs`, no torch; batch it with
:meth:`Graphs.dynamic_batches` for JAX's static shapes).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from setwise.tasks.datasets import files
from setwise.tasks.datasets.errors import CorruptDataError, MissingDataError
from setwise.tasks.datasets.graphs import Graphs

#: name -> (number of tasks, OGB metric, OGB download name)
META = {
    "ogbg-molhiv": (1, "rocauc", "hiv"),
    "ogbg-molmuv": (17, "ap", "muv"),
    "ogbg-moltox21": (12, "rocauc", "tox21"),
    "ogbg-molbace": (1, "rocauc", "bace"),
    "ogbg-molpcba": (128, "ap", "pcba"),
}
#: name -> (molecules, (train, valid, test) sizes) of OGB's official release: every source
#: folder is checked against these on load and by ``setwise data``.
OFFICIAL_SIZES = {
    "ogbg-molhiv": (41_127, (32_901, 4_113, 4_113)),
    "ogbg-molmuv": (93_087, (74_469, 9_309, 9_309)),
    "ogbg-moltox21": (7_831, (6_264, 783, 784)),
    "ogbg-molbace": (1_513, (1_210, 151, 152)),
    "ogbg-molpcba": (437_929, (350_343, 43_793, 43_793)),
}
DOWNLOAD_URL = "http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/{}.zip"
SPLITS = ("train", "valid", "test")
RAW_FILES = ("edge", "node-feat", "edge-feat", "graph-label", "num-node-list", "num-edge-list")
_VERSION = "ogbg-1"


def folder_name(name: str) -> str:
    """``"ogbg-molhiv"`` -> ``"ogbg_molhiv"`` (OGB's folder name)."""
    if name not in META:
        raise ValueError(f"unknown OGB dataset {name!r}; known: {sorted(META)}")
    return name.replace("-", "_")


def source_dir(name: str, data_dir=None) -> Path:
    """Where the dataset is looked for: ``<data_dir>/ogb/<ogbg_molxxx>``."""
    return files.data_dir(data_dir) / "ogb" / folder_name(name)


def _read_indices(path: Path) -> np.ndarray:
    import pandas as pd

    try:
        return pd.read_csv(path, header=None).values[:, 0].astype(np.int64)
    except (OSError, ValueError, EOFError, IndexError) as error:
        raise CorruptDataError(path, "a gzip CSV of indices", str(error)) from error


def read_split(folder, name: str | None = None) -> dict[str, np.ndarray]:
    """``split/scaffold/{train,valid,test}.csv.gz`` -> ``{split: int64 indices}``.

    The three files must cover ``0..N-1`` exactly once (``N`` their total length); with
    ``name``, their sizes must also be those of OGB's official release
    (:data:`OFFICIAL_SIZES`). A file that breaks either (cut short, another dataset's) raises
    :class:`CorruptDataError` naming it.
    """
    paths = {split: files.require(Path(folder) / "split" / "scaffold" / f"{split}.csv.gz",
                                  "OGB's scaffold split (one index per line)")
             for split in SPLITS}
    out = {split: _read_indices(path) for split, path in paths.items()}
    if name is not None:
        for i, split in enumerate(SPLITS):
            expected = OFFICIAL_SIZES[name][1][i]
            if len(out[split]) != expected:
                raise CorruptDataError(paths[split], f"{expected:,} indices ({name}'s official "
                                       f"{split} split)", f"{len(out[split]):,}")
    total = sum(len(v) for v in out.values())
    for split, path in paths.items():
        others = np.concatenate([out[s] for s in SPLITS if s != split])
        bad = (out[split] < 0) | (out[split] >= total) | np.isin(out[split], others)
        if bad.any() or len(np.unique(out[split])) != len(out[split]):
            raise CorruptDataError(path, f"indices that, with the other two split files, cover "
                                   f"0..{total - 1} exactly once",
                                   f"out-of-range, repeated or shared indices "
                                   f"(e.g. {out[split][bad][:3].tolist()})")
    return out


def split_file_problem(name: str, index: int, path) -> str | None:
    """``None`` if the split file at ``path`` has the official number of indices of split
    ``SPLITS[index]`` of ``name``, else what is wrong (for ``setwise data``)."""
    try:
        found = len(_read_indices(Path(path)))
    except CorruptDataError as error:
        return error.found
    expected = OFFICIAL_SIZES[name][1][index]
    return None if found == expected else f"{found:,} indices, expected {expected:,}"


def mapping_problem(name: str, path) -> str | None:
    """``None`` if ``mapping/mol.csv.gz`` has ``name``'s official number of molecules, else
    what is wrong (for ``setwise data``)."""
    import gzip

    try:
        with gzip.open(path, "rt") as handle:
            rows = sum(1 for line in handle if line.strip()) - 1  # the header
    except (OSError, EOFError, UnicodeDecodeError) as error:
        return f"not a readable gzip CSV ({error})"
    expected = OFFICIAL_SIZES[name][0]
    return None if rows == expected else f"{rows:,} molecules, expected {expected:,}"


@dataclass(frozen=True)
class Prepared:
    """A prepared, writable OGB folder.

    Attributes:
        name: e.g. ``"ogbg-molhiv"``.
        folder: ``<cache_dir>/ogb/<ogbg_molxxx>`` (PyG's ``root`` is its parent).
        source: the folder it was made from.
        built_from_smiles: True when ``raw/`` was built here from ``mapping/mol.csv.gz``.
        num_source: molecules in the source.
        rejected: ``[(source index, split, smiles)]`` molecules RDKit rejected.
        kept: ``[num_graphs]`` source index of each graph.
    """

    name: str
    folder: Path
    source: Path
    built_from_smiles: bool
    num_source: int
    rejected: list
    kept: np.ndarray


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy files (not permissions: the source may be read-only)."""
    for path in src.rglob("*"):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _write_csv(path: Path, array) -> None:
    import pandas as pd

    pd.DataFrame(array).to_csv(path, header=False, index=False,
                               compression={"method": "gzip", "compresslevel": 1})


def build_raw(smiles, labels: np.ndarray, raw_dir, progress: bool = True) -> list[int]:
    """Write OGB's ``raw/`` files for ``smiles`` with ``ogb.utils.smiles2graph``.

    Each bond is stored once (OGB's ``add_inverse_edge`` adds the reverse when reading).

    Args:
        smiles: ``[num_molecules]`` SMILES strings.
        labels: ``[num_molecules, num_tasks]`` labels (NaN = missing).
        raw_dir: the folder to write.

    Returns:
        The indices of the molecules RDKit rejected (left out of ``raw/``).
    """
    from ogb.utils import smiles2graph
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    nodes, edges, edge_feats, num_nodes, num_edges, kept, rejected = [], [], [], [], [], [], []
    for i, text in enumerate(files.progress(smiles, len(smiles), "SMILES -> graphs", progress)):
        try:
            graph = smiles2graph(text)
        except Exception:  # noqa: BLE001 - smiles2graph fails with AttributeError on None
            rejected.append(i)
            continue
        nodes.append(graph["node_feat"])
        edges.append(graph["edge_index"][:, ::2].T)
        edge_feats.append(graph["edge_feat"][::2])
        num_nodes.append(graph["num_nodes"])
        num_edges.append(graph["edge_index"].shape[1] // 2)
        kept.append(i)
    _write_csv(raw_dir / "node-feat.csv.gz", np.concatenate(nodes))
    _write_csv(raw_dir / "edge.csv.gz", np.concatenate(edges).astype(np.int64))
    _write_csv(raw_dir / "edge-feat.csv.gz", np.concatenate(edge_feats))
    _write_csv(raw_dir / "num-node-list.csv.gz", np.asarray(num_nodes, np.int64))
    _write_csv(raw_dir / "num-edge-list.csv.gz", np.asarray(num_edges, np.int64))
    _write_csv(raw_dir / "graph-label.csv.gz", labels[kept])
    return rejected


def _read_mapping(path: Path):
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, EOFError) as error:
        raise CorruptDataError(path, "OGB's mapping CSV (labels, smiles, mol_id)",
                               str(error)) from error
    if "smiles" not in table.columns:
        raise CorruptDataError(path, "a 'smiles' column", f"columns {list(table.columns)}")
    label_columns = [c for c in table.columns if c not in ("smiles", "mol_id")]
    labels = table[label_columns].values
    if labels.dtype.kind not in "iu":
        labels = labels.astype(np.float64)
    return table["smiles"].tolist(), labels


def _build(name: str, source: Path, target: Path, progress: bool) -> dict:
    """Fill ``target`` from ``source``; return the state written to ``setwise/state.json``."""
    _copy_tree(source, target)
    split = read_split(source, name)
    if (source / "raw").is_dir():
        num = int(sum(len(v) for v in split.values()))
        return {"built_from_smiles": False, "num_source": num, "rejected": [],
                "kept": list(range(num))}
    smiles, labels = _read_mapping(source / "mapping" / "mol.csv.gz")
    if len(smiles) != OFFICIAL_SIZES[name][0]:
        raise CorruptDataError(source / "mapping" / "mol.csv.gz",
                               f"{OFFICIAL_SIZES[name][0]:,} molecules (OGB's {name})",
                               f"{len(smiles):,}")
    rejected = build_raw(smiles, labels, target / "raw", progress)
    keep = np.ones(len(smiles), bool)
    keep[rejected] = False
    new_index = np.cumsum(keep) - 1
    where = {int(i): s for s, idx in split.items() for i in idx}
    for part, idx in split.items():
        _write_csv(target / "split" / "scaffold" / f"{part}.csv.gz", new_index[idx[keep[idx]]])
    listed = [(int(i), where.get(int(i), "none"), smiles[i]) for i in rejected]
    with open(target / "setwise" / "rejected.csv", "w") as handle:
        handle.write("source_index,split,smiles\n")
        handle.writelines(f"{i},{part},{text}\n" for i, part, text in listed)
    return {"built_from_smiles": True, "num_source": len(smiles), "rejected": listed,
            "kept": np.flatnonzero(keep).tolist()}


def _download(name: str, folder: Path) -> None:
    """Fetch OGB's zip for ``name`` and unpack it as ``folder`` (needs a network)."""
    download_name = META[name][2]
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        archive = files.fetch(DOWNLOAD_URL.format(download_name), Path(tmp) / "d.zip")
        files.extract_zip(archive, tmp)
        unpacked = Path(tmp) / download_name
        files.require(unpacked, f"the folder {download_name}/ inside OGB's zip")
        shutil.move(str(unpacked), str(folder))


def _check_source(name: str, source: Path) -> None:
    has_raw = (source / "raw").is_dir()
    has_mapping = (source / "mapping" / "mol.csv.gz").exists()
    if not source.is_dir() or not (has_raw or has_mapping):
        present = "only split/ exists" if (source / "split").is_dir() else "nothing is there"
        raise MissingDataError(
            source / "mapping" / "mol.csv.gz",
            f"OGB's {name} folder with raw/ or mapping/mol.csv.gz ({present})",
            f"place OGB's folder at {source}, or pass download=True to fetch "
            f"{DOWNLOAD_URL.format(META[name][2])}")


def prepare(name: str, data_dir=None, cache_dir=None, progress: bool = True,
            download: bool = False) -> Prepared:
    """Make (once) the writable OGB folder for ``name`` and return its description.

    The folder is rebuilt when the source files change. With ``download=True`` and no
    source folder, OGB's zip is fetched into the cache instead.
    """
    source = source_dir(name, data_dir)
    root = files.cache_dir(cache_dir) / "ogb"
    folder = root / folder_name(name)
    if not source.is_dir() and download:
        downloaded = root / "downloads" / folder_name(name)
        if not downloaded.is_dir():
            downloaded.parent.mkdir(parents=True, exist_ok=True)
            _download(name, downloaded)
        source = downloaded
    _check_source(name, source)
    key = files.cache_key(_VERSION, source, files.fingerprint(source))
    state_path = folder / "setwise" / "state.json"
    if not _state_matches(state_path, key):
        root.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".build-{folder.name}-", dir=root))
        try:
            (build / "setwise").mkdir()
            state = _build(name, source, build, progress)
            (build / "RELEASE_v1.txt").write_text("# Release note for ogbg-mol*\n\n### v1\n")
            (build / "setwise" / "state.json").write_text(json.dumps({"key": key, **state}))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(build, folder)
        finally:
            if build.exists():
                shutil.rmtree(build)
    state = json.loads(state_path.read_text())
    return Prepared(name, folder, source, state["built_from_smiles"], state["num_source"],
                    [tuple(r) for r in state["rejected"]], np.asarray(state["kept"], np.int64))


def _state_matches(path: Path, key: str) -> bool:
    try:
        return json.loads(path.read_text())["key"] == key
    except (OSError, ValueError, KeyError):
        return False


def read_raw(raw_dir) -> Graphs:
    """Read OGB ``raw/`` CSVs into :class:`Graphs`, adding inverse edges as OGB does.

    Edge ``2k`` is bond ``k`` as stored, edge ``2k + 1`` its reverse (OGB's
    ``read_csv_graph_raw(add_inverse_edge=True)`` order), so the result equals the
    ``PygGraphPropPredDataset`` graphs array for array.
    """
    import pandas as pd

    def read(stem):
        path = files.require(Path(raw_dir) / f"{stem}.csv.gz", f"OGB's raw {stem} file")
        try:
            return pd.read_csv(path, header=None).values
        except (OSError, ValueError, EOFError) as error:
            raise CorruptDataError(path, "a gzip CSV", str(error)) from error

    edge, node_feat, edge_feat = read("edge"), read("node-feat"), read("edge-feat")
    labels = read("graph-label").astype(np.float32)
    num_nodes = read("num-node-list")[:, 0].astype(np.int64)
    num_edges = read("num-edge-list")[:, 0].astype(np.int64)
    if num_nodes.sum() != len(node_feat) or num_edges.sum() != len(edge):
        raise CorruptDataError(raw_dir, f"{num_nodes.sum()} nodes and {num_edges.sum()} edges "
                               "as num-node-list / num-edge-list say",
                               f"{len(node_feat)} nodes and {len(edge)} edges")
    both = np.repeat(edge.astype(np.int64), 2, axis=0)
    both[1::2] = edge[:, ::-1]
    return Graphs(node_feat.astype(np.int64), both.T.copy(),
                  np.repeat(edge_feat.astype(np.int64), 2, axis=0),
                  np.concatenate([[0], np.cumsum(num_nodes)]).astype(np.int64),
                  np.concatenate([[0], np.cumsum(2 * num_edges)]).astype(np.int64), labels)


@dataclass(frozen=True)
class OgbData:
    """All graphs of an OGB dataset with its split and metadata.

    Attributes:
        graphs: every graph (NumPy).
        split: ``{"train", "valid", "test"}`` -> int64 rows of ``graphs``.
        num_tasks, eval_metric: from OGB (``"rocauc"`` or ``"ap"``).
        prepared: how the folder was made (rejected molecules, source).
    """

    graphs: Graphs
    split: dict
    num_tasks: int
    eval_metric: str
    prepared: Prepared


def load_ogb_all(name: str, data_dir=None, cache_dir=None, progress: bool = True,
                 download: bool = False) -> OgbData:
    """Every graph of ``name`` as NumPy arrays, with the (renumbered) scaffold split."""
    prepared = prepare(name, data_dir, cache_dir, progress, download)
    setwise_dir = prepared.folder / "setwise"
    key = json.loads((setwise_dir / "state.json").read_text())["key"]

    def build():
        return vars(read_raw(prepared.folder / "raw"))

    graphs = Graphs(**files.cached_arrays(setwise_dir / "graphs.npz", key, build))
    return OgbData(graphs, read_split(prepared.folder), META[name][0], META[name][1], prepared)


def load_ogb(name: str, split: str = "train", data_dir=None, cache_dir=None,
             progress: bool = True, download: bool = False) -> Graphs:
    """The graphs of one scaffold split of ``name`` (``"train"``, ``"valid"``, ``"test"``).

    Returns:
        :class:`Graphs` with ``x [nodes, 9]`` int64 OGB atom features, ``edge_attr
        [edges, 3]`` int64 OGB bond features, ``y [graphs, num_tasks]`` float32 (NaN =
        missing label).

    Notes:
        Molecules current RDKit rejects (7 in hiv, 8 in tox21) are left out and the split
        renumbered, so a split has that many fewer graphs than OGB's official one.
    """
    if split not in SPLITS:
        raise ValueError(f"load_ogb: split must be one of {SPLITS}, got {split!r}")
    data = load_ogb_all(name, data_dir, cache_dir, progress, download)
    return data.graphs.take(data.split[split])


def _pyg_safe_globals():
    from torch_geometric.data import Data
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    return [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]


def pyg_dataset(name: str, data_dir=None, cache_dir=None, progress: bool = True,
                download: bool = False):
    """OGB's own ``PygGraphPropPredDataset`` on the prepared folder, offline.

    torch >= 2.6 loads with ``weights_only=True`` by default, which OGB 1.3.6 predates: the
    PyG classes OGB pickles are allowed for the duration of the call. OGB's download method
    is replaced by an error (the prepared folder always has ``raw/``).
    """
    import torch
    from ogb.graphproppred import PygGraphPropPredDataset

    class OfflinePygGraphPropPredDataset(PygGraphPropPredDataset):
        def download(self):
            raise MissingDataError(Path(self.raw_dir), f"OGB's raw files {self.raw_file_names}",
                                   "setwise never lets OGB download; see setwise.tasks."
                                   "datasets.ogbg.prepare")

    prepared = prepare(name, data_dir, cache_dir, progress, download)
    with torch.serialization.safe_globals(_pyg_safe_globals()):
        return OfflinePygGraphPropPredDataset(name=name, root=str(prepared.folder.parent))


def stats(name: str, data_dir=None, cache_dir=None, **_) -> list[tuple[str, str]]:
    """Statistics printed by ``setwise data stats <ogbg-molxxx>``."""
    source = source_dir(name, data_dir)
    official = read_split(source, name)
    rows = [("source", str(source)),
            ("official scaffold split train / valid / test",
             " / ".join(f"{len(official[s]):,}" for s in SPLITS))]
    all_rows = np.concatenate(list(official.values()))
    rows.append(("split covers 0..N-1 exactly once",
                 str(bool(np.array_equal(np.sort(all_rows), np.arange(len(all_rows)))))))
    try:
        data = load_ogb_all(name, data_dir, cache_dir)
    except MissingDataError as error:
        return rows + [("graphs", f"not available: {error}")]
    graphs, prepared = data.graphs, data.prepared
    rejected_by_split = {s: sum(r[1] == s for r in prepared.rejected) for s in SPLITS}
    y = graphs.y

    def spread(values):
        return f"{values.min()} / {values.mean():.2f} / {values.max()}"

    by_split = " / ".join(str(rejected_by_split[s]) for s in SPLITS)
    rows += [("graphs from", "SMILES via ogb.utils.smiles2graph" if prepared.built_from_smiles
              else "OGB's native raw/"),
             ("molecules in source / graphs", f"{prepared.num_source:,} / {len(graphs):,}"),
             ("rejected by RDKit (train / valid / test)",
              f"{len(prepared.rejected)} ({by_split})"),
             ("split used train / valid / test",
              " / ".join(f"{len(data.split[s]):,}" for s in SPLITS)),
             ("tasks / metric", f"{data.num_tasks} / {data.eval_metric}"),
             ("nodes per graph (min / mean / max)", spread(graphs.num_nodes)),
             ("directed edges per graph (min / mean / max)", spread(graphs.num_edges)),
             ("labels present / positive rate",
              f"{np.isfinite(y).mean():.4f} / {np.nanmean(y):.4f}")]
    for index, part, text in prepared.rejected:
        rows.append((f"rejected #{index} ({part})", text))
    return rows
