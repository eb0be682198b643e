"""Training-step speed: steps/s of the trainers' own step, for the results pages' tables.

:func:`steps_per_second` times ``steps`` Adam steps of one configuration, batches included,
after ``warmup`` untimed ones on every batch shape the timed steps meet (they hold JAX's
compilations: the second call compiles again for the donated, committed buffers, so at least
2), as the median of ``repeats`` windows (on a shared machine one window catches other work's
bursts). :func:`grid_main` is the command of a task's speed table over a grid of options
(``python -m setwise.tasks.setmnist.speed``, ``... .clevr.speed``): one CPU thread per
backend, and ``{"<value>/<value>/<backend>": steps per second}`` added to ``--out`` (the
entries of earlier invocations kept) with each invocation's date and load average.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from setwise.tasks.config import resolve
from setwise.tasks.train import set_threads, trainer_class

BACKENDS = ("torch", "jax")


def steps_per_second(task, config: Mapping, steps: int, warmup: int, *, repeats: int = 1,
                     device: str = "cpu") -> float:
    """Adam steps per second of ``config``'s trainer on ``device`` (see the module
    docstring)."""
    trainer = trainer_class(config["backend"])(task, config, device)
    batches = [task.train_batch(config, s) for s in range(warmup + steps)]
    shapes = {tuple(sorted((k, np.shape(v)) for k, v in b.items())): b
              for b in batches[warmup:]}
    for s in range(warmup):
        for batch in (batches[s], *shapes.values()):
            logs = trainer.step(batch, s)
    float(logs["loss"])  # wait for the device
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for s in range(warmup, warmup + steps):
            logs = trainer.step(batches[s], s)
        float(logs["loss"])
        rates.append(steps / (time.perf_counter() - start))
    return float(np.median(rates))


def grid_main(task, budget: Mapping, axes: Mapping[str, Sequence[str]], argv=None,
              description: str = "") -> int:
    """The speed command of ``task`` at the configuration ``budget`` over every combination
    of ``axes`` (``{"model": MODELS, "creator": CREATORS}``: flags ``--models``,
    ``--creators``) x ``--backends``."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0] if description
                                     else None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    for name, values in axes.items():
        parser.add_argument(f"--{name}s", nargs="+", default=list(values), choices=values)
    args = parser.parse_args(argv)
    chosen = {name: getattr(args, f"{name}s") for name in axes}
    result = (json.loads(args.out.read_text()) if args.out.exists()
              else {"budget": dict(budget), "steps_per_second": {}, "invocations": []})
    invocation = {"date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
                  "load_before": list(os.getloadavg()), "steps": args.steps,
                  "warmup": args.warmup, "backends": args.backends,
                  **{f"{name}s": values for name, values in chosen.items()}}
    for backend in args.backends:
        set_threads(backend, 1)
        for point in itertools.product(*chosen.values()):
            config = resolve(task, None, {**budget, "backend": backend,
                                          **dict(zip(chosen, point))})
            rate = steps_per_second(task, config, args.steps, args.warmup)
            result["steps_per_second"]["/".join((*point, backend))] = rate
            print(" ".join(f"{v:8s}" for v in (*point, backend)) + f" {rate:.3g} steps/s",
                  flush=True)
    invocation["load_after"] = list(os.getloadavg())
    result["invocations"].append(invocation)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0
