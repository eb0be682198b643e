"""``setwise sample``: generate new sets from a trained run's checkpoint.

::

    setwise sample synthetic --run-dir runs/synthetic/torch-top_n-s0 --num 1000
    setwise sample synthetic --run-dir R --extrapolation --backend jax --out samples/

For every task that defines ``Task.sample(config, predict, num_sets, seed, extrapolation)``
(a generative model: it draws the latents and sizes, calls ``predict(batch, index)`` -- the
trainer's evaluation-mode forward pass -- and returns ``(sets, metrics)``). The run's saved
configuration and checkpoint are loaded into a trainer of the run's backend (or
``--backend``: checkpoints move between backends); ``<out>/generated.npz`` gets the sets
(each array of every set concatenated, with ``<name>_ptr`` offsets) and
``<out>/metrics.json`` the task's generation metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from setwise.tasks.registry import Task, get_task, task_names
from setwise.tasks.runs import read_config


def can_sample(task: Task) -> bool:
    return callable(getattr(task, "sample", None))


def register(subparsers) -> None:
    p = subparsers.add_parser("sample", help="generate sets from a trained run's checkpoint")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in task_names():
        task = get_task(name)
        if not can_sample(task):
            continue
        tp = tasks.add_parser(name, help=task.description,
                              description=f"Generate sets with a trained {name} model.")
        tp.add_argument("--run-dir", type=Path, required=True, help="the trained run")
        tp.add_argument("--num", type=int, default=1000, help="sets to generate (default "
                        "%(default)s)")
        tp.add_argument("--seed", type=int, default=0, help="seed of the latents and sizes")
        tp.add_argument("--extrapolation", action="store_true",
                        help="the extrapolation setting (larger sets)")
        tp.add_argument("--backend", choices=("torch", "jax"), default=None,
                        help="default: the run's backend")
        tp.add_argument("--device", default="cpu", help="default %(default)s")
        tp.add_argument("--out", type=Path, default=None,
                        help="output directory (default <run-dir>/samples)")


def save_sets(path: Path, sets: list[dict[str, np.ndarray]]) -> None:
    """Write ``sets`` (one ``{name: array}`` per set) as concatenated arrays + offsets."""
    arrays = {}
    for key in sets[0] if sets else ():
        parts = [np.asarray(s[key]) for s in sets]
        arrays[key] = np.concatenate(parts)
        arrays[f"{key}_ptr"] = np.concatenate([[0], np.cumsum([len(a) for a in parts])])
    np.savez(path, **arrays)


def sample_run(task: Task, run_dir: Path, *, num_sets: int, seed: int = 0,
               extrapolation: bool = False, backend: str | None = None, device: str = "cpu"):
    """``(sets, metrics)`` of ``task.sample`` with the run's checkpoint."""
    from setwise.tasks.train import init_weights, set_threads, trainer_class

    if not can_sample(task):
        raise ValueError(f"sample: task {task.name!r} does not generate sets (no Task.sample)")
    if num_sets < 1:
        raise ValueError(f"sample: --num is {num_sets}; expected a positive number of sets")
    config = dict(read_config(run_dir))
    config["backend"] = backend or config["backend"]
    set_threads(config["backend"], 1)
    trainer = trainer_class(config["backend"])(task, config, device)
    init_weights(trainer, run_dir)
    return task.sample(config, trainer.predict, num_sets, seed, extrapolation)


def run(args) -> int:
    task = get_task(args.task)
    sets, metrics = sample_run(task, args.run_dir, num_sets=args.num, seed=args.seed,
                               extrapolation=args.extrapolation, backend=args.backend,
                               device=args.device)
    out = args.out or args.run_dir / "samples"
    out.mkdir(parents=True, exist_ok=True)
    tag = "extrapolation" if args.extrapolation else "generated"
    save_sets(out / f"{tag}.npz", sets)
    (out / f"{tag}_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    writer = getattr(task, "write_samples", None)  # a task's own formats (QM9: SMILES, SDF)
    for path in writer(out, tag, sets) if writer is not None else ():
        print(f"wrote {path}")
    for key, value in metrics.items():
        print(f"{key:24s} {value:.4g}")
    print(f"wrote {out / f'{tag}.npz'} ({len(sets)} sets) and {out / f'{tag}_metrics.json'}")
    return 0
