"""The results page of ``setwise sweep omniglot-counting``: Fig. 4b (train accuracy dashed,
test accuracy solid, one colour per aggregator, mean over seeds), the table of final and best
accuracies beside the paper's claim, and the training speed per aggregator and backend."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from setwise.tasks.report import header, markdown_table, mean_std, task_defaults

#: Fig. 4b has no numbers in the text; its claim, as the paper words it (section 5.2)
PAPER_CLAIM = ("Equilibrium Aggregation outperforms both of the baselines, both in terms of "
               "train and test set accuracy")
COLOURS = {"sum": "tab:blue", "mha": "tab:orange", "pna": "tab:purple", "ea": "tab:green"}
SPEED_FILE = "omniglot-counting-speed.json"


def curves(runs: Sequence, key: str):
    """``(steps, mean over runs, std)`` of the evaluation metric ``key`` (runs evaluated at
    the same steps)."""
    per_run = [{m["step"]: m[key] for m in r.metrics if m["split"] == "eval"} for r in runs]
    steps = sorted(set.intersection(*(set(c) for c in per_run)))
    values = np.array([[c[s] for s in steps] for c in per_run])
    return np.array(steps), values.mean(0), values.std(0)


def plot(task, groups: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for agg, runs in groups.items():
        colour = COLOURS.get(agg)
        for key, style in (("train_accuracy", "--"), ("test_accuracy", "-")):
            steps, mean, std = curves(runs, key)
            ax.plot(steps, mean, style, color=colour,
                    label=f"{task.label(agg)} {key.split('_')[0]}")
            ax.fill_between(steps, mean - std, mean + std, color=colour, alpha=0.12, lw=0)
    ax.axhline(0.1, color="grey", lw=0.8, ls=":", label="chance (1/10)")
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy")
    ax.set_title("Omniglot class counting (Fig. 4b at a CPU budget; mean ± std over seeds)",
                 fontsize=9)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def results_table(task, groups: dict) -> tuple[str, dict]:
    rows, finals = [], {}
    for agg, runs in groups.items():
        final = {k: [r.summary["final"][k] for r in runs]
                 for k in ("train_accuracy", "test_accuracy", "test_xent")}
        best_test = [max(m["test_accuracy"] for m in r.metrics if m["split"] == "eval")
                     for r in runs]
        speed = [r.summary.get("steps_per_second_this_process") or np.nan for r in runs]
        finals[agg] = {k: float(np.mean(v)) for k, v in final.items()}
        rows.append([task.label(agg), len(runs), mean_std(final["train_accuracy"]),
                     mean_std(final["test_accuracy"]), mean_std(best_test),
                     mean_std(final["test_xent"]), f"{np.nanmean(speed):.2f}"])
    head = ["aggregator", "seeds", "final train acc", "final test acc",
            "best test acc (per run)", "final test xent", "steps/s (incl. eval)"]
    return markdown_table(head, rows), finals


def ordering_sentence(task, finals: dict) -> str:
    if "ea" not in finals or len(finals) < 2:
        return "The grid does not hold EA and a baseline: no ordering to check."
    verdicts = []
    for split in ("train", "test"):
        key = f"{split}_accuracy"
        ranking = sorted(finals, key=lambda a: -finals[a][key])
        above = all(finals["ea"][key] > finals[a][key] for a in finals if a != "ea")
        order = " > ".join(f"{task.label(a)} {finals[a][key]:.3f}" for a in ranking)
        verdict = "EA above both baselines" if above else "EA not above both baselines"
        verdicts.append(f"{split} accuracy: {order} ({verdict})")
    held = all("EA above" in v for v in verdicts)
    return ("At this budget the paper's ordering " + ("holds" if held else "does not hold")
            + " on the mean final accuracy over seeds: " + "; ".join(verdicts) + ".")


def ea_diagnostics(groups: dict) -> str:
    """EA's inner loop and loss over the last training window of each EA run."""
    trains = [[m for m in r.metrics if m["split"] == "train"] for r in groups.get("ea", [])]
    if not trains or not all(trains):
        return ""
    last = [t[-1] for t in trains]
    span = {k: (min(m[k] for m in last), max(m[k] for m in last))
            for k in ("xent", "ea_grad_max_norm", "ea_aux", "ea_active_steps")}
    return (f"EA's last training window (over its seeds): cross-entropy "
            f"{span['xent'][0]:.3f}-{span['xent'][1]:.3f} (log 10 = {np.log(10):.3f} is the "
            "uniform guess), final inner-gradient max-norm "
            f"{span['ea_grad_max_norm'][0]:.3g}-{span['ea_grad_max_norm'][1]:.3g}, auxiliary "
            f"loss {span['ea_aux'][0]:.3g}-{span['ea_aux'][1]:.3g}, active inner steps "
            f"{span['ea_active_steps'][0]:.3g}-{span['ea_active_steps'][1]:.3g} of the "
            f"{groups['ea'][0].config['ea_steps']}.")


def speed_section(task, out: Path) -> list[str]:
    path = out / SPEED_FILE
    if not path.exists():
        return [f"No speed measurement in `{SPEED_FILE}` (run "
                "`python -m setwise.tasks.omniglot_counting.speed --out "
                f"docs/results/{SPEED_FILE}`).", ""]
    data = json.loads(path.read_text())
    rows, by = [], {}
    for r in data["rows"]:
        by[(r["backend"], r["widths"], r["aggregator"])] = r["steps_per_second"]
    for (backend, widths, agg), rate in by.items():
        base = by.get((backend, widths, "sum"))
        rows.append([backend, widths, task.label(agg), f"{rate:.2f}",
                     f"{base / rate:.2f}x" if base else "-"])
    loads = sorted({r["load_average"] for r in data["rows"]})
    return ["## Speed", "",
            f"Made by `{data['command']}` on {data['date']} ({data['machine']}; "
            f"{data['threads']} thread per backend; load averages during the measurement: "
            f"{loads[0]} ... {loads[-1]}). Training steps per second (forward, backward, "
            "Adam; batch 8 sets of 16 images; JAX jit-compiled, compilation excluded; torch "
            f"eager; median of {data.get('repeats', 1)} windows of {data.get('steps', '?')} "
            "steps), measured on a machine loaded by other work: compare numbers within one "
            "row group, not with other pages. EA's cost is its time per step over Sum's "
            "(same backend and widths).", "",
            markdown_table(["backend", "widths", "aggregator", "steps/s",
                            "time per step vs Sum"], rows), ""]


def write(task, runs: Sequence, out, *, command: str, name: str | None = None):
    """Write ``<name>.md`` and ``<name>.png`` into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    order = [a for a in ("sum", "mha", "pna", "ea") if any(r.config["aggregator"] == a
                                                          for r in runs)]
    groups = {a: [r for r in runs if r.config["aggregator"] == a] for a in order}
    png = out / f"{name}.png"
    plot(task, groups, png)
    table, finals = results_table(task, groups)
    lines = header(f"{task.name}: {task.reproduces} (reduced budget)", runs, command=command,
                   defaults=task_defaults(task), notes=task.sweep.notes)
    lines += [f"![Fig. 4b at a CPU budget]({png.name})", "",
              "Train (dashed) is accuracy on fresh sets of the training characters, test "
              "(solid) on sets of the evaluation alphabets, both in evaluation mode "
              "(batch-norm running statistics), at every evaluation; mean ± std over seeds.",
              "", table, "",
              f"Paper (Fig. 4b, after 10^7 steps, no numbers in the text): \"{PAPER_CLAIM}\".",
              "", ordering_sentence(task, finals), "", ea_diagnostics(groups), "",
              *speed_section(task, out)]
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, png
