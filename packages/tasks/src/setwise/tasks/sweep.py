"""``setwise sweep <task>``: a paper figure's grid (one axis x aggregators x seeds).

Every point is an ordinary run (``<runs_dir>/<run name>``), resumed if it is already there, so
an interrupted sweep continues where it stopped. The results are written as a markdown table
and a PNG, each with the command that made them and the date.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from setwise.tasks.config import resolve
from setwise.tasks.plotting import plot_sweep
from setwise.tasks.registry import Task, get_task
from setwise.tasks.runs import CONFIG, SUMMARY
from setwise.tasks.train import fit, set_threads

LABELS = {"ea": "EA", "sum": "Sum", "mha": "MHA", "pna": "PNA"}


def _finished(run_dir: Path, config: Mapping) -> dict | None:
    summary, saved = run_dir / SUMMARY, run_dir / CONFIG
    if summary.exists() and saved.exists() and json.loads(saved.read_text()) == dict(config):
        return json.loads(summary.read_text())
    return None


def _run_one(task_name: str, config: dict, run_dir: str, device: str, threads: int | None):
    """One grid point (in a worker process when ``jobs > 1``)."""
    set_threads(config["backend"], threads)
    task = get_task(task_name)
    done = _finished(Path(run_dir), config)
    if done is not None:
        return done
    return fit(task, config, run_dir, resume=True, device=device, progress=False)


def grid(task: Task, *, preset, overrides, axis, values, aggregators, seeds) -> list[dict]:
    """The resolved configuration of every grid point: the task's defaults, ``preset``, the
    sweep's own overrides (without a preset: its CPU budget), then ``overrides``."""
    base = dict(task.sweep.overrides) if task.sweep and preset is None else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return [resolve(task, preset, {**base, axis: v, "aggregator": a, "seed": s})
            for v in values for a in aggregators for s in seeds]


def run_sweep(task: Task, configs: Sequence[dict], runs_dir, *, device="auto", jobs=1,
              threads=None) -> list:
    """Train every configuration (skipping finished ones); return their summaries.

    With ``jobs > 1`` the runs go to that many processes, each with ``threads`` CPU threads
    (default: the cores divided among the jobs).
    """
    runs_dir = Path(runs_dir)
    if threads is None and jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
    args = [(task.name, c, str(runs_dir / task.run_name(c)), device, threads) for c in configs]
    if jobs <= 1:
        return [_run_one(*a) for a in args]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_run_one, *zip(*args)))


def summarise(task: Task, summaries: Sequence[Mapping], axis: str, values, aggregators):
    """``{aggregator: {"mean": [...], "std": [...], "best": [...], "n": [...]}}`` over
    ``values``: mean / std over seeds of the final evaluation, and the best evaluation of any
    seed at any step (paper 1 appendix D.1's two curves)."""
    pick = np.min if task.metric_mode == "min" else np.max
    out = {}
    for agg in aggregators:
        curve = {"mean": [], "std": [], "best": [], "n": []}
        for v in values:
            rows = [s for s in summaries if s["aggregator"] == agg and s["config"][axis] == v]
            final = np.array([s["final"][task.metric] for s in rows])
            curve["mean"].append(float(final.mean()))
            curve["std"].append(float(final.std()))
            curve["best"].append(float(pick([s["best"][task.metric] for s in rows])))
            curve["n"].append(len(rows))
        out[agg] = curve
    return out


def _ratios(curves, axis, values, aggs) -> list[str]:
    """The ratio table of each baseline's mean to EA's, and how often EA is the lower."""
    others = [a for a in aggs if a != "ea"]
    lines = ["", "Ratio of each baseline's mean to EA's mean (> 1: EA's error is lower):", "",
             f"| {axis} | " + " | ".join(LABELS.get(a, a) for a in others) + " |",
             "|" + "---|" * (1 + len(others))]
    for i, v in enumerate(values):
        ratios = [curves[a]["mean"][i] / curves["ea"]["mean"][i] for a in others]
        lines.append(f"| {v} | " + " | ".join(f"{r:.2g}" for r in ratios) + " |")
    lines.append("")
    for a in others:
        r = np.array(curves[a]["mean"]) / np.array(curves["ea"]["mean"])
        lines.append(f"- EA's mean error is below {LABELS.get(a, a)}'s at {int((r > 1).sum())} "
                     f"of {len(values)} values of {axis}, at least 10x below at "
                     f"{int((r >= 10).sum())} (median ratio {np.median(r):.2g}).")
    return lines


def markdown(task: Task, curves, axis, values, *, command, config, train_seconds, figure,
             runs) -> str:
    """The results page: table, ratios to EA, configuration, command, date, machine."""
    aggs = list(curves)
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    head = f"| {axis} | " + " | ".join(f"{LABELS.get(a, a)} mean ± std | {LABELS.get(a, a)} best"
                                       for a in aggs)
    lines = [f"# {task.name}: {task.reproduces}", "",
             f"Made by `{command}`; table written {date} ({platform.machine()}, "
             f"{os.cpu_count()} CPU cores shared with other work; {runs} runs, "
             f"{train_seconds / 60:.1f} min of training time in total, less wall time with "
             "`--jobs`).", "",
             f"![{figure}]({figure})", "",
             f"{task.metric.upper()} on the fixed held-out sample after the last step: mean ± "
             "std over seeds (the paper's bold lines; no smoothing), and the best evaluation of "
             "any seed at any evaluation step (the faded lines).", "",
             head + " |", "|" + "---|" * (1 + 2 * len(aggs))]
    for i, v in enumerate(values):
        cells = [f"{curves[a]['mean'][i]:.3g} ± {curves[a]['std'][i]:.2g} | "
                 f"{curves[a]['best'][i]:.3g}" for a in aggs]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    if "ea" in curves and len(aggs) > 1:
        lines += _ratios(curves, axis, values, aggs)
    if task.sweep and task.sweep.notes:
        lines += ["", task.sweep.notes]
    shown = {k: v for k, v in config.items() if k not in (axis, "aggregator", "seed")}
    lines += ["", "Configuration shared by every run:", "", "```json",
              json.dumps(shown, indent=1, sort_keys=True), "```", ""]
    return "\n".join(lines)


def write_results(task: Task, summaries, *, axis, values, aggregators, out_dir, command,
                  name=None) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.md`` and ``<name>.png``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    curves = summarise(task, summaries, axis, values, aggregators)
    png = plot_sweep(out_dir / f"{name}.png", axis, values,
                     {LABELS.get(a, a): c for a, c in curves.items()}, task.metric,
                     f"{task.name}: {task.metric} vs {axis} ({len(summaries)} runs)")
    md = out_dir / f"{name}.md"
    md.write_text(markdown(task, curves, axis, values, command=command,
                           config=summaries[0]["config"],
                           train_seconds=sum(s["time"] for s in summaries), figure=png.name,
                           runs=len(summaries)))
    return md, png
