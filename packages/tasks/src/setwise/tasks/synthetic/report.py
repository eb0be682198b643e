"""The results page of ``setwise sweep synthetic``: Table 4 beside the paper, training curves,
and generated sets drawn in 3-D with their bonds, per creator."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from setwise.tasks import report as R
from setwise.tasks.synthetic.model import CREATORS, LABELS

COLUMNS = (("train_w2", "Train W2"), ("test_w2", "Test W2"), ("valency_loss", "Valency loss"),
           ("incorrect_valency", "Incorrect valency %"), ("diversity", "Diversity"),
           ("extra_valency_loss", "Extrap. valency loss"),
           ("extra_incorrect_valency", "Extrap. incorrect %"),
           ("extra_diversity", "Extrap. diversity"))
COLORS = {"top_n": "tab:red", "first_n": "tab:blue", "iid": "tab:green", "mlp": "tab:orange"}
NEIGHBOR_DIST = 2.0


def _by_creator(runs) -> dict[str, list]:
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.config["creator"], []).append(run)
    return {c: groups[c] for c in CREATORS if c in groups}


def table4(runs, paper) -> str:
    """Mean ± 95% CI of the final evaluation per creator, the paper's row under each."""
    rows = []
    for creator, group in _by_creator(runs).items():
        cells = []
        for key, _ in COLUMNS:
            values = [r.summary["final"][key] for r in group if key in r.summary["final"]]
            cells.append(f"{R.mean(values):.3g} ± {R.ci95(values):.2g}" if values else "-")
        rows.append([f"{LABELS[creator]} (ours, {len(group)} seeds)", *cells])
        ref = paper.get(creator, {})
        rows.append([f"{LABELS[creator]} (paper)",
                     *(f"{ref[k][0]:g} ± {ref[k][1]:g}" if k in ref else "-" for k, _ in COLUMNS)])
    return R.markdown_table(["Creator", *(label for _, label in COLUMNS)], rows)


def speed_table(runs) -> str:
    """Training steps per second of each creator and backend (mean over seeds)."""
    rows = []
    for creator, group in _by_creator(runs).items():
        for backend in sorted({r.config["backend"] for r in group}):
            sub = [r for r in group if r.config["backend"] == backend]
            rates = [r.summary["steps"] / max(r.summary["time"], 1e-9) for r in sub]
            rows.append([LABELS[creator], backend, len(sub), f"{R.mean(rates):.2f}"])
    return R.markdown_table(["Creator", "Backend", "Runs", "Training steps / s"], rows)


def ordering(runs) -> str:
    """One honest sentence on the paper's claim: Top-n has the lowest valency loss and
    incorrect valency among the creators."""
    means = {c: {k: R.mean([r.summary["final"][k] for r in g])
                 for k in ("valency_loss", "incorrect_valency")}
             for c, g in _by_creator(runs).items()}
    if "top_n" not in means or len(means) < 2:
        return "Too few creators ran to test the paper's ordering."
    parts = []
    for key, what in (("valency_loss", "valency loss"), ("incorrect_valency",
                                                           "incorrect valency")):
        best = min(means, key=lambda c: means[c][key])
        holds = best == "top_n"
        parts.append(f"{what}: lowest for {LABELS[best]} ({means[best][key]:.3g}; Top-n "
                     f"{means['top_n'][key]:.3g}) -- the paper's ordering "
                     f"{'holds' if holds else 'does not hold'} at this budget")
    return "; ".join(parts) + "."


def _curves(ax_loss, ax_val, runs):
    for creator, group in _by_creator(runs).items():
        for i, run in enumerate(group):
            train = [m for m in run.metrics if m["split"] == "train" and "w2" in m]
            evals = [m for m in run.metrics if m["split"] == "eval" and "valency_loss" in m]
            label = LABELS[creator] if i == 0 else None
            ax_loss.plot([m["step"] for m in train], [m["w2"] for m in train],
                         color=COLORS[creator], alpha=0.6, lw=1, label=label)
            ax_val.plot([m["step"] for m in evals], [m["valency_loss"] for m in evals],
                        "o-", color=COLORS[creator], alpha=0.7, label=label)
    ax_loss.set(xlabel="step", ylabel="training W2² per point", yscale="log",
                title="reconstruction (training batches)")
    ax_val.set(xlabel="step", ylabel="valency loss (generated sets)", title="generation")
    ax_loss.legend()
    ax_val.legend()


def _draw_set(ax, points, color):
    d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    for i, j in zip(*np.nonzero(np.triu(d < NEIGHBOR_DIST, 1))):
        ax.plot(*points[[i, j]].T, color="0.4", lw=1)
    ax.scatter(*points.T, color=color, s=18, depthshade=False)
    center, half = points.mean(0), max(np.ptp(points, 0).max() / 2, NEIGHBOR_DIST)
    ax.set(xlim=(center[0] - half, center[0] + half), ylim=(center[1] - half, center[1] + half),
           zlim=(center[2] - half, center[2] + half))
    ax.set_box_aspect((1, 1, 1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])


def samples(runs, per_creator: int = 3, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """``per_creator`` sets generated by the first run of each creator (its checkpoint)."""
    from setwise.tasks.registry import get_task
    from setwise.tasks.sample import sample_run

    task = get_task("synthetic")
    out = {}
    for creator, group in _by_creator(runs).items():
        sets, _ = sample_run(task, group[0].run_dir, num_sets=per_creator, seed=seed,
                             backend=group[0].config["backend"])
        out[creator] = [s["points"] for s in sets]
    return out


def figure(runs, path: Path, generated: dict[str, list[np.ndarray]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(generated)
    cols = max((len(v) for v in generated.values()), default=0)
    fig = plt.figure(figsize=(12, 4 + 3 * rows))
    grid = fig.add_gridspec(1 + rows, max(cols, 2), height_ratios=[1.3] + [1] * rows)
    _curves(fig.add_subplot(grid[0, :max(cols, 2) // 2]),
            fig.add_subplot(grid[0, max(cols, 2) // 2:]), runs)
    for r, (creator, sets) in enumerate(generated.items()):
        for c, points in enumerate(sets):
            ax = fig.add_subplot(grid[1 + r, c], projection="3d")
            _draw_set(ax, points, COLORS[creator])
            ax.set_title(f"{LABELS[creator]}: {len(points)} points", fontsize=9)
    fig.suptitle("Synthetic molecule-like sets: training curves; generated sets (bonds: "
                 f"distance < {NEIGHBOR_DIST:g})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def page(task, runs: Sequence, out, *, command: str, name: str | None = None):
    """Write ``<out>/<name>.md`` and ``.png``; return both paths."""
    from setwise.tasks.synthetic.task import PAPER_TABLE4

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    lines = R.header(f"{task.name}: {task.reproduces} (reduced budget)", runs,
                     command=command, defaults=R.task_defaults(task),
                     notes=task.sweep.notes if task.sweep else "")
    png = figure(runs, out / f"{name}.png", samples(runs))
    lines += ["## Table 4 (final evaluation; mean ± 95% CI over seeds)", "",
              table4(runs, PAPER_TABLE4), "", ordering(runs), "",
              f"![training curves and generated sets]({png.name})", "",
              "## Speed (training steps per second, measured under the load above)", "",
              speed_table(runs), "",
              "## Table 6 (reference-set sizes)", "",
              "Its own page: [`synthetic-reference-size.md`](synthetic-reference-size.md) "
              "(`setwise sweep synthetic:reference-size`).", ""]
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, png


# --- Table 6: the reference-set size ablation (setwise sweep synthetic:reference-size) -------

TABLE6_COLUMNS = (("train_w2", "Train W2"), ("valency_loss", "Valency loss"),
                  ("test_w2", "Test W2"), ("incorrect_valency", "Incorrect valency %"))


def _by_size(runs) -> dict[int, list]:
    groups: dict[int, list] = {}
    for run in runs:
        groups.setdefault(int(run.config["ref_points"]), []).append(run)
    return dict(sorted(groups.items()))


def _finals(group, key) -> list[float]:
    return [r.summary["final"][key] for r in group if key in r.summary["final"]]


def table6(runs, paper) -> str:
    """Final train W2 and valency loss per reference-set size (mean ± std over seeds, as
    the paper's Table 6), the paper's numbers beside them, then test W2 and incorrect
    valency (not in the paper's table)."""
    rows = []
    for size, group in _by_size(runs).items():
        ref = paper.get(size, {})
        cells = []
        for key, _ in TABLE6_COLUMNS:
            values = _finals(group, key)
            cells.append(f"{R.mean(values):.3g} ± {R.std(values):.2g}" if values else "-")
            if key in ("train_w2", "valency_loss"):
                cells.append(f"{ref[key][0]:g} ± {ref[key][1]:g}" if key in ref else "-")
        rows.append([size, len(group), *cells])
    return R.markdown_table(
        ["Reference points", "Seeds", "Train W2", "Train W2 (paper)", "Valency loss",
         "Valency loss (paper)", "Test W2", "Incorrect valency %"], rows)


def trend(runs, paper) -> str:
    """One honest sentence on Table 6's trade-off: does train W2 grow with the reference
    size (Spearman's rank correlation of the means), where is the lowest mean valency loss
    (the paper's: 30 points), is it separated from the runner-up by more than their stds,
    and how far are the valency losses from the paper's?"""
    groups = _by_size(runs)
    if len(groups) < 3:
        return "Too few reference sizes ran to test Table 6's trend."
    sizes = list(groups)
    w2 = [R.mean(_finals(groups[s], "train_w2")) for s in sizes]
    val = {s: R.mean(_finals(groups[s], "valency_loss")) for s in sizes}
    spread = {s: R.std(_finals(groups[s], "valency_loss")) for s in sizes}
    rho = _spearman(sizes, w2)
    paper_rho = _spearman(list(paper), [paper[s]["train_w2"][0] for s in paper])
    best, second = sorted(val, key=val.get)[:2]
    separated = val[second] - val[best] > spread[best] + spread[second]
    ratio = [val[s] / paper[s]["valency_loss"][0] for s in sizes if s in paper]
    return (f"Train W2 against the reference size: Spearman rho {rho:+.2f} (paper "
            f"{paper_rho:+.2f}), so the paper's trend (more reference points, worse training "
            f"reconstruction) {'holds' if rho > 0.5 else 'does not hold'} at this budget. The "
            f"lowest mean valency loss is at {best} reference points ({val[best]:.3g}; paper: "
            f"30), {'as' if best == 30 else 'unlike'} the paper, "
            f"{'clear of' if separated else 'within one std of'} the runner-up ({second} "
            f"points, {val[second]:.3g}); every valency loss here is "
            f"{min(ratio):.2g}-{max(ratio):.2g}x the paper's.")


def _spearman(x, y) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if np.std(rx) == 0 or np.std(ry) == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def table6_page(task, which: str, runs: Sequence, out, *, command: str,
                name: str | None = None):
    """Write ``<out>/<name>.md`` (Table 6 beside the paper, the trend sentence, the grid
    table) and ``<name>.png`` (valency loss against the reference size, ours and the
    paper's) plus ``<name>-w2.png`` (train W2); return the page and the first figure."""
    from setwise.tasks.plotting import plot_ablation
    from setwise.tasks.synthetic.task import PAPER_TABLE6

    spec = task.sweep_spec(which)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or f"{task.name}-{which}"
    groups = _by_size(runs)
    sizes = list(groups)
    figures = {}
    for key, label, suffix in (("valency_loss", "valency loss (generated sets)", ""),
                               ("train_w2", "train W2", "-w2")):
        finals = [_finals(groups[s], key) for s in sizes]
        curves = {"ours": {"mean": [R.mean(f) for f in finals],
                           "std": [R.std(f) for f in finals]},
                  "paper (5 runs)": {"mean": [PAPER_TABLE6.get(s, {}).get(key, (np.nan,))[0]
                                              for s in sizes],
                                     "std": [PAPER_TABLE6.get(s, {}).get(key, (0, np.nan))[1]
                                             for s in sizes]}}
        figures[key] = plot_ablation(out / f"{stem}{suffix}.png", "reference points n0",
                                     sizes, curves, label, f"{task.name}: {spec.figure}")
    lines = R.header(f"{task.name}: {spec.figure} (reduced budget)", runs, command=command,
                     defaults=R.task_defaults(task), notes=spec.notes)
    lines += ["## Table 6 (final evaluation; mean ± std over seeds, as the paper)", "",
              table6(runs, PAPER_TABLE6), "", trend(runs, PAPER_TABLE6), "",
              f"![valency loss against the reference size]({figures['valency_loss'].name})",
              f"![train W2 against the reference size]({figures['train_w2'].name})", "",
              "## Every grid point (final and best valency loss)", "",
              R.grid_table(task, runs, ["ref_points"]), ""]
    md = out / f"{stem}.md"
    md.write_text("\n".join(lines))
    return md, figures["valency_loss"]
