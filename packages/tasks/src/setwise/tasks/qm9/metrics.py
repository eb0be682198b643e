"""Table 5's generation metrics on NumPy arrays, shared by both backends.

- **validity**: the fraction of generated graphs that RDKit sanitises (valences, kekulé
  structure), through :func:`setwise.tasks.datasets.qm9.check_molecules`;
- **uniqueness**: distinct canonical SMILES among the valid graphs / valid graphs;
- **valid_unique**: distinct canonical SMILES among the valid graphs / generated graphs:
  Table 5's "unique and valid" (a percentage of the generated molecules);
- **valid_connected**: the fraction that is valid *and* one fragment (information);
- **reconstruction**: the fraction of test molecules whose decoded graph (from the posterior
  mean) has the canonical SMILES of the input graph.

Disconnected graphs: like the authors' ``BasicMolecularMetrics`` (and
:func:`~setwise.tasks.datasets.qm9.check_molecules`' default), a graph of several fragments
counts as valid when every fragment sanitises, and its SMILES (fragments joined by ``.``)
counts as one molecule for uniqueness; ``valid_connected`` reports the stricter count.
"""

from __future__ import annotations

import numpy as np

from setwise.tasks.datasets.qm9 import check_molecules


def to_graphs(pred, n, rng: np.random.Generator | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Predicted logits -> ``(atoms [B, 9] (-1 padding), bonds [B, 9, 9])``.

    With ``rng`` None, the most likely graph: argmax atom type; a bond where the
    (symmetrised) edge logit is positive, of the argmax bond type (reconstruction). With a
    generator, a sample of the model's distribution, as the authors' ``generate``: atom
    types ~ Categorical, each pair ``i < j`` bonded ~ Bernoulli(sigmoid(edge logit)), its type
    ~ Categorical (generation)."""
    atom_logits = np.asarray(pred["atom_logits"], np.float64)
    size = atom_logits.shape[1]
    mask = np.arange(size)[None] < np.asarray(n)[:, None]
    pairs = mask[:, :, None] & mask[:, None, :] & ~np.eye(size, dtype=bool)
    edge = np.asarray(pred["edge_logits"], np.float64)
    edge = (edge + np.swapaxes(edge, 1, 2)) / 2
    kind = np.asarray(pred["type_logits"], np.float64)
    kind = kind + np.swapaxes(kind, 1, 2)
    if rng is None:
        atoms = np.where(mask, atom_logits.argmax(-1), -1)
        bonds = np.where(pairs & (edge > 0), kind.argmax(-1) + 1, 0)
        return atoms, bonds
    atoms = np.where(mask, _categorical(rng, atom_logits), -1)
    bonded = rng.random(edge.shape) < 1 / (1 + np.exp(-edge))
    upper = np.triu(np.ones((size, size), bool), 1)[None]
    bonds = np.where(pairs & upper & bonded, _categorical(rng, kind / 2) + 1, 0)
    return atoms, bonds + np.swapaxes(bonds, 1, 2)


def _categorical(rng, logits):
    """One draw per row of ``softmax(logits)`` (last axis) by the Gumbel-max trick."""
    return (logits + rng.gumbel(size=logits.shape)).argmax(-1)


def generation_metrics(atoms, bonds) -> dict[str, float]:
    """``validity``, ``uniqueness``, ``valid_unique``, ``valid_connected`` of graphs
    ``atoms [M, 9]`` (-1 padding), ``bonds [M, 9, 9]``."""
    report = check_molecules(atoms, bonds)
    connected = sum(1 for s in report.smiles if s is not None and "." not in s)
    unique = len({s for s in report.smiles if s is not None})
    total = max(len(report.smiles), 1)
    return {"validity": report.validity, "uniqueness": report.uniqueness,
            "valid_unique": unique / total, "valid_connected": connected / total}


def canonical_smiles(atoms, bonds) -> list:
    """Canonical SMILES of each graph (None where RDKit cannot sanitise it)."""
    return check_molecules(atoms, bonds).smiles


def reconstruction(atoms, bonds, target_atoms, target_bonds) -> float:
    """Fraction of targets whose decoded graph has the same canonical SMILES; a target
    RDKit cannot sanitise as an uncharged graph (a zwitterion) matches a decoded graph
    with exactly its ordered atoms and bonds."""
    got = canonical_smiles(atoms, bonds)
    want = canonical_smiles(target_atoms, target_bonds)
    hits = []
    for row, (g, w) in enumerate(zip(got, want)):
        if w is None:
            hits.append(np.array_equal(atoms[row], target_atoms[row])
                        and np.array_equal(bonds[row], target_bonds[row]))
        else:
            hits.append(g == w)
    return float(np.mean(hits)) if hits else 0.0


def write_molecules(out, tag: str, molecules) -> list:
    """Write generated ``molecules`` (``{"atoms": [n], "bonds": [n * n]}``) to
    ``<out>/<tag>.smi`` (one line per molecule, in order: canonical SMILES or ``INVALID``)
    and ``<out>/<tag>.sdf`` (the valid ones, with 2-D coordinates, named by their index).
    Returns the two paths."""
    from pathlib import Path

    from rdkit import Chem
    from rdkit.Chem import AllChem

    from setwise.tasks.datasets.qm9 import to_molecule

    out = Path(out)
    smi, sdf = out / f"{tag}.smi", out / f"{tag}.sdf"
    lines = []
    writer = Chem.SDWriter(str(sdf))
    try:
        for index, mol_arrays in enumerate(molecules):
            atoms = np.asarray(mol_arrays["atoms"])
            n = len(atoms)
            mol = to_molecule(atoms, np.asarray(mol_arrays["bonds"]).reshape(n, n))
            try:
                Chem.SanitizeMol(mol)
            except (ValueError, RuntimeError):
                lines.append("INVALID")
                continue
            lines.append(Chem.MolToSmiles(mol))
            mol = mol.GetMol()
            AllChem.Compute2DCoords(mol)
            mol.SetProp("_Name", f"generated_{index}")
            writer.write(mol)
    finally:
        writer.close()
    smi.write_text("\n".join(lines) + "\n")
    return [smi, sdf]
