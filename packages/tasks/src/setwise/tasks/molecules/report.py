"""The molecules results page (paper 1 Table 2 and Fig. 5).

Per model (GNN, local aggregation, readout): the validation metric at the best evaluation
and the test metric at that evaluation (paper 1 section 5.3: "the test MAP is reported for the
best MAP attained on the validation set"), mean ± sample std over seeds, beside Table 2's
MOLPCBA numbers; the orderings of the readouts by mean test metric against the paper's; the
training speed of each model; and a figure: (a) the test metric per model, (b) EA's
final-gradient max-norm and auxiliary loss during training (Fig. 5).

The page collects every finished run in the sweep's runs folder that shares the budget of the
runs passed (so Table 2's EA + EA row, made by a second ``setwise sweep`` call that names it,
lands on the same page).

The pages of appendix E's ablations (:func:`ablation`: E.1 inner steps, E.3 auxiliary weight,
E.4 potential width) give the same two numbers per value of the ablated option, beside the
paper's column, with EA's diagnostics at the last evaluation and one line on whether the
paper's trend holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from setwise.tasks import report

#: paper 1 Table 2 (MOLPCBA, mean average precision): (gnn, local, readout) -> (valid, test)
PAPER = {("gcn", "sum", "sum"): (0.223, 0.203), ("gcn", "sum", "mha"): (0.248, 0.229),
         ("gcn", "sum", "pna"): (0.226, 0.209), ("gcn", "sum", "ea"): (0.269, 0.252),
         ("gin", "sum", "sum"): (0.255, 0.232), ("gin", "sum", "mha"): (0.254, 0.234),
         ("gin", "sum", "pna"): (0.262, 0.244), ("gin", "sum", "ea"): (0.263, 0.246),
         ("gin", "ea", "ea"): (0.269, 0.258)}
MODEL_KEYS = ("gnn", "local_aggregator", "aggregator")
LABELS = {"sum": "Sum", "mha": "MHA", "pna": "PNA", "ea": "EA", "gcn": "GCN", "gin": "GIN"}


def model(run) -> tuple[str, str, str]:
    return tuple(run.config[k] for k in MODEL_KEYS)


def label(key) -> str:
    gnn, local, readout = key
    return f"{LABELS[gnn]} ({'EA' if local == 'ea' else 'sum'} local) + {LABELS[readout]}"


def collect(runs: Sequence, vary: Sequence[str] = MODEL_KEYS) -> list:
    """``runs`` plus the finished runs beside them with the same budget (module docstring):
    the same configuration but for the options ``vary`` (the models of Table 2, or an
    ablation's grid), the seed and the backend."""
    from setwise.tasks.sweep import Run

    if not runs:
        return []
    skip = {*vary, "seed", "backend"}

    def shared(config):
        return {k: v for k, v in config.items() if k not in skip}

    budget = shared(runs[0].config)
    seen = {Path(r.run_dir).resolve() for r in runs}
    out = list(runs)
    for folder in sorted(Path(runs[0].run_dir).parent.iterdir()):
        if folder.resolve() in seen or not (folder / "summary.json").exists():
            continue
        try:
            other = Run.read(folder)
        except (OSError, ValueError):
            continue
        if other.config.get("dataset") and shared(other.config) == budget:
            out.append(other)
    return out


def rows(runs: Sequence) -> dict:
    """``{model: {"valid": [...], "test": [...], "steps_per_s": [...]}}`` over seeds."""
    out: dict = {}
    for r in runs:
        entry = out.setdefault(model(r), {"valid": [], "test": [], "steps_per_s": []})
        best = r.summary["best"]
        entry["valid"].append(float(best["valid_metric"]))
        entry["test"].append(float(best["test_metric"]))
        entry["steps_per_s"].append(float(r.summary.get("steps_per_second_this_process", 0)))
    order = {k: i for i, k in enumerate(PAPER)}
    return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def orderings(table: dict) -> list[str]:
    """One line per GNN: readouts by mean test metric, ours against the paper's (over the
    readouts run here)."""
    lines = []
    for gnn in ("gcn", "gin"):
        ours = [(np.mean(v["test"]), k[2]) for k, v in table.items()
                if k[0] == gnn and k[1] == "sum"]
        present = {a for _, a in ours}
        paper = [(t, k[2]) for k, (_, t) in PAPER.items()
                 if k[0] == gnn and k[1] == "sum" and k[2] in present]
        if len(ours) < 2:
            continue
        mine = " > ".join(LABELS[a] for _, a in sorted(ours, reverse=True))
        theirs = " > ".join(LABELS[a] for _, a in sorted(paper, reverse=True))
        same = "the same" if mine == theirs else "not the paper's"
        lines.append(f"- {LABELS[gnn]}: here {mine}; paper {theirs} ({same} ordering).")
    return lines


def ea_versus_sum(table: dict) -> list[str]:
    """EA's mean test metric minus Sum's per GNN, with the seeds' spread."""
    lines = []
    for gnn in ("gcn", "gin"):
        ea, base = table.get((gnn, "sum", "ea")), table.get((gnn, "sum", "sum"))
        if ea and base:
            gap = np.mean(ea["test"]) - np.mean(base["test"])
            spread = max(report.std(ea["test"]), report.std(base["test"]))
            verdict = "within" if abs(gap) <= spread else "beyond"
            lines.append(f"- {LABELS[gnn]}: EA - Sum = {gap:+.3f} test (paper "
                         f"{PAPER[(gnn, 'sum', 'ea')][1] - PAPER[(gnn, 'sum', 'sum')][1]:+.3f}), "
                         f"{verdict} one seed standard deviation ({spread:.3f}).")
    return lines


def figure(table: dict, runs: Sequence, path: Path, metric_name: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(16, 4.8))
    keys = list(table)
    means = [np.mean(table[k]["test"]) for k in keys]
    errs = [report.std(table[k]["test"]) for k in keys]
    colors = ["tab:blue" if k[0] == "gcn" else "tab:orange" for k in keys]
    left.bar(range(len(keys)), means, yerr=errs, color=colors, capsize=3)
    left.set_xticks(range(len(keys)), [label(k).replace(" + ", "\n") for k in keys],
                    rotation=60, fontsize=7)
    finite = [(m, e) for m, e in zip(means, errs) if np.isfinite(m + e)]
    if finite:
        left.set_ylim(max(0.0, min(m - e for m, e in finite) - 0.05),
                      max(m + e for m, e in finite) + 0.02)
    left.set_ylabel(f"test {metric_name} at best validation")
    left.set_title("(a) Table 2 at a CPU budget (mean ± std over seeds)")
    for ax, key, title in ((mid, "ea_grad_max_norm", "final-gradient max-norm"),
                           (right, "ea_aux", "auxiliary loss (eq. 5)")):
        for key_model in keys:
            for prefix, style in (("", "-"), ("local_", ":")):
                curves = [[m for m in r.metrics if m["split"] == "train" and prefix + key in m]
                          for r in runs if model(r) == key_model]
                curves = [c for c in curves if c]
                if not curves:
                    continue
                n = min(len(c) for c in curves)
                values = np.mean([[m[prefix + key] for m in c[:n]] for c in curves], axis=0)
                ax.plot([m["step"] for m in curves[0][:n]], values, style, lw=1.2,
                        label=f"{label(key_model)}: {'local' if prefix else 'readout'} "
                        f"(mean of {len(curves)} seeds)")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"(b) EA {title} (Fig. 5)" if key == "ea_grad_max_norm"
                     else f"(c) EA {title} (Fig. 5)")
    handles, names = mid.get_legend_handles_labels()
    if handles:
        right.legend(handles, names, fontsize=6, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(task, runs: Sequence, out, *, command: str = "", name: str | None = None):
    """Write ``<name>.md`` and ``<name>.png`` into ``out``; return their paths."""
    from setwise.tasks.datasets.ogbg import META

    runs = collect(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    table = rows(runs)
    dataset = runs[0].config["dataset"]
    metric_name = {"rocauc": "ROC-AUC", "ap": "AP"}[META[dataset][1]]
    lines = report.header(f"{task.name}: {task.reproduces} (reduced budget)", runs,
                          command=command, defaults=report.task_defaults(task),
                          notes=task.sweep.notes if task.sweep else "")
    lines += [f"Dataset **{dataset}** ({metric_name}); the paper's numbers are MOLPCBA mean "
              "average precision, so compare orderings, not values.", ""]
    body = []
    for key, v in table.items():
        paper = PAPER.get(key, ("", ""))
        body.append([label(key), len(v["test"]), report.mean_std(v["valid"]),
                     report.mean_std(v["test"]), paper[0], paper[1],
                     f"{np.mean(v['steps_per_s']):.2f}"])
    lines += [report.markdown_table(
        ["model (GNN, local, readout)", "seeds", f"valid {metric_name} (best)",
         f"test {metric_name} at best valid", "paper valid MAP", "paper test MAP",
         "steps/s (whole run, under load)"], body), ""]
    lines += ["Readouts ordered by mean test metric:", "", *orderings(table), "",
              *ea_versus_sum(table), ""]
    png = figure(table, runs, out / f"{name}.png", metric_name)
    lines += [f"![Table 2 and Fig. 5 at a CPU budget]({png.name})", ""]
    lines += ablation_links(task, out)
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, png


#: paper 1 appendix E (MOLPCBA, best validation MAP): ablation -> (option, {value: MAP},
#: the trend the paper states)
PAPER_ABLATIONS = {
    "inner-steps": ("ea_steps", {1: 0.235, 2: 0.257, 5: 0.263, 10: 0.268},
                    "increasing with T, levelling off (E.1)"),
    "aux-weight": ("ea_aux_weight", {1e-4: 0.250, 1e-3: 0.261, 1e-2: 0.257, 1e-1: 0.254,
                                     1.0: 0.263},
                   "relatively stable, higher weights slightly better on average (E.3)"),
    "capacity": ("ea_capacity", {0.1: 0.208, 0.3: 0.218, 0.6: 0.228, 1.0: 0.233, 1.3: 0.222},
                 "a drop at 30% and 10%, small differences above (E.4)"),
}
ABLATION_DIAGNOSTICS = (("ea_aux", "EA aux loss (eq. 5)"),
                        ("ea_grad_max_norm", "EA final-gradient max-norm"))


def ablation_rows(runs: Sequence, option: str) -> dict:
    """``{value: {"valid": [...], "test": [...], "<diagnostic>": [...]}}`` over seeds, by
    value of ``option`` in increasing order: the best validation metric, the test metric at
    that evaluation and EA's diagnostics at the last evaluation."""
    out: dict = {}
    for r in sorted(runs, key=lambda r: r.config[option]):
        entry = out.setdefault(r.config[option], {"valid": [], "test": [], "steps_per_s": []})
        entry["valid"].append(float(r.summary["best"]["valid_metric"]))
        entry["test"].append(float(r.summary["best"]["test_metric"]))
        entry["steps_per_s"].append(float(r.summary.get("steps_per_second_this_process", 0)))
        for key, _ in ABLATION_DIAGNOSTICS:
            if key in r.summary["final"]:
                entry.setdefault(key, []).append(float(r.summary["final"][key]))
    return out


def ablation_verdict(which: str, table: dict) -> list[str]:
    """Whether the paper's trend (:data:`PAPER_ABLATIONS`) holds on the mean best validation
    metric, against the seeds' spread ``s`` (the largest sample std of any value):

    - inner-steps: holds if the mean at the largest T exceeds the mean at the smallest by
      more than ``s`` and the Spearman correlation of T with the means is positive;
    - aux-weight: holds ("stable") if all means lie within ``2 s`` of each other;
    - capacity: holds if the mean over 10% and 30% is below the mean over the larger
      capacities by more than ``s``.
    """
    from scipy import stats

    _, paper, trend = PAPER_ABLATIONS[which]
    values = list(table)
    means = np.array([np.mean(table[v]["valid"]) for v in values])
    spread = max(report.std(table[v]["valid"]) for v in values)
    lines = [f"- Paper: {trend}."]
    if len(values) < 2:
        return lines + ["- Here: fewer than two values; no trend."]
    rho = float(stats.spearmanr(values, means)[0]) if np.ptp(means) > 0 else 0.0
    best = values[int(np.argmax(means))]
    shown = [v for v in values if v in paper]
    paper_best = max(shown, key=paper.get) if shown else None
    lines.append(f"- Here: best mean validation at {best} (paper: {paper_best}); means span "
                 f"{np.ptp(means):.3f} against a largest seed std of {spread:.3f}; Spearman "
                 f"correlation of {PAPER_ABLATIONS[which][0]} with the mean {rho:+.2f}.")
    if which == "inner-steps":
        gain = means[-1] - means[0]
        holds = gain > spread and rho > 0
        detail = f"T = {values[-1]} minus T = {values[0]}: {gain:+.3f}"
    elif which == "aux-weight":
        holds = np.ptp(means) <= 2 * spread
        detail = f"range of the means {np.ptp(means):.3f} against 2 s = {2 * spread:.3f}"
    else:
        small = [m for v, m in zip(values, means) if v < 0.5]
        large = [m for v, m in zip(values, means) if v >= 0.5]
        if not small or not large:
            return lines + ["- Here: no capacities on both sides of 50%; no verdict."]
        gap = np.mean(large) - np.mean(small)
        holds = gap > spread
        detail = f"mean of >= 60% minus mean of <= 30%: {gap:+.3f}"
    lines.append(f"- Verdict: the paper's trend {'holds' if holds else 'does not hold'} at "
                 f"this budget ({detail}; s = {spread:.3f}).")
    return lines


def ablation(task, which: str, runs: Sequence, out, *, command: str = "",
             name: str | None = None):
    """The page of appendix E's ablation ``which``: per value of the ablated option the best
    validation metric and the test metric at it (mean ± std over seeds) beside the paper's
    best validation MAP, EA's auxiliary loss and final-gradient max-norm at the last
    evaluation, the verdict (:func:`ablation_verdict`), and a plot of both metrics against
    the option (:func:`setwise.tasks.plotting.plot_ablation`). Every finished run of the same
    budget in the runs folder is included (:func:`collect`). Returns ``(md, png)``."""
    from setwise.tasks.datasets.ogbg import META
    from setwise.tasks.plotting import plot_ablation

    spec = task.sweep_spec(which)
    option, paper, _ = PAPER_ABLATIONS[which]
    runs = collect(runs, vary=tuple(spec.grid))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or f"{task.name}-{which}"
    table = ablation_rows(runs, option)
    metric_name = {"rocauc": "ROC-AUC", "ap": "AP"}[META[runs[0].config["dataset"]][1]]
    lines = report.header(f"{task.name}: {spec.figure} (reduced budget)", runs,
                          command=command, defaults=report.task_defaults(task),
                          notes=spec.notes)
    head = [option, "seeds", f"valid {metric_name} (best)", f"test {metric_name} at best "
            "valid", "paper best valid MAP", *(f"{t} (last eval)" for _, t in
                                               ABLATION_DIAGNOSTICS),
            "steps/s (whole run, under load)"]
    body = [[v, len(e["valid"]), report.mean_std(e["valid"]), report.mean_std(e["test"]),
             paper.get(v, ""),
             *(report.mean_std(e[k], 2) if k in e else "" for k, _ in ABLATION_DIAGNOSTICS),
             f"{np.mean(e['steps_per_s']):.2f}"] for v, e in table.items()]
    lines += [report.markdown_table(head, body), "", *ablation_verdict(which, table), ""]
    values = list(table)
    curves = {name_: {"mean": [np.mean(table[v][k]) for v in values],
                      "std": [report.std(table[v][k]) for v in values]}
              for name_, k in ((f"valid {metric_name} (best)", "valid"),
                               (f"test {metric_name} at best valid", "test"))}
    png = plot_ablation(out / f"{stem}.png", option, values, curves, metric_name,
                        f"{task.name}: {spec.figure}")
    lines += [f"![{spec.figure}]({png.name})", ""]
    md = out / f"{stem}.md"
    md.write_text("\n".join(lines))
    return md, png


def ablation_links(task, out) -> list[str]:
    """An "Ablations" section for the Table 2 page: per ablation whose page is in ``out``
    (``<task>-<name>.md``), a link and its trend lines (:func:`ablation_verdict`, read back
    from that page)."""
    lines = []
    for which, spec in task.ablations.items():
        page = Path(out) / f"{task.name}-{which}.md"
        if not page.exists():
            continue
        said = {line[2:].split(": ", 1)[0]: line[2:].split(": ", 1)[1]
                for line in page.read_text().splitlines()
                if line.startswith(("- Paper: ", "- Here: ", "- Verdict: "))}
        lines.append(f"- [{spec.figure}]({page.name}): paper: {said.get('Paper', '?')} "
                     f"Verdict: {said.get('Verdict', '?')} Here: {said.get('Here', '?')}")
    return ["## Ablations (appendix E)", "", *lines, ""] if lines else []
