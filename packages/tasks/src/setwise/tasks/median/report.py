"""The median results page (paper 1 Fig. 3): MSE against D, one curve per aggregator.

Per (aggregator, D): the mean ± sample std over seeds of the final evaluation (the paper's
bold lines) and the best evaluation of any seed at any step (the faded lines, appendix D.1),
the ratio of each baseline's mean to EA's, the task's notes and the shared configuration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from setwise.tasks import report
from setwise.tasks.plotting import plot_sweep

AXIS, SERIES = "dim", "aggregator"


def curves(task, runs: Sequence) -> tuple[list, dict]:
    """``(values of D, {aggregator: {"mean", "std", "best", "n": [per D]}})``."""
    values = sorted({r.config[AXIS] for r in runs})
    aggs = list(dict.fromkeys(r.config[SERIES] for r in runs))
    pick = min if task.metric_mode == "min" else max
    out = {}
    for agg in aggs:
        curve = {"mean": [], "std": [], "best": [], "n": []}
        for v in values:
            rows = [r for r in runs if r.config[SERIES] == agg and r.config[AXIS] == v]
            final = [r.summary["final"][task.metric] for r in rows]
            curve["mean"].append(report.mean(final))
            curve["std"].append(report.std(final))
            curve["best"].append(float(pick(r.summary["best"][task.metric] for r in rows)))
            curve["n"].append(len(rows))
        out[agg] = curve
    return values, out


def ratio_lines(task, values, table) -> list[str]:
    """Each baseline's mean over EA's, and how often EA is the lower."""
    others = [a for a in table if a != "ea"]
    rows = [[v, *(f"{table[a]['mean'][i] / table['ea']['mean'][i]:.2g}" for a in others)]
            for i, v in enumerate(values)]
    lines = ["", "Ratio of each baseline's mean to EA's mean (> 1: EA's error is lower):", "",
             report.markdown_table([AXIS, *(task.label(a) for a in others)], rows), ""]
    for a in others:
        r = np.array(table[a]["mean"]) / np.array(table["ea"]["mean"])
        lines.append(f"- EA's mean error is below {task.label(a)}'s at {int((r > 1).sum())} "
                     f"of {len(values)} values of {AXIS}, at least 10x below at "
                     f"{int((r >= 10).sum())} (median ratio {np.median(r):.2g}).")
    return lines


def write(task, runs: Sequence, out, *, command: str, name: str | None = None
          ) -> tuple[Path, Path]:
    """Write ``<out>/<name>.md`` and ``<name>.png`` (``name``: the task's); their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    values, table = curves(task, runs)
    png = plot_sweep(out / f"{name}.png", AXIS, values,
                     {task.label(a): c for a, c in table.items()}, task.metric,
                     f"{task.name}: {task.metric} vs {AXIS} ({len(runs)} runs)")
    head = [AXIS, *(f"{task.label(a)} {col}" for a in table for col in ("mean ± std", "best"))]
    rows = [[v, *(cell for a in table for cell in (
        f"{table[a]['mean'][i]:.3g} ± {table[a]['std'][i]:.2g}", f"{table[a]['best'][i]:.3g}"))]
        for i, v in enumerate(values)]
    lines = report.header(f"{task.name}: {task.reproduces}", runs, command=command,
                          defaults=report.task_defaults(task))
    lines += [f"![{task.sweep.figure}]({png.name})", "",
              f"{task.metric.upper()} on the fixed held-out sample after the last step: mean ± "
              "sample std over seeds (the paper's bold lines; no smoothing), and the best "
              "evaluation of any seed at any evaluation step (the faded lines).", "",
              report.markdown_table(head, rows)]
    if "ea" in table and len(table) > 1:
        lines += ratio_lines(task, values, table)
    if task.sweep.notes:
        lines += ["", task.sweep.notes]
    configs = [r.config for r in runs]
    shared = {k: v for k, v in configs[0].items() if k not in (AXIS, SERIES, "seed")
              and all(c.get(k) == v for c in configs)}
    lines += ["", "Configuration shared by every run:", "", "```json",
              json.dumps(shared, indent=1, sort_keys=True), "```", ""]
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, png
