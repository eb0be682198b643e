"""Helpers every task's results page shares (``Task.report``, called by ``setwise sweep``).

A page starts with :func:`header` (the command that made it, the date, the machine and its
``uptime`` load average, the runs and their training time, and the budget each option was run
at, read from the configurations actually used), then the task's own tables
(:func:`markdown_table`, with :func:`mean_std` / :func:`ci95` cells) and figure.

A run is any object with ``.config`` (the resolved configuration), ``.summary`` (the run's
``summary.json``), ``.metrics`` (the lines of its ``metrics.jsonl``) and ``.run_dir``
(:class:`setwise.tasks.sweep.Run`).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from setwise.tasks.config import defaults

#: Options that say how a run was computed, not how much was trained: left out of the
#: budget notes.
NOT_BUDGET = ("backend", "aggregator", "seed")


def mean(values: Sequence[float]) -> float:
    return float(np.mean(values))


def std(values: Sequence[float]) -> float:
    """The sample standard deviation (``ddof=1``; 0 for a single value)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def ci95(values: Sequence[float]) -> float:
    """Half-width of the 95% confidence interval of the mean (Student's t, ``n - 1`` degrees
    of freedom); 0 for a single value.

    .. math:: t_{0.975, n-1} \\, s / \\sqrt{n}
    """
    n = len(values)
    if n < 2:
        return 0.0
    return float(stats.t.ppf(0.975, n - 1) * std(values) / np.sqrt(n))


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``"mean ± std"`` (3 significant digits, std 2)."""
    return f"{mean(values):.{digits}g} ± {std(values):.2g}"


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table; floats are written with 3 significant digits."""
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def load_average() -> str:
    """``uptime``'s three load averages (1, 5, 15 min), or ``"unknown"``."""
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def budget_notes(configs: Sequence[Mapping], defaults: Mapping | None = None) -> list[str]:
    """One line per option: its value if every run used the same, else the values used;
    with ``defaults`` (the task's CPU configuration), options at their default are left
    out and the default is shown beside a changed value."""
    lines = []
    keys = sorted({k for c in configs for k in c} - set(NOT_BUDGET))
    for key in keys:
        values = sorted({json.dumps(c.get(key)) for c in configs})
        if defaults is not None and values == [json.dumps(defaults.get(key))]:
            continue
        shown = values[0] if len(values) == 1 else "{" + ", ".join(values) + "}"
        default = "" if defaults is None else f" (default {json.dumps(defaults.get(key))})"
        lines.append(f"- `{key}`: {shown}{default}")
    return lines


def task_defaults(task) -> dict:
    """The task's CPU configuration (its options' defaults)."""
    return defaults(task)


def header(title: str, runs: Sequence, *, command: str, defaults: Mapping | None = None,
           notes: str = "") -> list[str]:
    """The first lines of a results page (markdown lines).

    Args:
        title: the page title (the task and the paper figure).
        runs: the runs the page reports.
        command: the command that made the page.
        defaults: the task's default configuration (the budget notes show departures).
        notes: the task's own notes on how its budget departs from the paper.
    """
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    seconds = sum(float(r.summary.get("time", 0.0)) for r in runs)
    backends = sorted({r.config.get("backend", "?") for r in runs})
    lines = [f"# {title}", "",
             f"Made by `{command}`; written {date} on {platform.machine()} "
             f"({os.cpu_count()} CPU cores shared with other work, load average "
             f"{load_average()} when the page was written); {len(runs)} runs on "
             f"{', '.join(backends)}, {seconds / 60:.1f} min of training time in total (less "
             "wall time with `--jobs`).", ""]
    budget = budget_notes([r.config for r in runs], defaults)
    if budget:
        lines += ["Options of these runs (against the task's CPU defaults):", "", *budget, ""]
    if notes:
        lines += [notes, ""]
    return lines


def grid_table(task, runs: Sequence, options: Sequence[str]) -> str:
    """One row per grid point (the values of ``options``): the number of seeds, the final
    ``task.metric`` as mean ± std and 95% CI, and the best evaluation of any seed."""
    points = list(dict.fromkeys(tuple(r.config[o] for o in options) for r in runs))
    pick = min if task.metric_mode == "min" else max
    rows = []
    for point in points:
        group = [r for r in runs if tuple(r.config[o] for o in options) == point]
        final = [r.summary["final"][task.metric] for r in group]
        best = pick(r.summary["best"][task.metric] for r in group)
        rows.append([*(task.label(v) if o == "aggregator" else v
                       for o, v in zip(options, point)),
                     len(group), mean_std(final), f"{ci95(final):.2g}", f"{best:.3g}"])
    return markdown_table([*options, "seeds", f"final {task.metric} mean ± std", "95% CI ±",
                           f"best {task.metric}"], rows)


def generic_page(task, runs: Sequence, out, *, command: str, name: str | None = None):
    """The default results page of a task's sweep: :func:`header` and :func:`grid_table`
    over the sweep's grid options. Returns ``(markdown path, None)``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    options = list(task.sweep.grid) if task.sweep else []
    lines = header(f"{task.name}: {task.reproduces}", runs, command=command,
                   defaults=task_defaults(task), notes=task.sweep.notes if task.sweep else "")
    lines += [grid_table(task, runs, options), ""]
    md = out / f"{name or task.name}.md"
    md.write_text("\n".join(lines))
    return md, None


def ablation_page(task, which: str, runs: Sequence, out, *, command: str,
                  name: str | None = None):
    """The default page of the ablation ``which``: :func:`header`, :func:`grid_table` over its
    grid, and a plot of the final ``task.metric`` (mean ± std over seeds, and the best of any
    seed) against the grid's first option, one line per value of the others. Returns
    ``(markdown path, figure path)``."""
    from setwise.tasks.plotting import plot_ablation

    spec = task.sweep_spec(which)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or f"{task.name}-{which}"
    options = list(spec.grid)
    lines = header(f"{task.name}: {spec.figure}", runs, command=command,
                   defaults=task_defaults(task), notes=spec.notes)
    lines += [grid_table(task, runs, options), ""]
    axis, others = options[0], options[1:]
    values = list(dict.fromkeys(r.config[axis] for r in runs))
    curves = {}
    for rest in dict.fromkeys(tuple(r.config[o] for o in others) for r in runs):
        label = ", ".join(f"{o} {task.label(v)}" for o, v in zip(others, rest)) or task.metric
        finals = [[r.summary["final"][task.metric] for r in runs if r.config[axis] == v
                   and tuple(r.config[o] for o in others) == rest] for v in values]
        curves[label] = {"mean": [mean(f) if f else np.nan for f in finals],
                         "std": [std(f) if f else np.nan for f in finals]}
    figure = plot_ablation(out / f"{stem}.png", axis, values, curves, task.metric,
                           f"{task.name}: {spec.figure}")
    lines += [f"![{spec.figure}]({figure.name})", ""]
    md = out / f"{stem}.md"
    md.write_text("\n".join(lines))
    return md, figure


def group_by(runs: Sequence, option: str, order: Sequence | None = None) -> dict[Any, list]:
    """The runs by their value of ``option``: in ``order`` (values absent from it are left
    out), else in the runs' order."""
    groups: dict[Any, list] = {}
    for run in runs:
        groups.setdefault(run.config[option], []).append(run)
    return groups if order is None else {v: groups[v] for v in order if v in groups}


def speed_table(runs: Sequence, option: str, labels: Mapping[Any, str],
                order: Sequence | None = None) -> str:
    """Training steps per second of whole runs (steps over training time, mean over seeds)
    per value of ``option`` (shown as ``labels``) and backend."""
    rows = []
    for value, group in group_by(runs, option, order).items():
        for backend in sorted({r.config["backend"] for r in group}):
            sub = [r for r in group if r.config["backend"] == backend]
            rates = [r.summary["steps"] / max(r.summary["time"], 1e-9) for r in sub]
            rows.append([labels.get(value, value), backend, len(sub), f"{mean(rates):.2f}"])
    return markdown_table([option.capitalize(), "Backend", "Runs", "Training steps / s"], rows)


def run_predictions(task, run, config: Mapping) -> tuple[dict, dict]:
    """A trained run's predictions on the first batch of ``task.eval_batches(config)``, its
    checkpoint's parameters and state loaded on the CPU (any backend's run):
    ``(batch, {name: array})``. For the pages' pictures."""
    from setwise.tasks.train import init_weights, trainer_class

    batch = task.eval_batches(config)[0]
    trainer = trainer_class(config["backend"])(task, config, "cpu")
    init_weights(trainer, run.run_dir)
    return batch, trainer.predict(batch, 0)
