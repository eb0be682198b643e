"""Training-step speed of CLEVR targets x creators x backends (the results page's table).

``python -m setwise.tasks.clevr.speed --out docs/results/clevr-speed.json`` times ``--steps``
Adam steps (after ``--warmup`` untimed ones, which hold JAX's compilation: at least 2) of
each combination at the sweep's budget, one CPU thread, with the trainers' own step (batches
included), and adds ``{"<target>/<creator>/<backend>": steps per second}`` to ``--out``
(entries of earlier invocations kept), with each invocation's date and load average.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

from setwise.tasks.clevr.data import TARGETS
from setwise.tasks.clevr.model import CREATORS
from setwise.tasks.clevr.task import SWEEP_BUDGET, ClevrTask
from setwise.tasks.config import resolve
from setwise.tasks.train import set_threads, trainer_class

BACKENDS = ("torch", "jax")


def steps_per_second(task, config, steps: int, warmup: int) -> float:
    """Adam steps per second of ``config``'s trainer, after ``warmup`` steps."""
    trainer = trainer_class(config["backend"])(task, config, "cpu")
    batches = [task.train_batch(config, s) for s in range(warmup + steps)]
    for s in range(warmup):
        logs = trainer.step(batches[s], s)
    float(logs["loss"])
    start = time.perf_counter()
    for s in range(warmup, warmup + steps):
        logs = trainer.step(batches[s], s)
    float(logs["loss"])
    return steps / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--creators", nargs="+", default=list(CREATORS), choices=CREATORS)
    args = parser.parse_args(argv)
    task = ClevrTask()
    result = (json.loads(args.out.read_text()) if args.out.exists()
              else {"budget": SWEEP_BUDGET, "steps_per_second": {}, "invocations": []})
    invocation = {"date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
                  "load_before": list(os.getloadavg()), "steps": args.steps,
                  "warmup": args.warmup, "backends": args.backends, "targets": args.targets,
                  "creators": args.creators}
    for backend in args.backends:
        set_threads(backend, 1)
        for target in args.targets:
            for creator in args.creators:
                config = resolve(task, None, {**SWEEP_BUDGET, "backend": backend,
                                              "target": target, "creator": creator})
                rate = steps_per_second(task, config, args.steps, args.warmup)
                result["steps_per_second"][f"{target}/{creator}/{backend}"] = rate
                print(f"{target:5s} {creator:8s} {backend:6s} {rate:.3g} steps/s", flush=True)
    invocation["load_after"] = list(os.getloadavg())
    result["invocations"].append(invocation)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
