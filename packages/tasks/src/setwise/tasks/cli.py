"""The ``setwise`` command.

::

    setwise tasks                                   # the tasks and the paper figure of each
    setwise train median --backend jax --aggregator ea --dim 16
    setwise train median --backend jax --init-from runs/median/torch-ea-D16-s0 --run-dir R
    setwise train median --preset paper             # the paper's configuration (10^7 steps)
    setwise sweep median --out docs/results         # paper 1 Fig. 3 at a CPU budget
    setwise plot runs/median/torch-ea-D16-s0        # training curve of a run
    setwise check all                               # PyTorch and JAX models agree (float64)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from setwise.tasks import check as check_command
from setwise.tasks import sample as sample_command
from setwise.tasks.checkpoint import check_init_from
from setwise.tasks.config import ConfigError, resolve
from setwise.tasks.registry import Task, get_task, task_names
from setwise.tasks.runs import RunDirError

RUNS_DIR = Path("runs")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_task_options(parser: argparse.ArgumentParser, task: Task, skip=(), defaults=None):
    group = parser.add_argument_group("task options (default: the task's CPU configuration)")
    defaults = defaults or {}
    for o in task.options:
        if o.name in skip:
            continue
        default = defaults.get(o.name, o.default)
        kwargs = {"default": None, "help": f"{o.help} (default {default!r})"}
        if o.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = o.type
            kwargs["metavar"] = None if o.choices else o.name.upper()
            if o.choices:
                kwargs["choices"] = o.choices
            if o.sequence:
                kwargs["nargs"] = "+"
        group.add_argument(_flag(o.name), dest=f"opt_{o.name}", **kwargs)
    parser.add_argument("--preset", choices=tuple(task.presets), default=None,
                        help="named configuration: 'cpu' (the default) or 'paper' (the "
                             "paper's steps and widths; GPU-sized); options given on the "
                             "command line override it")
    parser.add_argument("--device", default="auto",
                        help="auto (GPU if present), cpu, cuda / gpu (default auto)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per run (default: the framework's own choice; 1 is "
                             "much faster for small models on a busy CPU)")


def _overrides(args) -> dict:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_")}


def _add_train(subparsers):
    p = subparsers.add_parser("train", help="train a task's model",
                              description="Train a task; metrics go to <run-dir>/metrics.jsonl.")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in task_names():
        task = get_task(name)
        tp = tasks.add_parser(name, help=task.description, description=task.reproduces)
        _add_task_options(tp, task)
        tp.add_argument("--run-dir", type=Path, default=None,
                        help=f"run directory (default {RUNS_DIR}/<task>/<backend>-<aggregator>-..)")
        tp.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its last checkpoint")
        tp.add_argument("--overwrite", action="store_true",
                        help="discard a run already in --run-dir")
        tp.add_argument("--init-from", type=Path, default=None, metavar="RUN_DIR",
                        help="start from the parameters (and state) in another run's "
                             "checkpoint, trained on either backend; Adam starts afresh")
        tp.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_sweep(subparsers):
    p = subparsers.add_parser("sweep", help="train a paper figure's grid and write its page")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in task_names():
        task = get_task(name)
        if task.sweep is None:
            continue
        s = task.sweep
        tp = tasks.add_parser(name, help=f"{task.reproduces}",
                              description=f"Grid of {s.figure}: {' x '.join(s.grid)} x seeds, "
                                          "every point an ordinary (resumable) run.")
        _add_task_options(tp, task, skip=(*s.grid, "seed"), defaults=s.overrides)
        grid = tp.add_argument_group("the grid (default: the paper figure's)")
        for option in task.options:
            if option.name in s.grid:
                shown = " ".join(map(str, s.grid[option.name]))
                grid.add_argument(_flag(option.name), dest=f"grid_{option.name}", nargs="+",
                                  type=option.type, choices=option.choices, default=None,
                                  metavar=None if option.choices else option.name.upper(),
                                  help=f"values of {option.name} (default {shown})")
        grid.add_argument("--seeds", type=int, nargs="+", default=list(s.seeds),
                          help="default: %(default)s")
        tp.add_argument("--runs-dir", type=Path, default=RUNS_DIR / f"sweep-{name}",
                        help="where the runs go (default %(default)s)")
        tp.add_argument("--out", type=Path, default=Path("docs/results"),
                        help="where the page (and its figure) go (default %(default)s)")
        tp.add_argument("--name", default=name, help="file name of the page and figure, "
                        "without extension (default %(default)s)")
        tp.add_argument("--jobs", type=int, default=1,
                        help="runs in parallel (processes)")


def _add_plot(subparsers):
    p = subparsers.add_parser("plot", help="plot a run's training curve")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=None, help="PNG path (default <run_dir>/curve.png)")


def _data_cli():
    """The datasets subcommand (``setwise.tasks.datasets.cli``), if it is there."""
    try:
        from setwise.tasks.datasets import cli as data_cli
    except ImportError:
        return None
    if not (hasattr(data_cli, "register") and hasattr(data_cli, "run")):
        return None
    return data_cli


def build_parser(data_cli=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="setwise", description="Train and evaluate the setwise paper tasks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("tasks", help="list the tasks and the paper figure or table each reproduces")
    _add_train(sub)
    _add_sweep(sub)
    _add_plot(sub)
    check_command.register(sub)
    sample_command.register(sub)
    if data_cli is not None:
        data_cli.register(sub)
    return parser


def cmd_tasks(_args) -> int:
    for name in task_names():
        task = get_task(name)
        sweep = f"; setwise sweep {name}: {task.sweep.figure}" if task.sweep else ""
        print(f"{name:10s} {task.reproduces}")
        print(f"{'':10s} {task.description}; aggregators {', '.join(task.aggregators)}; "
              f"presets {', '.join(task.presets)}{sweep}")
    return 0


def cmd_train(args) -> int:
    from setwise.tasks.train import fit, format_summary, set_threads

    task = get_task(args.task)
    config = resolve(task, args.preset, _overrides(args))
    set_threads(config["backend"], args.threads)
    run_dir = args.run_dir or RUNS_DIR / task.name / task.run_name(config)
    if args.init_from is not None:
        check_init_from(task, config, args.init_from)
    summary = fit(task, config, run_dir, resume=args.resume, overwrite=args.overwrite,
                  device=args.device, progress=not args.no_progress, init_from=args.init_from)
    print(format_summary(summary))
    print(f"metrics: {run_dir / 'metrics.jsonl'}  curve: {run_dir / 'curve.png'}",
          file=sys.stderr)
    return 0


def cmd_sweep(args, argv) -> int:
    from setwise.tasks.sweep import grid, run_sweep

    task = get_task(args.task)
    values = {k[5:]: v for k, v in vars(args).items() if k.startswith("grid_") and v}
    configs = grid(task, preset=args.preset, overrides=_overrides(args), values=values,
                   seeds=args.seeds)
    runs = run_sweep(task, configs, args.runs_dir, device=args.device, jobs=args.jobs,
                     threads=args.threads)
    command = "setwise " + " ".join(shlex.quote(a) for a in argv)
    md, figure = task.report(runs, args.out, command=command, name=args.name)
    print(md.read_text())
    print(f"wrote {md}" + (f" and {figure}" if figure else ""), file=sys.stderr)
    return 0


def cmd_plot(args) -> int:
    from setwise.tasks.plotting import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    data_cli = _data_cli()
    args = build_parser(data_cli).parse_args(argv)
    try:
        if args.command == "tasks":
            return cmd_tasks(args)
        if args.command == "train":
            return cmd_train(args)
        if args.command == "sweep":
            return cmd_sweep(args, argv)
        if args.command == "plot":
            return cmd_plot(args)
        if args.command == "check":
            return check_command.run(args.tasks)
        if args.command == "sample":
            return sample_command.run(args)
        return int(data_cli.run(args) or 0)
    except (ConfigError, RunDirError, FileNotFoundError) as err:
        print(f"setwise {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
