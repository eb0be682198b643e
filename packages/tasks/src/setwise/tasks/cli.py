"""The ``setwise`` command.

::

    setwise tasks                                   # the tasks and the paper figure of each
    setwise train median --backend jax --aggregator ea --dim 16
    setwise train median --run-dir runs/median/torch-ea-D16-s0 --resume --steps 3000
    setwise train median --backend jax --init-from runs/median/torch-ea-D16-s0 --run-dir R
    setwise train median --preset paper             # the paper's configuration (10^7 steps)
    setwise sweep median --jobs 2                   # paper 1 Fig. 3 -> runs/sweep-median/
    setwise plot runs/median/torch-ea-D16-s0        # training curve of a run
    setwise check all                               # PyTorch and JAX models agree (float64)
    setwise compare runs/median/*                   # several runs: a table and one plot

Every option is checked before anything is written: a bad value is one line
``setwise <command>: error: ...`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

from setwise.tasks import check as check_command
from setwise.tasks import sample as sample_command
from setwise.tasks.checkpoint import check_init_from
from setwise.tasks.config import ConfigError, resolve
from setwise.tasks.registry import Task, get_task, task_names
from setwise.tasks.runs import RunDir, RunDirError, read_config, read_metrics

RUNS_DIR = Path("runs")
DEVICES = ("auto", "cpu", "cuda", "gpu", "tpu")
#: CPU threads per run unless ``--threads`` says otherwise. PyTorch's own default (one
#: busy-waiting OpenMP thread per core) is many times slower for these small models on a CPU
#: that other work shares (README, "Paper tasks": the measurement).
DEFAULT_THREADS = 1


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer (>= 1)")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite float (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _option_type(option):
    return finite_float if option.type is float else option.type


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
            kwargs["type"] = _option_type(o)
            kwargs["metavar"] = None if o.choices else o.name.upper()
            if o.choices:
                kwargs["choices"] = o.choices
            if o.sequence:
                kwargs["nargs"] = "+"
        group.add_argument(_flag(o.name), dest=f"opt_{o.name}", **kwargs)
    parser.add_argument("--preset", choices=tuple(task.presets), default=None,
                        help="named configuration: 'cpu' (the default), 'tiny' (seconds, for "
                             "tests) or 'paper' (the paper's steps and widths; GPU-sized); "
                             "options given on the command line override it")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="auto (GPU if present), cpu, cuda / gpu, tpu (JAX only) "
                             "(default auto)")
    parser.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                        help=f"CPU threads per run (default {DEFAULT_THREADS}: fastest for "
                             "these small models on a CPU shared with other work; more "
                             "threads pay off only on an idle machine or with large widths)")


def _overrides(args) -> dict:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}


def _add_train(subparsers):
    p = subparsers.add_parser("train", help="train a task's model",
                              description="Train a task; metrics go to <run-dir>/metrics.jsonl.")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in task_names():
        task = get_task(name)
        tp = tasks.add_parser(name, help=task.description, description=task.reproduces)
        _add_task_options(tp, task)
        tp.add_argument("--run-dir", type=Path, default=None,
                        help=f"run directory (default {RUNS_DIR}/{name}/<backend>-<aggregator>"
                             "-..., printed at the start)")
        tp.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its last checkpoint, with its "
                             "saved options (only --steps may change)")
        tp.add_argument("--overwrite", action="store_true",
                        help="discard a run already in --run-dir")
        tp.add_argument("--init-from", type=Path, default=None, metavar="RUN_DIR",
                        help="start from the parameters (and state) in another run's "
                             "checkpoint, trained on either backend; Adam starts afresh")
        tp.add_argument("--no-progress", action="store_true", help="no progress bar")
        tp.add_argument("--no-plot", action="store_true",
                        help="do not draw curve.png at the end (setwise plot RUN_DIR draws it "
                             "later)")
        tp.add_argument("--devices", type=positive_int, default=1,
                        help="train on N devices with one global batch (torch: N processes "
                             "under torchrun, started here unless already under it; JAX: a "
                             "mesh of N devices, N host devices on a CPU). See README "
                             "'Training on several GPUs' (default 1)")


def _add_sweep(subparsers):
    p = subparsers.add_parser(
        "sweep", help="train a paper figure's grid (or an ablation's) and write its page",
        description="TASK is a task's paper figure or table (setwise sweep molecules), or one "
                    "of its ablations, TASK:NAME (setwise sweep molecules:inner-steps); "
                    "'setwise tasks' lists them.")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in task_names():
        task = get_task(name)
        if task.sweep is not None:
            _add_one_sweep(tasks, task, name, None)
        for which in task.ablations:
            _add_one_sweep(tasks, task, f"{name}:{which}", which)


def _add_one_sweep(tasks, task, name: str, which: str | None):
    s = task.sweep_spec(which)
    tp = tasks.add_parser(name, help=f"{task.reproduces}" if which is None else s.figure,
                          description=f"Grid of {s.figure}: {' x '.join(s.grid)} x seeds, "
                                      "every point an ordinary (resumable) run.")
    _add_task_options(tp, task, skip=(*s.grid, "seed"), defaults=s.overrides)
    grid = tp.add_argument_group("the grid (default: the paper figure's)")
    for option in task.options:
        if option.name in s.grid:
            shown = " ".join(map(str, s.grid[option.name]))
            grid.add_argument(_flag(option.name), dest=f"grid_{option.name}", nargs="+",
                              type=_option_type(option), choices=option.choices, default=None,
                              metavar=None if option.choices else option.name.upper(),
                              help=f"values of {option.name} (default {shown})")
    grid.add_argument("--seeds", type=int, nargs="+", default=list(s.seeds),
                      help="default: %(default)s")
    slug = name.replace(":", "-")
    tp.add_argument("--runs-dir", type=Path, default=RUNS_DIR / f"sweep-{slug}",
                    help="where the runs go (default %(default)s)")
    tp.add_argument("--out", type=Path, default=None,
                    help="where the page (and its figure) go (default: --runs-dir, beside "
                         "the runs; maintainers pass --out docs/results to replace the "
                         "committed results)")
    tp.add_argument("--name", default=slug, help="file name of the page and figure, "
                    "without extension (default %(default)s)")
    tp.add_argument("--jobs", type=positive_int, default=1,
                    help="runs in parallel (processes)")


def _add_plot(subparsers):
    p = subparsers.add_parser("plot", help="plot a run's training curve")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=None, help="PNG path (default <run_dir>/curve.png)")


def _add_compare(subparsers):
    p = subparsers.add_parser(
        "compare", help="compare several runs: a table and one plot",
        description="A table of several runs (final and best evaluation metric, steps, time, "
                    "the options in which they differ) and one plot of their evaluation "
                    "metric against steps.")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--metric", default=None,
                   help="metric to compare (default: the task's metric)")
    p.add_argument("--out", type=Path, default=None,
                   help="PNG path (default <the runs' common parent>/compare.png)")


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
    _add_compare(sub)
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
        for which, spec in task.ablations.items():
            print(f"{'':10s} setwise sweep {name}:{which}: {spec.figure}")
    return 0


def check_device(backend: str, device: str) -> None:
    """Raise :class:`ConfigError` if ``backend`` cannot run on ``device`` here."""
    if device in ("auto", "cpu"):
        return
    if backend == "torch":
        import torch

        if device == "tpu":
            raise ConfigError("--device tpu: the torch backend does not run on TPUs; pass "
                              "--backend jax, or --device cpu")
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: PyTorch finds no CUDA GPU on this machine "
                              "(torch.cuda.is_available() is False); pass --device cpu or auto")
        return
    import jax

    kind = "gpu" if device in ("cuda", "gpu") else device
    try:
        jax.devices(kind)
    except RuntimeError:
        raise ConfigError(f"--device {device}: JAX finds no {kind.upper()} on this machine "
                          f"(jax.devices({kind!r}) fails; it has {jax.devices()[0].platform}); "
                          "pass --device cpu or auto") from None


def train_config(task: Task, args) -> tuple[dict, Path]:
    """The resolved configuration and run directory of ``setwise train``.

    With ``--resume`` and a ``--run-dir`` that holds a run, the saved configuration is the
    base and the options given on the command line override it (any change other than
    ``--steps`` is then refused by the run directory's check).
    """
    overrides = _overrides(args)
    saved = read_config(args.run_dir) if args.resume and args.run_dir is not None and \
        args.run_dir.is_dir() else None
    if saved is not None:
        names = {o.name for o in task.options}
        overrides = {**{k: v for k, v in saved.items() if k in names}, **overrides}
        config = resolve(task, None, overrides)
    else:
        config = resolve(task, args.preset, overrides)
    return config, args.run_dir or RUNS_DIR / task.name / task.run_name(config)


def _checkpoint_name() -> str:
    from setwise.tasks.checkpoint import CHECKPOINT

    return CHECKPOINT


def cmd_train(args, argv=None) -> int:
    from setwise.tasks import distributed
    from setwise.tasks.train import fit, set_threads

    task = get_task(args.task)
    config, run_dir = train_config(task, args)
    devices = getattr(args, "devices", 1)
    if devices > 1 and config["backend"] == "torch" and "WORLD_SIZE" not in os.environ:
        # one process per device: torchrun runs this same command on every rank
        return subprocess.call([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                f"--nproc_per_node={devices}", "-m", "setwise.tasks.cli",
                                *(sys.argv[1:] if argv is None else argv)])
    main = distributed.is_main()
    run = RunDir(run_dir, _checkpoint_name())
    resuming = run.check(config, resume=args.resume, overwrite=args.overwrite) if main else \
        False
    if devices > 1 and config["backend"] == "jax" and args.device in ("cpu", "auto"):
        distributed.force_cpu_devices(devices)
    set_threads(config["backend"], args.threads)
    check_device(config["backend"], args.device)
    distributed.check_devices(config["backend"], args.device, devices)
    if args.init_from is not None:
        check_init_from(task, config, args.init_from)
    if main:
        print(run.start_message(resume=args.resume, resuming=resuming), file=sys.stderr)
    summary = fit(task, config, run_dir, resume=args.resume, overwrite=args.overwrite,
                  device=args.device, progress=not args.no_progress and main,
                  plot=not args.no_plot,
                  init_from=args.init_from, devices=devices)
    if main:
        print(end_of_run(task, summary, run_dir))
    return 0


def end_of_run(task: Task, summary, run_dir) -> str:
    """The lines printed when a run ends: best and final metric, where it is, what next."""
    metric, steps = task.metric, summary["steps"]
    final, best = summary.get("final") or {}, summary.get("best") or {}
    lines = [f"{task.name} {Path(run_dir).name}: {steps} steps on {summary['backend']} "
             f"({summary['device']}), {summary['time']:.0f} s of training"]
    if best:
        lines.append(f"  best  {metric} {best[metric]:.4g} at step {best['step']}")
    if final:
        lines.append(f"  final {metric} {final[metric]:.4g} at step {final['step']}")
    q = shlex.quote(str(run_dir))
    lines += [f"  run directory: {run_dir}  (config.json, metrics.jsonl, summary.json, "
              "curve.png)",
              f"  train longer:  setwise train {task.name} --run-dir {q} --resume "
              f"--steps {2 * int(steps)}",
              f"  plot:          setwise plot {q}",
              f"  compare:       setwise compare {shlex.quote(str(Path(run_dir).parent))}/*"]
    return "\n".join(lines)


def cmd_sweep(args, argv) -> int:
    from setwise.tasks.sweep import grid, run_sweep

    task_name, _, which = args.task.partition(":")
    task, which = get_task(task_name), which or None
    values = {k[5:]: v for k, v in vars(args).items() if k.startswith("grid_") and v}
    configs = grid(task, preset=args.preset, overrides=_overrides(args), values=values,
                   seeds=args.seeds, which=which)
    for config in configs:
        check_device(config["backend"], args.device)
    runs = run_sweep(task, configs, args.runs_dir, device=args.device, jobs=args.jobs,
                     threads=args.threads)
    command = "setwise " + " ".join(shlex.quote(a) for a in argv)
    out = args.out or args.runs_dir
    md, figure = task.report(runs, out, command=command, name=args.name) if which is None \
        else task.report_ablation(which, runs, out, command=command, name=args.name)
    departures = budget_departures(task, [r.config for r in runs], which)
    if departures and task.sweep_spec(which).notes:
        with open(md, "a") as page:
            page.write(f"\n{departures}\n")
    print(md.read_text())
    print(f"wrote {md}" + (f" and {figure}" if figure else ""), file=sys.stderr)
    return 0


def budget_departures(task: Task, used, which: str | None = None) -> str:
    """A sentence naming the options in which the configurations ``used`` depart from the
    sweep's (or ablation ``which``'s) own budget (the one its notes describe), or ``""`` if
    they do not."""
    from setwise.tasks.sweep import grid

    standard = grid(task, which=which)[0]
    skip = {*task.sweep_spec(which).grid, "seed"}
    changed = {k: sorted({json.dumps(c.get(k)) for c in used}) for k in standard
               if k not in skip and any(c.get(k) != standard[k] for c in used)}
    if not changed:
        return ""
    listed = ", ".join(f"`{k}` {json.dumps(standard[k])} -> {' / '.join(v)}"
                       for k, v in changed.items())
    return (f"**These runs depart from the sweep's own budget, which the notes above "
            f"describe:** {listed}.")


def cmd_plot(args) -> int:
    from setwise.tasks.plotting import plot_run

    if not args.run_dir.is_dir():
        raise RunDirError(f"{args.run_dir}: no such run directory")
    read_config(args.run_dir)  # a corrupt file is one line naming it, not a traceback
    read_metrics(args.run_dir)
    print(plot_run(args.run_dir, args.out))
    return 0


def cmd_compare(args) -> int:
    from setwise.tasks import compare

    runs = compare.load_runs(args.runs)
    metric, mode = compare.pick_metric(runs, args.metric)
    if not any(metric in m for r in runs for m in r.evals):
        raise RunDirError(f"compare: no evaluation of the runs has the metric {metric!r}")
    print(compare.table(runs, metric, mode))
    out = compare.plot(runs, metric, args.out or compare.default_plot_path(runs))
    print(f"plot: {out}", file=sys.stderr)
    return 0


def _errors():
    """The exceptions ``setwise`` reports as one line (exit 2) instead of a traceback."""
    errors = [ConfigError, RunDirError, FileNotFoundError]
    try:
        from setwise.tasks.datasets.errors import DataError
    except ImportError:
        return tuple(errors)
    return (*errors, DataError)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    data_cli = _data_cli()
    args = build_parser(data_cli).parse_args(argv)
    commands = {"tasks": cmd_tasks, "train": lambda a: cmd_train(a, argv), "plot": cmd_plot,
                "compare": cmd_compare, "sweep": lambda a: cmd_sweep(a, argv),
                "check": lambda a: check_command.run(a.tasks), "sample": sample_command.run}
    try:
        if args.command in commands:
            return commands[args.command](args)
        return int(data_cli.run(args) or 0)
    except _errors() as err:
        print(f"setwise {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        return _interrupted(args, stop)
    except RuntimeError as err:
        from setwise.tasks.train import NonFiniteLoss

        if not isinstance(err, NonFiniteLoss):
            raise
        print(f"setwise {args.command}: error: {err}", file=sys.stderr)
        return 1


def _interrupted(args, stop: KeyboardInterrupt) -> int:
    """Ctrl-C: say what was saved and how to go on; exit status 130."""
    from setwise.tasks.train import TrainingInterrupted

    if isinstance(stop, TrainingInterrupted) and args.command == "sweep":
        print(f"setwise sweep: interrupted after step {stop.step} of {stop.run_dir}; "
              "checkpoint saved. Run the same setwise sweep command to continue",
              file=sys.stderr)
    elif isinstance(stop, TrainingInterrupted):
        q = shlex.quote(str(stop.run_dir))
        print(f"setwise {args.command}: interrupted after step {stop.step}; checkpoint saved "
              f"in {stop.run_dir}. Resume with: setwise train {args.task} --run-dir {q} "
              "--resume", file=sys.stderr)
    else:
        print(f"setwise {args.command}: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
