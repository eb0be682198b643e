"""``setwise compare RUN...``: several runs side by side, a table and one plot.

The table has one row per run: its evaluation metric at the last evaluation and at its best
evaluation (with the step), the steps done, the training time, and the options in which the
runs differ (options they share are listed once, below the table). The plot draws every run's
evaluation metric against steps, one line per run, log scale. Runs still training, or killed,
are compared on the lines they have written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from setwise.tasks.registry import get_task, task_names
from setwise.tasks.runs import SUMMARY, RunDirError, read_config, read_json, read_metrics


@dataclass(frozen=True)
class Run:
    """What :func:`load_runs` reads from one run directory.

    Attributes:
        path: the run directory.
        config: its ``config.json`` (``{}`` if absent).
        evals: its evaluation lines of ``metrics.jsonl``, in step order.
        steps_done: the last step logged (0 if none).
        time: training seconds at the last line (0.0 if none).
        finished: True if ``summary.json`` is there (the run reached its last step).
        task: the task's name, where it is known (summary, or the run folder's parent).
    """

    path: Path
    config: dict
    evals: list
    steps_done: int
    time: float
    finished: bool
    task: str | None


def load_runs(paths: Sequence) -> list[Run]:
    """Read the runs at ``paths``; :class:`RunDirError` names a path that holds no run.

    Files among ``paths`` are left out (a shell glob such as ``runs/median/*`` also matches
    ``compare.png``); a path that does not exist is an error.
    """
    runs = []
    for path in map(Path, paths):
        if path.is_file():
            continue
        if not path.is_dir():
            raise RunDirError(f"compare: {path} is not a run directory (no such directory)")
        config = read_config(path)
        lines = read_metrics(path)
        if config is None and not lines:
            raise RunDirError(f"compare: {path} holds no run (no config.json, no "
                              "metrics.jsonl)")
        summary = read_json(path / SUMMARY, "the run's summary") \
            if (path / SUMMARY).exists() else None
        task = (summary or {}).get("task")
        if task is None and path.resolve().parent.name in task_names():
            task = path.resolve().parent.name
        runs.append(Run(path, config or {}, [m for m in lines if m["split"] == "eval"],
                        lines[-1]["step"] if lines else 0,
                        float(lines[-1].get("time", 0.0)) if lines else 0.0,
                        summary is not None, task))
    if not runs:
        raise RunDirError("compare: no run directory among the paths given")
    return runs


def pick_metric(runs: Sequence[Run], metric: str | None = None) -> tuple[str, str]:
    """``(metric, "min" | "max")``: ``metric`` if given, else the runs' task metric, else the
    first evaluation key the runs share."""
    tasks = {r.task for r in runs if r.task is not None}
    task = get_task(tasks.pop()) if len(tasks) == 1 else None
    if metric is None:
        if task is not None:
            metric = task.metric
        else:
            keys = [k for r in runs for m in r.evals[:1] for k in m
                    if k not in ("step", "split", "time")]
            if not keys:
                raise RunDirError("compare: none of the runs has an evaluation yet")
            metric = keys[0]
    mode = task.metric_mode if task is not None and metric == task.metric else "min"
    return metric, mode


def differing_options(runs: Sequence[Run]) -> tuple[list[str], dict]:
    """``(options that differ between the runs, {option: value} shared by all)``."""
    keys = sorted({k for r in runs for k in r.config})
    differ = [k for k in keys if len({repr(r.config.get(k)) for r in runs}) > 1]
    shared = {k: runs[0].config.get(k) for k in keys if k not in differ}
    return differ, shared


def _value(m: dict, metric: str) -> float:
    value = m.get(metric)
    return float(value) if isinstance(value, int | float) else math.nan


def best(run: Run, metric: str, mode: str) -> dict | None:
    """The run's evaluation line with the best ``metric`` (``None`` without evaluations)."""
    rows = [m for m in run.evals if not math.isnan(_value(m, metric))]
    if not rows:
        return None
    return (min if mode == "min" else max)(rows, key=lambda m: _value(m, metric))


def table(runs: Sequence[Run], metric: str, mode: str) -> str:
    """The comparison as a markdown table, then the options every run shares."""
    differ, shared = differing_options(runs)
    differ = [k for k in differ if k != "steps"]  # the steps column shows done / planned
    names = _short_names(runs)
    head = ["run", *differ, "steps", f"final {metric}", f"best {metric} (step)", "time"]
    rows = []
    for name, run in zip(names, runs):
        top = best(run, metric, mode)
        final = f"{_value(run.evals[-1], metric):.4g}" if run.evals else "-"
        state = "" if run.finished else " (unfinished)"
        steps = f"{run.steps_done}/{run.config.get('steps', '?')}{state}"
        rows.append([name, *(str(run.config.get(k, "-")) for k in differ), steps, final,
                     f"{_value(top, metric):.4g} ({top['step']})" if top else "-",
                     f"{run.time:.0f} s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if shared:
        lines += ["", "shared by every run: " + ", ".join(f"{k}={v}" for k, v in shared.items())]
    return "\n".join(lines)


def _short_names(runs: Sequence[Run]) -> list[str]:
    """Run names: the folder names, or paths relative to the common parent if they clash."""
    names = [r.path.name for r in runs]
    if len(set(names)) == len(names):
        return names
    root = Path(os.path.commonpath([str(r.path.resolve()) for r in runs]))
    return [str(r.path.resolve().relative_to(root)) or r.path.name for r in runs]


def plot(runs: Sequence[Run], metric: str, out) -> Path:
    """Every run's evaluation ``metric`` against steps, one line per run; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    positive = True
    for name, run in zip(_short_names(runs), runs):
        steps = [m["step"] for m in run.evals]
        values = [_value(m, metric) for m in run.evals]
        positive &= all(v > 0 for v in values if not math.isnan(v))
        ax.plot(steps, values, "o-", ms=3, lw=1.2, label=name)
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"eval {metric}")
    ax.set_title(f"{len(runs)} runs: eval {metric}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def default_plot_path(runs: Sequence[Run]) -> Path:
    """``<the runs' common parent>/compare.png``."""
    parents = [str(r.path.resolve().parent) for r in runs]
    return Path(os.path.commonpath(parents)) / "compare.png"
