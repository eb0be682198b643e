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


def to_graphs(pred, n) -> tuple[np.ndarray, np.ndarray]:
    """Predicted logits -> ``(atoms [B, 9] (-1 padding), bonds [B, 9, 9])``: argmax atom
    type; a bond where the symmetric edge logit is positive, of the argmax bond type."""
    atom_logits = np.asarray(pred["atom_logits"], np.float64)
    mask = np.arange(atom_logits.shape[1])[None] < np.asarray(n)[:, None]
    atoms = np.where(mask, atom_logits.argmax(-1), -1)
    pairs = mask[:, :, None] & mask[:, None, :] & ~np.eye(atom_logits.shape[1], dtype=bool)
    edge = np.asarray(pred["edge_logits"], np.float64)
    edge = (edge + np.swapaxes(edge, 1, 2)) / 2
    kind = np.asarray(pred["type_logits"], np.float64)
    kind = (kind + np.swapaxes(kind, 1, 2)).argmax(-1) + 1
    bonds = np.where(pairs & (edge > 0), kind, 0)
    return atoms, bonds


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
