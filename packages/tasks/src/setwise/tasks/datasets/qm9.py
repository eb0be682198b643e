"""QM9 molecular graphs (paper 2, section 5.4 and appendix D.3).

Molecules are read from SMILES (``<data_dir>/qm9/qm9_smiles.txt``, one per line) with RDKit:
hydrogens are implicit (removed), atoms are C/N/O/F (one-hot of 4), bonds are kekulized into
3 edge types (single, double, triple), and every graph is padded to 9 atoms. Formal charges
(zwitterions such as ``[NH3+]``/``[O-]``) are kept aside in ``charges`` only: like the
authors' graphs, the model's graphs carry no charge.

Also here: the atom-score ordering of appendix D.3, used to align a target and a predicted
graph, and :func:`check_molecules`, the validity / uniqueness checker for generated graphs
(RDKit sanitisation, canonical SMILES), as the authors' ``BasicMolecularMetrics``.

RDKit is imported inside the functions that need it (the ``chem`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from setwise.tasks.datasets import files
from setwise.tasks.datasets.errors import CorruptDataError
from setwise.tasks.datasets.graphs import Graphs
from setwise.tasks.datasets.sets import batch_indices, same_size_batches

FOLDER, FILENAME = "qm9", "qm9_smiles.txt"
URL = "https://raw.githubusercontent.com/john-bradshaw/GraphVAE/master/qm9_smiles.txt"
COUNT = 133_885
ATOMS = ("C", "N", "O", "F")
BONDS = ("SINGLE", "DOUBLE", "TRIPLE")
MAX_ATOMS = 9
NUM_VALID, NUM_TEST = 10_000, 10_000
SPLITS = ("train", "valid", "test", "all")
_VERSION = "qm9-2"


@dataclass(frozen=True)
class MolGraphs:
    """Molecular graphs padded to ``max_atoms`` atoms.

    Attributes:
        atoms: ``[N, 9]`` int64 atom type index into ``ATOMS`` (C, N, O, F); -1 = padding.
        bonds: ``[N, 9, 9]`` int64 symmetric bond type: 0 none, 1 single, 2 double,
            3 triple (kekulized).
        mask: ``[N, 9]`` bool, True for real atoms (atoms come first).
        charges: ``[N, 9]`` int64 formal charge of each atom (information only).
        smiles: ``[N]`` str, the SMILES the graph was read from.
    """

    atoms: np.ndarray
    bonds: np.ndarray
    mask: np.ndarray
    charges: np.ndarray
    smiles: np.ndarray

    def __len__(self) -> int:
        return len(self.atoms)

    @property
    def num_atoms(self) -> np.ndarray:
        """``[N]`` int64 number of heavy atoms."""
        return self.mask.sum(axis=1)

    def atom_one_hot(self) -> np.ndarray:
        """``[N, 9, 4]`` float32 one-hot atom types (zero rows for padding)."""
        return np.eye(len(ATOMS) + 1, dtype=np.float32)[self.atoms][..., :len(ATOMS)]

    def bond_one_hot(self) -> np.ndarray:
        """``[N, 9, 9, 3]`` float32 one-hot bond types (zero where there is no bond)."""
        return np.eye(len(BONDS) + 1, dtype=np.float32)[self.bonds][..., 1:]

    def take(self, indices) -> MolGraphs:
        """The graphs ``indices``, in that order."""
        return MolGraphs(*(field[indices] for field in self))

    def __iter__(self):
        return iter((self.atoms, self.bonds, self.mask, self.charges, self.smiles))

    def to_graphs(self) -> Graphs:
        """Segment form for a message-passing encoder.

        Returns:
            :class:`Graphs` with ``x [atoms, 4]`` one-hot atom types, ``edge_index`` both
            directions of every bond (within each graph), ``edge_attr [edges, 3]`` one-hot
            bond types, ``y [N, 0]``.
        """
        x = self.atom_one_hot()[self.mask]
        graph, src, dst = np.nonzero(self.bonds)
        edge_attr = np.eye(len(BONDS), dtype=np.float32)[self.bonds[graph, src, dst] - 1]
        count = np.bincount(graph, minlength=len(self))
        return Graphs(x, np.stack([src, dst]).astype(np.int64), edge_attr,
                      np.concatenate([[0], np.cumsum(self.num_atoms)]).astype(np.int64),
                      np.concatenate([[0], np.cumsum(count)]).astype(np.int64),
                      np.zeros((len(self), 0), np.float32))

    def batches(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                drop_last: bool = False, same_size: bool = False) -> Iterator[MolGraphs]:
        """Yield :class:`MolGraphs` batches (dense, 9 atoms + mask); with ``same_size``,
        molecules of one size per batch, as the authors' ``CustomGraphBatchSampler``."""
        chunks = (same_size_batches(self.num_atoms, batch_size, seed, epoch, shuffle, drop_last)
                  if same_size else
                  batch_indices(len(self), batch_size, seed, epoch, shuffle, drop_last))
        for indices in chunks:
            yield self.take(indices)

    def reorder(self, order: np.ndarray) -> MolGraphs:
        """Permute the atoms of every graph: ``order [N, 9]`` gives the new atom sequence."""
        rows = np.arange(len(self))[:, None]
        bonds = self.bonds[rows[:, :, None], order[:, :, None], order[:, None, :]]
        return MolGraphs(self.atoms[rows, order], bonds, self.mask[rows, order],
                         self.charges[rows, order], self.smiles)


def parse_smiles(smiles: str, max_atoms: int = MAX_ATOMS):
    """One SMILES -> ``(atoms [n], bonds [n, n], charges [n])`` or a string saying why not.

    RDKit sanitises the molecule without aromaticity perception, so a Kekule structure
    written in the SMILES is kept as written (aromatic input is kekulized by RDKit); the
    nitro-group clean-up (``N(=O)=O`` -> ``[N+](=O)[O-]``) is RDKit's.
    """
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return "RDKit could not parse it"
    try:
        Chem.SanitizeMol(mol, Chem.SANITIZE_ALL ^ Chem.SANITIZE_SETAROMATICITY)
    except (ValueError, RuntimeError) as error:
        return f"RDKit sanitisation failed: {error}"
    atoms = [mol.GetAtomWithIdx(i) for i in range(mol.GetNumAtoms())]
    if len(atoms) > max_atoms:
        return f"{len(atoms)} heavy atoms > {max_atoms}"
    symbols = [atom.GetSymbol() for atom in atoms]
    if any(symbol not in ATOMS for symbol in symbols):
        return f"atom types {sorted(set(symbols) - set(ATOMS))} outside C/N/O/F"
    orders = Chem.GetAdjacencyMatrix(mol, useBO=True)
    if not np.isin(orders, (0, 1, 2, 3)).all():
        return f"bond orders {sorted(set(orders.ravel()) - {0, 1, 2, 3})} (not 1, 2 or 3)"
    charges = np.array([atom.GetFormalCharge() for atom in atoms], np.int64)
    return (np.array([ATOMS.index(symbol) for symbol in symbols], np.int64),
            orders.astype(np.int64), charges)


def read_smiles(path) -> list[str]:
    """The non-empty lines of a SMILES file."""
    path = files.require(path, "QM9 SMILES, one molecule per line")
    try:
        lines = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise CorruptDataError(path, "a text file of SMILES", str(error)) from error
    return [line.strip() for line in lines if line.strip()]


def graphs_from_smiles(smiles: list[str], max_atoms: int = MAX_ATOMS,
                       progress: bool = True) -> tuple[MolGraphs, list[tuple[int, str, str]]]:
    """Parse SMILES into padded graphs.

    Returns:
        ``(graphs, rejected)`` where ``rejected`` lists ``(line index, smiles, reason)`` of the
        molecules left out.
    """
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    n = len(smiles)
    atoms = np.full((n, max_atoms), -1, np.int64)
    bonds = np.zeros((n, max_atoms, max_atoms), np.int64)
    charges = np.zeros((n, max_atoms), np.int64)
    keep, rejected = np.zeros(n, bool), []
    for row, text in enumerate(files.progress(smiles, n, "QM9 SMILES -> graphs", progress)):
        parsed = parse_smiles(text, max_atoms)
        if isinstance(parsed, str):
            rejected.append((row, text, parsed))
            continue
        a, b, c = parsed
        atoms[row, :len(a)], bonds[row, :len(a), :len(a)], charges[row, :len(a)] = a, b, c
        keep[row] = True
    graphs = MolGraphs(atoms[keep], bonds[keep], atoms[keep] >= 0, charges[keep],
                       np.asarray(smiles)[keep])
    return graphs, rejected


def file_problem(path) -> str | None:
    """``None`` if the SMILES file at ``path`` has QM9's :data:`COUNT` molecules, else what
    is wrong (a file cut short, not text)."""
    try:
        count = len(read_smiles(path))
    except CorruptDataError as error:
        return error.found
    return None if count == COUNT else f"{count:,} SMILES lines, expected {COUNT:,}"


def load_all(data_dir=None, cache_dir=None, progress: bool = True, download: bool = False,
             check_counts: bool = True):
    """Every QM9 molecule as graphs, cached; returns ``(graphs, rejected)``.

    With ``download``, a missing SMILES file is fetched from john-bradshaw/GraphVAE. With
    ``check_counts`` (the default) a file without QM9's 133,885 molecules (cut short, another
    file) raises :class:`CorruptDataError` naming it; False reads any SMILES file.
    """
    path = files.data_dir(data_dir) / FOLDER / FILENAME
    if download and not path.exists():
        files.fetch(URL, path)
    files.require(path, f"QM9 SMILES, one molecule per line ({COUNT:,} lines)",
                  f"pass download=True (or run 'setwise data prepare qm9 --download') to "
                  f"fetch {URL}")
    if check_counts and (problem := file_problem(path)) is not None:
        raise CorruptDataError(path, f"QM9's {COUNT:,} SMILES, one per line", problem)

    def build():
        graphs, rejected = graphs_from_smiles(read_smiles(path), progress=progress)
        return {"atoms": graphs.atoms.astype(np.int8), "bonds": graphs.bonds.astype(np.int8),
                "charges": graphs.charges.astype(np.int8), "smiles": graphs.smiles,
                "rejected_index": np.array([r[0] for r in rejected], np.int64),
                "rejected_smiles": np.array([r[1] for r in rejected], dtype=str),
                "rejected_reason": np.array([r[2] for r in rejected], dtype=str)}

    key = files.cache_key(_VERSION, path, files.fingerprint(path))
    arrays = files.cached_arrays(files.cache_dir(cache_dir) / FOLDER / "qm9_graphs.npz", key,
                                 build)
    atoms = arrays["atoms"].astype(np.int64)
    graphs = MolGraphs(atoms, arrays["bonds"].astype(np.int64), atoms >= 0,
                       arrays["charges"].astype(np.int64), arrays["smiles"])
    rejected = list(zip(arrays["rejected_index"].tolist(), arrays["rejected_smiles"].tolist(),
                        arrays["rejected_reason"].tolist()))
    return graphs, rejected


def split_indices(num: int, seed: int = 0, num_valid: int = NUM_VALID,
                  num_test: int = NUM_TEST) -> dict[str, np.ndarray]:
    """A random split of ``num`` molecules: ``{"train", "valid", "test", "all"}`` (sorted)."""
    order = np.random.default_rng(seed).permutation(num)
    parts = {"valid": order[:num_valid], "test": order[num_valid:num_valid + num_test],
             "train": order[num_valid + num_test:], "all": order}
    return {name: np.sort(part) for name, part in parts.items()}


def load_qm9(split: str = "train", data_dir=None, cache_dir=None, seed: int = 0,
             progress: bool = True, download: bool = False,
             check_counts: bool = True) -> MolGraphs:
    """QM9 graphs of one split.

    Args:
        split: ``"train"``, ``"valid"`` (10,000), ``"test"`` (10,000), or ``"all"``.
        seed: seed of the random split.
        check_counts: require QM9's 133,885 molecules (see :func:`load_all`).

    Notes:
        The authors train on all of QM9 (PyG's QM9, no split) and only generate; ``"all"``
        is that setting. Their graphs come from PyG's QM9 (SDF files); here from SMILES.
    """
    if split not in SPLITS:
        raise ValueError(f"load_qm9: split must be one of {SPLITS}, got {split!r}")
    graphs, _ = load_all(data_dir, cache_dir, progress, download, check_counts)
    if split != "all" and len(graphs) <= NUM_VALID + NUM_TEST:
        raise ValueError(f"load_qm9: {len(graphs):,} molecules leave none for split 'train' "
                         f"after {NUM_VALID:,} valid and {NUM_TEST:,} test; use split 'all'")
    return graphs.take(split_indices(len(graphs), seed)[split])


def atom_scores(atoms: np.ndarray, bonds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Appendix D.3 score of every atom (padding gets +inf).

    .. math:: s(i) = 10^5 t(i) + 10^4 \\deg(i) + \\sum_{j \\in N(i)} e(i, j) t(j)

    with atom types ``t`` in 1..4 (C, N, O, F) and bond types ``e`` in 1..3.

    Args:
        atoms: ``[N, n]`` int atom type index (0-based, as :class:`MolGraphs`).
        bonds: ``[N, n, n]`` int bond type (0 = none).
        mask: ``[N, n]`` bool.

    Returns:
        ``[N, n]`` float64.

    Notes:
        The paper's formula; the authors' code weighs neighbours by ``10 ** e(i, j)``
        instead of ``e(i, j)``, which lets the neighbour term overflow into the degree digit.
    """
    types = np.where(mask, atoms + 1, 0).astype(np.float64)
    degree = (bonds > 0).sum(axis=2)
    neighbours = np.einsum("bij,bj->bi", bonds.astype(np.float64), types)
    return np.where(mask, 1e5 * types + 1e4 * degree + neighbours, np.inf)


def score_order(graphs: MolGraphs) -> np.ndarray:
    """``[N, 9]`` atom order by increasing D.3 score (stable; padding last)."""
    return np.argsort(atom_scores(graphs.atoms, graphs.bonds, graphs.mask), axis=1,
                      kind="stable")


class MoleculeReport(NamedTuple):
    """Result of :func:`check_molecules`.

    Attributes:
        valid: ``[M]`` bool, RDKit sanitisation succeeded.
        smiles: canonical SMILES of each valid molecule, None for invalid ones.
        validity: fraction of valid molecules.
        uniqueness: distinct canonical SMILES / valid molecules (0 when none is valid).
    """

    valid: np.ndarray
    smiles: list
    validity: float
    uniqueness: float


def to_molecule(atoms: np.ndarray, bonds: np.ndarray, mask: np.ndarray | None = None):
    """Build an (unsanitised) RDKit molecule from one graph; bonds are read above the diagonal."""
    from rdkit import Chem

    kinds = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE)
    keep = np.flatnonzero(atoms >= 0 if mask is None else mask)
    mol = Chem.RWMol()
    for atom in atoms[keep]:
        mol.AddAtom(Chem.Atom(ATOMS[int(atom)]))
    sub = bonds[np.ix_(keep, keep)]
    for i, j in zip(*np.nonzero(np.triu(sub, 1))):
        mol.AddBond(int(i), int(j), kinds[int(sub[i, j]) - 1])
    return mol


def check_molecules(atoms: np.ndarray, bonds: np.ndarray, mask: np.ndarray | None = None,
                    require_connected: bool = False) -> MoleculeReport:
    """Validity and uniqueness of generated graphs.

    A graph is valid when RDKit's ``SanitizeMol`` accepts it (valences, etc.) and, with
    ``require_connected``, when it is one fragment. Uniqueness counts distinct canonical
    SMILES among the valid ones.

    Args:
        atoms: ``[M, n]`` int atom type index into ``ATOMS``, -1 = no atom.
        bonds: ``[M, n, n]`` int bond type, 0 none, 1..3 single/double/triple (upper
            triangle read).
        mask: optional ``[M, n]`` bool; default ``atoms >= 0``.

    Notes:
        The authors' ``BasicMolecularMetrics`` does not require connectivity (the default).
    """
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    atoms, bonds = np.asarray(atoms), np.asarray(bonds)
    smiles = []
    for row in range(len(atoms)):
        mol = to_molecule(atoms[row], bonds[row], None if mask is None else np.asarray(mask)[row])
        text = None
        if mol.GetNumAtoms():
            try:
                Chem.SanitizeMol(mol)
                text = Chem.MolToSmiles(mol)
            except (ValueError, RuntimeError):
                text = None
        if text is not None and require_connected and "." in text:
            text = None
        smiles.append(text)
    valid = np.array([s is not None for s in smiles], bool)
    num_valid = int(valid.sum())
    unique = len({s for s in smiles if s is not None})
    return MoleculeReport(valid, smiles, num_valid / max(len(smiles), 1),
                          unique / num_valid if num_valid else 0.0)


def stats(data_dir=None, cache_dir=None, seed: int = 0, **_) -> list[tuple[str, str]]:
    """Statistics printed by ``setwise data stats qm9``."""
    graphs, rejected = load_all(data_dir, cache_dir)
    sizes = graphs.num_atoms
    counts = np.bincount(graphs.atoms[graphs.mask], minlength=len(ATOMS))
    bond_counts = np.bincount(np.triu(graphs.bonds, 1).ravel(), minlength=4)[1:]
    report = check_molecules(graphs.atoms, graphs.bonds)
    split = split_indices(len(graphs), seed)
    return [("SMILES lines read", f"{len(graphs) + len(rejected):,}"),
            ("graphs / rejected by RDKit or the C/N/O/F, 9-atom rules",
             f"{len(graphs):,} / {len(rejected)}"),
            (f"split train / valid / test (seed {seed})",
             " / ".join(f"{len(split[s]):,}" for s in ("train", "valid", "test"))),
            ("heavy atoms per molecule (min / mean / max)",
             f"{sizes.min()} / {sizes.mean():.3f} / {sizes.max()}"),
            ("molecules with 1..9 heavy atoms", " ".join(map(str, np.bincount(sizes)[1:]))),
            ("atoms C / N / O / F", " / ".join(f"{c:,}" for c in counts)),
            ("bonds single / double / triple", " / ".join(f"{c:,}" for c in bond_counts)),
            ("molecules with a formal charge", f"{int((graphs.charges != 0).any(1).sum()):,}"),
            ("round trip graph -> RDKit valid / unique",
             f"{report.validity:.4f} / {report.uniqueness:.4f}")]
