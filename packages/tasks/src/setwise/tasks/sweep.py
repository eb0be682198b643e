"""``setwise sweep <task>``: a paper figure's grid, any options x seeds, as ordinary runs.

A task's :class:`~setwise.tasks.registry.SweepSpec` names a grid over any of its options
(``{"dim": (1, 2, ...), "aggregator": ("sum", "mha", "ea")}``), the seeds, the CPU budget
(``overrides``) and notes. Every point is an ordinary run (``<runs_dir>/<run name>``),
resumed if it is already there and skipped if it is finished, so an interrupted sweep
continues where it stopped. The task then writes its page from the runs
(:meth:`~setwise.tasks.registry.Task.report`, with the helpers of :mod:`setwise.tasks.report`).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from setwise.tasks.config import resolve
from setwise.tasks.registry import Task, get_task
from setwise.tasks.runs import CONFIG, SUMMARY, read_metrics
from setwise.tasks.train import fit, set_threads


@dataclass
class Run:
    """One finished run of a sweep, as the task's report reads it."""

    config: dict
    summary: dict
    metrics: list[dict]
    run_dir: Path

    @classmethod
    def read(cls, run_dir) -> Run:
        run_dir = Path(run_dir)
        return cls(json.loads((run_dir / CONFIG).read_text()),
                   json.loads((run_dir / SUMMARY).read_text()), read_metrics(run_dir), run_dir)


def _finished(run_dir: Path, config: Mapping) -> bool:
    summary, saved = run_dir / SUMMARY, run_dir / CONFIG
    return summary.exists() and saved.exists() and \
        json.loads(saved.read_text()) == dict(config)


def _run_one(task_name: str, config: dict, run_dir: str, device: str, threads: int | None
             ) -> str:
    """One grid point (in a worker process when ``jobs > 1``); returns its directory."""
    set_threads(config["backend"], threads)
    if not _finished(Path(run_dir), config):
        fit(get_task(task_name), config, run_dir, resume=True, device=device, progress=False)
    return run_dir


def grid(task: Task, *, preset=None, overrides: Mapping | None = None,
         values: Mapping[str, Sequence] | None = None, seeds: Sequence[int] | None = None,
         which: str | None = None) -> list[dict]:
    """The resolved configuration of every grid point of the task's sweep, or of its
    ablation ``which`` (:meth:`~setwise.tasks.registry.Task.sweep_spec`).

    Each is the task's defaults, then ``preset``, then the sweep's own ``overrides`` (its CPU
    budget; only without a preset), then ``overrides``, then one combination of the grid's
    values (``values`` replaces the values of the options it names) and a seed.
    """
    spec = task.sweep_spec(which)
    base = dict(spec.overrides) if preset is None else {}
    base.update({k: v for k, v in (overrides or {}).items() if v is not None})
    axes = {**spec.grid, **(values or {})}
    unknown = sorted(set(axes) - set(spec.grid))
    if unknown:
        raise ValueError(f"sweep: {', '.join(unknown)} not in the grid of {task.name!r}; "
                         f"expected some of {', '.join(spec.grid)}")
    names = list(axes)
    return [resolve(task, preset, {**base, **dict(zip(names, point)), "seed": seed})
            for point in itertools.product(*(axes[n] for n in names))
            for seed in (seeds or spec.seeds)]


def run_names(task: Task, configs: Sequence[Mapping]) -> list[str]:
    """A directory name per configuration: the task's :meth:`~setwise.tasks.registry.Task.
    run_name` where it tells them apart, else ``<backend>-<option>=<value>...-s<seed>`` over
    the options that vary."""
    names = [task.run_name(c) for c in configs]
    if len(set(names)) == len(names):
        return names
    varying = [k for k in configs[0] if k not in ("backend", "seed")
               and len({json.dumps(c[k]) for c in configs}) > 1]
    return ["-".join([c["backend"], *(f"{k}={json.dumps(c[k]).replace(' ', '')}"
                                      for k in varying), f"s{c['seed']}"]) for c in configs]


def run_sweep(task: Task, configs: Sequence[dict], runs_dir, *, device="auto", jobs=1,
              threads=None) -> list[Run]:
    """Train every configuration (skipping finished ones); return the runs.

    With ``jobs > 1`` the runs go to that many processes, each with ``threads`` CPU threads
    (default: the cores divided among the jobs).
    """
    runs_dir = Path(runs_dir)
    if threads is None and jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
    names = run_names(task, configs)
    args = [(task.name, c, str(runs_dir / n), device, threads) for c, n in zip(configs, names)]
    if jobs <= 1:
        dirs = [_run_one(*a) for a in args]
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            dirs = list(pool.map(_run_one, *zip(*args)))
    return [Run.read(d) for d in dirs]
