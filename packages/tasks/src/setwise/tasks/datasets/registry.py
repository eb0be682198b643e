"""The dataset registry: where each dataset is looked for, whether it is there, how to load it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from setwise.tasks.datasets import (
    clevr,
    clevr_render,
    files,
    mnist,
    ogbg,
    omniglot,
    qm9,
    synthetic,
)
from setwise.tasks.datasets.errors import DataError


@dataclass(frozen=True)
class FileCheck:
    """One expected file or folder.

    Attributes:
        path: where it is looked for.
        what: what is expected there.
        md5: MD5 of the (gzip-decompressed) content, when a reference value is known.
        alternative: another path that may stand in for ``path`` (e.g. PNG folder vs npz).
        content: ``content(path) -> None | problem`` checks what ``path`` holds (expected
            counts, shapes); a problem is reported as "corrupt: <problem>".
    """

    path: Path
    what: str
    md5: str | None = None
    alternative: Path | None = None
    content: Callable[[Path], str | None] | None = None

    def status(self, verify: bool = True) -> tuple[str, Path]:
        """``("ok" | "ok, counts verified" | "ok, md5 verified" | "missing" | "corrupt: ...",
        path found)``; with ``verify`` False, only whether the file exists."""
        for path in (self.path, self.alternative):
            if path is None or not path.exists():
                continue
            if not verify:
                return "ok", path
            if self.content is not None and path == self.path:
                problem = self.content(path)
                if problem is not None:
                    return f"corrupt: {problem}", path
                if self.md5 is None:
                    return "ok, counts verified", path
            if self.md5 is None:
                return "ok", path
            try:
                found = files.md5(path, decompress=path.suffix == ".gz")
            except DataError as error:
                return f"corrupt: {error}", path
            if found == self.md5:
                return "ok, md5 verified", path
            return f"corrupt: md5 {found}, expected {self.md5}", path
        return "missing", self.path


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    Attributes:
        name: registry key.
        paper: where the paper uses it.
        summary: one line.
        splits: accepted ``split`` values of :func:`load`.
        loader: ``loader(split, data_dir, cache_dir, seed, **kw)``.
        stats: ``stats(data_dir=, cache_dir=, seed=) -> [(label, value)]``.
        checks: ``checks(data_dir) -> [FileCheck]``; empty for generated datasets.
        returns: what :func:`load` returns.
    """

    name: str
    paper: str
    summary: str
    splits: tuple
    loader: Callable
    stats: Callable
    checks: Callable = field(default=lambda data_dir: [])
    returns: str = ""

    @property
    def generated(self) -> bool:
        return not self.checks(Path("."))


def _omniglot_checks(data_dir):
    root = files.data_dir(data_dir) / omniglot.FOLDER
    return [FileCheck(root / f"{part}.npz", f"Omniglot {part} (npz or PNG folder)",
                      alternative=root / part,
                      content=lambda path, part=part: omniglot.npz_problem(path, part))
            for part in omniglot.COUNTS]


def _mnist_checks(data_dir):
    return [FileCheck(path, "MNIST idx file", mnist.MD5[path.name])
            for path in mnist.paths(data_dir)]


def _qm9_checks(data_dir):
    return [FileCheck(files.data_dir(data_dir) / qm9.FOLDER / qm9.FILENAME,
                      f"QM9 SMILES, one per line ({qm9.COUNT:,})", content=qm9.file_problem)]


def _ogb_checks(name):
    def checks(data_dir):
        source = ogbg.source_dir(name, data_dir)
        graph = FileCheck(source / "mapping" / "mol.csv.gz",
                          f"SMILES and labels, {ogbg.OFFICIAL_SIZES[name][0]:,} rows (or raw/)",
                          alternative=source / "raw",
                          content=lambda path: ogbg.mapping_problem(name, path))
        split = [FileCheck(source / "split" / "scaffold" / f"{s}.csv.gz",
                           f"scaffold split ({ogbg.OFFICIAL_SIZES[name][1][i]:,} indices)",
                           content=lambda path, i=i: ogbg.split_file_problem(name, i, path))
                 for i, s in enumerate(ogbg.SPLITS)]
        return [graph] + split
    return checks


def _clevr_checks(data_dir):
    root = files.data_dir(data_dir) / clevr.ROOT
    return ([FileCheck(clevr.scenes_path(root, s), f"CLEVR {s} scenes") for s in clevr.SPLITS]
            + [FileCheck(clevr.images_dir(root, s), f"CLEVR {s} images") for s in clevr.SPLITS])


def _ogb_entry(name):
    return DatasetInfo(
        name, "paper 1, section 5.3 (MOLPCBA pipeline)",
        f"OGB {name}: molecules as graphs, scaffold split, {ogbg.META[name][0]} task(s), "
        f"metric {ogbg.META[name][1]}", ogbg.SPLITS,
        lambda split, data_dir, cache_dir, seed, **kw: ogbg.load_ogb(
            name, split, data_dir, cache_dir, **kw),
        lambda **kw: ogbg.stats(name, **kw), _ogb_checks(name),
        "Graphs (x [nodes, 9] int64, edge_index [2, edges], edge_attr [edges, 3], "
        "y [graphs, tasks] float32 NaN=missing); ogbg.pyg_dataset for PyG")


def _clevr_synthetic(split, data_dir, cache_dir, seed, num_train=1000, num_val=200, **kw):
    root = clevr_render.synthetic_root(cache_dir, num_train, num_val, seed,
                                       kw.get("progress", True))
    return clevr.load_clevr(split, cache_dir=cache_dir, root=root, **kw)


def _clevr_synthetic_stats(data_dir=None, cache_dir=None, seed=0, **_):
    root = clevr_render.synthetic_root(cache_dir, seed=seed)
    return [("root (SYNTHETIC, rendered here)", str(root))] + clevr.stats(
        cache_dir=cache_dir, root=root)


DATASETS: dict[str, DatasetInfo] = {info.name: info for info in [
    DatasetInfo(
        "omniglot-counting", "paper 1, section 5.2",
        "Omniglot class counting: sets of 16 images (32x32), label = number of characters",
        ("train", "valid", "test"),
        lambda split, data_dir, cache_dir, seed, **kw: omniglot.load_omniglot(
            split, data_dir, cache_dir, **kw),
        omniglot.stats, _omniglot_checks,
        "OmniglotCounting (sample / batches(seed=) -> CountingBatch x [B, 16, 32, 32])"),
    DatasetInfo(
        "setmnist", "paper 2, section 5.1 (DSPN's SetMNIST)",
        "MNIST pixels above DSPN's threshold as (row, col)/27 point sets, padded to 342",
        tuple(mnist.FILES),
        lambda split, data_dir, cache_dir, seed, **kw: mnist.load_setmnist(split, data_dir,
                                                                            **kw),
        mnist.stats, _mnist_checks,
        "SetMNIST (points RaggedSets x [points, 2], labels; batches -> x [B, 342, 2] + mask)"),
    DatasetInfo(
        "synthetic-molecules", "paper 2, section 5.3 and appendix D.2",
        "generated molecule-like 3-D point sets (2000 train / 500 test, 2..35 points)",
        synthetic.SPLITS,
        lambda split, data_dir, cache_dir, seed, **kw: synthetic.load_synthetic(
            split, seed, cache_dir, **kw),
        synthetic.stats, returns="SyntheticMolecules (points RaggedSets x [points, 3], degree)"),
    DatasetInfo(
        "qm9", "paper 2, section 5.4 and appendix D.3",
        "QM9 molecules from SMILES: C/N/O/F one-hot, 3 kekulized bond types, 9 atoms",
        qm9.SPLITS,
        lambda split, data_dir, cache_dir, seed, **kw: qm9.load_qm9(split, data_dir, cache_dir,
                                                                    seed, **kw),
        qm9.stats, _qm9_checks,
        "MolGraphs (atoms [N, 9], bonds [N, 9, 9], mask [N, 9]; atom_one_hot, bond_one_hot)"),
    *[_ogb_entry(name) for name in ogbg.META],
    DatasetInfo(
        "clevr", "paper 2, section 5.2 (DSPN's CLEVR box and state tasks)",
        "CLEVR v1.0 images (128x128) with up to 10 objects: boxes (4) and states (18)",
        clevr.SPLITS,
        lambda split, data_dir, cache_dir, seed, **kw: clevr.load_clevr(split, data_dir,
                                                                        cache_dir, **kw),
        clevr.stats, _clevr_checks,
        "ClevrScenes (images [N, 128, 128, 3] uint8, state [N, 10, 18], boxes [N, 10, 4], "
        "mask)"),
    DatasetInfo(
        "clevr-synthetic", "paper 2, section 5.2 (SYNTHETIC stand-in for CLEVR)",
        "CLEVR-like scenes rendered here in NumPy, in CLEVR's layout (1000 train / 200 val)",
        clevr.SPLITS, _clevr_synthetic, _clevr_synthetic_stats,
        returns="ClevrScenes with synthetic=True"),
]}


def get(name: str) -> DatasetInfo:
    """The registry entry of ``name`` (a clear error listing the names otherwise)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def load(name: str, split: str = "train", data_dir=None, seed: int = 0, cache_dir=None, **kw):
    """Load ``split`` of dataset ``name``.

    Args:
        name: a key of :data:`DATASETS`.
        split: one of ``DATASETS[name].splits``.
        data_dir: data directory (default ``$SETWISE_DATA`` or ``~/setwise-data``).
        seed: the seed of whatever is random in the dataset itself (generated sets, the
            QM9 split, the synthetic CLEVR scenes); batch order takes its own seed.
        cache_dir: cache directory (default ``$SETWISE_CACHE`` or ``~/.cache/setwise``).
        **kw: passed to the dataset's loader.

    Returns:
        See ``DATASETS[name].returns``.
    """
    info = get(name)
    if split not in info.splits:
        raise ValueError(f"load({name!r}): split must be one of {info.splits}, got {split!r}")
    return info.loader(split, data_dir, cache_dir, seed, **kw)


def availability(info: DatasetInfo, data_dir=None, verify: bool = True):
    """``(overall status, [(status, path, what)])`` of one dataset's files."""
    rows = [(*check.status(verify), check.what) for check in info.checks(data_dir)]
    if not rows:
        return "generated", rows
    missing = sum(status == "missing" for status, _, _ in rows)
    if any(status.startswith("corrupt") for status, _, _ in rows):
        return "CORRUPT", rows
    if missing == 0:
        return "present", rows
    return ("missing" if missing == len(rows) else "partial"), rows
