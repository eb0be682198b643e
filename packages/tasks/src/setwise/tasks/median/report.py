"""The median results page (paper 1 Fig. 3): MSE against D, one curve per aggregator.

Per (aggregator, D): the mean ± sample std over seeds of the final evaluation (the paper's
bold lines, with error bars) and the best evaluation of any seed at any step (the faded lines,
appendix D.1), the constant predictor's MSE (predicting the mean median) as a line, the ratio
of each baseline's mean to EA's, EA's inner-loop diagnostics at the start and the end of
training (auxiliary loss, its share of the loss, final gradient max-norm, active steps) with
one EA run's curve, the task's notes, the shared configuration, and the table of the page
this one replaced (``<name>-before.md`` beside it, if there).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from setwise.tasks import report
from setwise.tasks.median import data
from setwise.tasks.plotting import plot_run, plot_sweep

AXIS, SERIES = "dim", "aggregator"
#: EA's logged diagnostics shown at the first and the last training log line.
EA_LOGS = ("ea_aux", "ea_aux_share", "ea_grad_max_norm", "ea_active_steps")
#: Sets drawn from the training distribution to estimate the mean median.
CONSTANT_SAMPLE, CONSTANT_SEED = 50_000, 7


def constant_mse(task, config) -> tuple[float, float]:
    """``(mean median, MSE)`` of the best constant predictor: the mean median of the training
    distribution (estimated on :data:`CONSTANT_SAMPLE` fresh sets), scored on the run's
    held-out sample like every model."""
    rng = np.random.default_rng(CONSTANT_SEED)
    _, medians, _ = data.sample_sets(rng, CONSTANT_SAMPLE, int(config["set_size"]))
    level = float(np.mean(medians, dtype=np.float64))
    target = np.concatenate([np.asarray(b["y"], np.float64) for b in task.eval_batches(config)])
    return level, float(np.mean((target - level) ** 2))


def ea_diagnostics(runs: Sequence) -> str:
    """Per D, EA's diagnostics at its first and last training log line (mean over seeds)."""
    ea = [r for r in runs if r.config[SERIES] == "ea"]
    values = sorted({r.config[AXIS] for r in ea})
    rows = []
    for v in values:
        lines = [[m for m in r.metrics if m.get("split") == "train" and "ea_aux" in m]
                 for r in ea if r.config[AXIS] == v]
        lines = [ls for ls in lines if ls]
        if not lines:
            continue
        cells = []
        for key in EA_LOGS:
            first = report.mean([ls[0].get(key, np.nan) for ls in lines])
            last = report.mean([ls[-1].get(key, np.nan) for ls in lines])
            cells.append(f"{first:.3g} → {last:.3g}")
        rows.append([v, f"{lines[0][0]['step']} → {lines[0][-1]['step']}", *cells])
    return report.markdown_table([AXIS, "step", *EA_LOGS], rows)


def before_table(path: Path) -> list[str]:
    """The first markdown table of the page at ``path`` (``[]`` if there is none)."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return []
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")),
               len(lines))
    return lines[start:end]


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
    below = np.ones(len(values), bool)
    for a in others:
        r = np.array(table[a]["mean"]) / np.array(table["ea"]["mean"])
        below &= r > 1
        lines.append(f"- EA's mean error is below {task.label(a)}'s at {int((r > 1).sum())} "
                     f"of {len(values)} values of {AXIS}, at least 10x below at "
                     f"{int((r >= 10).sum())} (median ratio {np.median(r):.2g}).")
    holds = 2 * int(below.sum()) > len(values)
    lines += ["", f"Verdict: the paper's ordering (EA's mean error below every baseline's at "
              f"most values of {AXIS}) {'holds' if holds else 'does not hold'} here: EA is "
              f"below all of {', '.join(task.label(a) for a in others)} at {int(below.sum())} "
              f"of {len(values)} values of {AXIS}."]
    return lines


def write(task, runs: Sequence, out, *, command: str, name: str | None = None
          ) -> tuple[Path, Path]:
    """Write ``<out>/<name>.md`` and ``<name>.png`` (``name``: the task's), plus
    ``<name>-ea-curve.png`` (the curve of EA's run at the largest D, first seed); return the
    page's and the figure's paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    values, table = curves(task, runs)
    level, const = constant_mse(task, runs[0].config)
    png = plot_sweep(out / f"{name}.png", AXIS, values,
                     {task.label(a): c for a, c in table.items()}, task.metric,
                     f"{task.name}: {task.metric} vs {AXIS} ({len(runs)} runs)",
                     hlines={"constant predictor": const})
    head = [AXIS, *(f"{task.label(a)} {col}" for a in table for col in ("mean ± std", "best"))]
    rows = [[v, *(cell for a in table for cell in (
        f"{table[a]['mean'][i]:.3g} ± {table[a]['std'][i]:.2g}", f"{table[a]['best'][i]:.3g}"))]
        for i, v in enumerate(values)]
    lines = report.header(f"{task.name}: {task.reproduces}", runs, command=command,
                          defaults=report.task_defaults(task))
    lines += [f"![{task.sweep.figure}]({png.name})", "",
              f"{task.metric.upper()} on the fixed held-out sample after the last step: mean ± "
              "sample std over seeds (the paper's bold lines, with ±1 std error bars; no "
              "smoothing), and the best evaluation of any seed at any evaluation step (the "
              "faded lines). The dotted line is the constant predictor: the mean median of the "
              f"training distribution ({level:.4f}, from {CONSTANT_SAMPLE} fresh sets) scored "
              f"on the same held-out sets, MSE {const:.4f}.", "",
              report.markdown_table(head, rows)]
    if "ea" in table and len(table) > 1:
        lines += ratio_lines(task, values, table)
    ea_runs = [r for r in runs if r.config[SERIES] == "ea" and r.metrics]
    if ea_runs:
        shown = max(ea_runs, key=lambda r: (r.config[AXIS], -r.config["seed"]))
        curve = plot_run(shown.run_dir, out / f"{name}-ea-curve.png", metric=task.metric)
        lines += ["", "EA's inner loop during training (training log lines, mean over seeds: "
                  "first → last): the auxiliary loss of eq. 5 (`ea_aux`), its weighted share "
                  "of the training loss (`ea_aux_share`), the final gradient's max-norm "
                  "(`ea_grad_max_norm`, Fig. 5) and the steps applied out of T "
                  "(`ea_active_steps`, gtol 1e-3):", "", ea_diagnostics(runs), "",
                  f"One EA run's curve ({shown.run_dir.name}), one axis per quantity:", "",
                  f"![EA training curve]({curve.name})"]
    if task.sweep.notes:
        lines += ["", task.sweep.notes]
    configs = [r.config for r in runs]
    shared = {k: v for k, v in configs[0].items() if k not in (AXIS, SERIES, "seed")
              and all(c.get(k) == v for c in configs)}
    lines += ["", "Configuration shared by every run:", "", "```json",
              json.dumps(shared, indent=1, sort_keys=True), "```", ""]
    before = before_table(out / f"{name}-before.md")
    if before:
        lines += ["## Before", "",
                  f"The page this one replaced ([{name}-before.md]({name}-before.md): torch, "
                  "1000 steps, EA's inner step size 0.02 and its potential initialised with "
                  "zero biases and a unit-scale last layer):", "", *before, ""]
        if (out / f"{name}-ea-step-size-0.125.md").exists():
            lines += [f"With that initialisation, EA at the paper's step size 0.125 diverged "
                      f"([{name}-ea-step-size-0.125.md]({name}-ea-step-size-0.125.md)).", ""]
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, png
