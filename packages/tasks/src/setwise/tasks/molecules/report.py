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
NOT_SHARED = (*MODEL_KEYS, "seed", "backend")
LABELS = {"sum": "Sum", "mha": "MHA", "pna": "PNA", "ea": "EA", "gcn": "GCN", "gin": "GIN"}


def model(run) -> tuple[str, str, str]:
    return tuple(run.config[k] for k in MODEL_KEYS)


def label(key) -> str:
    gnn, local, readout = key
    return f"{LABELS[gnn]} ({'EA' if local == 'ea' else 'sum'} local) + {LABELS[readout]}"


def collect(runs: Sequence) -> list:
    """``runs`` plus the finished runs beside them with the same budget (module docstring)."""
    from setwise.tasks.sweep import Run

    if not runs:
        return []

    def shared(config):
        return {k: v for k, v in config.items() if k not in NOT_SHARED}

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
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, png
