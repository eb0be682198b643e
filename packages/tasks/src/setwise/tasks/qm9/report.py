"""The results page of ``setwise sweep qm9``: Table 5 beside the paper's rows and the baselines
it quotes, training curves, and a grid of generated molecules (RDKit's drawing) per creator."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from setwise.tasks import report as R
from setwise.tasks.qm9.model import CREATORS, LABELS

COLUMNS = (("validity", "Valid (%)"), ("valid_unique", "Unique and valid (%)"),
           ("uniqueness", "Unique among valid (%)"), ("valid_connected", "Valid, connected (%)"),
           ("reconstruction", "Test reconstruction (%)"))
COLORS = {"top_n": "tab:red", "first_n": "tab:blue", "iid": "tab:green", "mlp": "tab:orange"}
LOSSES = (("atom_ce", "atom-type CE"), ("edge_bce", "edge-presence BCE"),
          ("type_ce", "bond-type CE"))


def _by_creator(runs) -> dict[str, list]:
    return R.group_by(runs, "creator", CREATORS)


def _final(group, key) -> list[float]:
    return [100 * r.summary["final"][key] for r in group if key in r.summary["final"]]


def table5(runs, paper, baselines) -> str:
    """Final evaluation per creator (mean ± std over seeds, %), the paper's row under each,
    then the baselines Table 5 quotes."""
    rows = []
    for creator, group in _by_creator(runs).items():
        cells = []
        for key, _ in COLUMNS:
            values = _final(group, key)
            cells.append(f"{R.mean(values):.1f} ± {R.std(values):.1f}" if values else "-")
        rows.append([f"Set2GraphVAE, {LABELS[creator]} (ours, {len(group)} seeds)", *cells])
        ref = paper.get(creator, {})
        rows.append([f"Set2GraphVAE, {LABELS[creator]} (paper)",
                     *(f"{ref[k][0]:g} ± {ref[k][1]:g}" if k in ref else "-"
                       for k, _ in COLUMNS)])
    for method, generator, valid, unique in baselines:
        rows.append([f"{method}, {generator} (paper's quote)", f"{valid:g}", f"{unique:g}",
                     *(["-"] * (len(COLUMNS) - 2))])
    return R.markdown_table(["Model", *(label for _, label in COLUMNS)], rows)


def ordering(runs) -> str:
    """One honest sentence on the paper's claim: i.i.d. clearly worst on valid and on
    unique-and-valid, the other three close."""
    groups = _by_creator(runs)
    if "iid" not in groups or len(groups) < 2:
        return "Too few creators ran to test the paper's ordering."
    parts = []
    for key, what in (("validity", "valid %"), ("valid_unique", "unique-and-valid %")):
        means = {c: R.mean(_final(g, key)) for c, g in groups.items()}
        others = {c: v for c, v in means.items() if c != "iid"}
        worst = min(means, key=means.get)
        spread = max(others.values()) - min(others.values())
        stds = [R.std(_final(g, key)) for c, g in groups.items() if c != "iid"]
        parts.append(f"{what}: lowest for {LABELS[worst]} ({means[worst]:.1f}; i.i.d. "
                     f"{means['iid']:.1f}, the others {min(others.values()):.1f}-"
                     f"{max(others.values()):.1f}, spread {spread:.1f} against a seed std of "
                     f"up to {max(stds):.1f})")
    iid_worst = all(
        R.mean(_final(groups["iid"], k)) <= min(R.mean(_final(g, k)) for c, g in groups.items()
                                                  if c != "iid")
        for k in ("validity", "valid_unique"))
    verdict = ("i.i.d. is the worst creator on both, as in the paper"
               if iid_worst else "i.i.d. is not the worst creator on both: the paper's "
               "ordering does not hold at this budget")
    return "; ".join(parts) + f". {verdict}."


def training_note(runs) -> str:
    """Where training stands: the final training losses per creator (mean over seeds)
    against a constant edge predictor's BCE (the entropy of the bond density)."""
    from setwise.tasks.qm9 import data

    graphs = data.molecules("train", int(runs[0].config["train_molecules"]))
    n = graphs.num_atoms
    density = (graphs.bonds > 0).sum() / max(int((n * (n - 1)).sum()), 1)
    constant = -(density * np.log(density) + (1 - density) * np.log(1 - density))
    parts = []
    for creator, group in _by_creator(runs).items():
        last = [[m for m in r.metrics if m["split"] == "train" and "edge_bce" in m][-1]
                for r in group]
        parts.append(f"{LABELS[creator]} atom-type CE {R.mean([m['atom_ce'] for m in last]):.3f}"
                     f", edge BCE {R.mean([m['edge_bce'] for m in last]):.3f}")
    return ("Final training losses (mean over seeds): " + "; ".join(parts)
            + f". A constant edge predictor at the bond density ({density:.3f}) has a BCE of "
            f"{constant:.3f}: where the edge BCE is still close to it, the decoder has learnt "
            "little of which atoms bond, reconstructions are never exact, and the sampled "
            "graphs' validity reflects the bond density and atom types more than learnt "
            "structure.")


def _curves(axes, runs):
    for creator, group in _by_creator(runs).items():
        for i, run in enumerate(group):
            train = [m for m in run.metrics if m["split"] == "train" and "edge_bce" in m]
            evals = [m for m in run.metrics if m["split"] == "eval" and "valid_unique" in m]
            label = LABELS[creator] if i == 0 else None
            for ax, (key, _) in zip(axes[:3], LOSSES):
                ax.plot([m["step"] for m in train], [m[key] for m in train],
                        color=COLORS[creator], alpha=0.6, lw=1, label=label)
            axes[3].plot([m["step"] for m in evals], [100 * m["valid_unique"] for m in evals],
                         "o-", color=COLORS[creator], alpha=0.7, label=label)
    for ax, (_, title) in zip(axes[:3], LOSSES):
        ax.set(xlabel="step", ylabel="training loss", title=title)
    axes[3].set(xlabel="step", ylabel="%", title="unique and valid (generated)")
    axes[0].legend()


def samples(runs, per_creator: int = 8, seed: int = 0) -> dict[str, list[dict]]:
    """``per_creator`` molecules generated by the first run of each creator."""
    from setwise.tasks.registry import get_task
    from setwise.tasks.sample import sample_run

    task = get_task("qm9")
    out = {}
    for creator, group in _by_creator(runs).items():
        molecules, _ = sample_run(task, group[0].run_dir, num_sets=per_creator, seed=seed,
                                  backend=group[0].config["backend"])
        out[creator] = molecules
    return out


def molecule_grid(generated: dict[str, list[dict]], path: Path) -> Path:
    """One row of drawn molecules per creator (RDKit's drawing; invalid graphs drawn
    unsanitised and captioned as such)."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    from setwise.tasks.datasets.qm9 import to_molecule

    mols, legends = [], []
    cols = max((len(v) for v in generated.values()), default=1)
    for creator, molecules in generated.items():
        for k in range(cols):
            if k >= len(molecules):
                mols.append(Chem.Mol())
                legends.append("")
                continue
            atoms = np.asarray(molecules[k]["atoms"])
            mol = to_molecule(atoms, np.asarray(molecules[k]["bonds"]).reshape(len(atoms), -1))
            try:
                Chem.SanitizeMol(mol)
                text = Chem.MolToSmiles(mol)
            except (ValueError, RuntimeError):
                mol.UpdatePropertyCache(strict=False)
                text = "invalid"
            mols.append(mol.GetMol())
            legends.append(f"{LABELS[creator]}: {text}"[:32])
    image = Draw.MolsToGridImage(mols, molsPerRow=cols, subImgSize=(220, 180),
                                 legends=legends, returnPNG=False)
    image.save(str(path))
    return path


def figure(runs, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    _curves(axes, runs)
    fig.suptitle("QM9 Set2GraphVAE: training losses (after the D.3 matching) and "
                 "unique-and-valid generated molecules")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def page(task, runs: Sequence, out, *, command: str, name: str | None = None):
    """Write ``<out>/<name>.md``, ``.png`` and ``<name>-molecules.png``; return the markdown
    and the figure paths."""
    from setwise.tasks.qm9.task import PAPER_BASELINES, PAPER_TABLE5

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    lines = R.header(f"{task.name}: {task.reproduces} (reduced budget)", runs,
                     command=command, defaults=R.task_defaults(task),
                     notes=task.sweep.notes if task.sweep else "")
    png = figure(runs, out / f"{name}.png")
    grid = molecule_grid(samples(runs), out / f"{name}-molecules.png")
    lines += ["## Table 5 (final evaluation; mean ± std over seeds, % of generated molecules)",
              "", table5(runs, PAPER_TABLE5, PAPER_BASELINES), "",
              "Valid: RDKit sanitises the graph; a graph of several fragments counts as valid "
              "when every fragment does (the authors' metric; `Valid, connected` is the "
              "stricter count). Unique and valid: distinct canonical SMILES among the valid "
              "graphs, as a % of the generated ones.", "",
              ordering(runs), "", training_note(runs), "",
              f"![training curves]({png.name})", "",
              "Generated molecules (first run of each creator, z ~ N(0, I), seed 0):", "",
              f"![generated molecules]({grid.name})", "",
              "## Speed (training steps per second, measured under the load above)", "",
              R.speed_table(runs, "creator", LABELS, CREATORS), ""]
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, png
