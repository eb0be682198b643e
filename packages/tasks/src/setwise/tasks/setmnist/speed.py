"""Training-step speed of every SetMNIST model x creator x backend (the results page's table).

``python -m setwise.tasks.setmnist.speed --out docs/results/setmnist-speed.json`` times
``--steps`` Adam steps (after ``--warmup`` untimed ones, which hold JAX's compilation: the
second call compiles again for the donated, committed buffers, so at least 2) of each
combination at the sweep's budget, one CPU thread, and adds ``{"<model>/<creator>/<backend>":
steps per second}`` to ``--out`` (kept entries of earlier invocations), with each
invocation's date and the machine's load average. The step is the trainers'
own (:class:`setwise.tasks.loops.torch_loop.TorchTrainer`, the JAX trainer), so the time is
what a run spends per step, batches included.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

from setwise.tasks.config import resolve
from setwise.tasks.setmnist.model import CREATORS, MODELS
from setwise.tasks.setmnist.task import SWEEP_BUDGET, SetMNISTTask
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
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--creators", nargs="+", default=list(CREATORS), choices=CREATORS)
    args = parser.parse_args(argv)
    task = SetMNISTTask()
    result = (json.loads(args.out.read_text()) if args.out.exists()
              else {"budget": SWEEP_BUDGET, "steps_per_second": {}, "invocations": []})
    invocation = {"date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
                  "load_before": list(os.getloadavg()), "steps": args.steps,
                  "warmup": args.warmup, "backends": args.backends, "models": args.models,
                  "creators": args.creators}
    for backend in args.backends:
        set_threads(backend, 1)
        for model in args.models:
            for creator in args.creators:
                config = resolve(task, None, {**SWEEP_BUDGET, "backend": backend,
                                              "model": model, "creator": creator})
                rate = steps_per_second(task, config, args.steps, args.warmup)
                result["steps_per_second"][f"{model}/{creator}/{backend}"] = rate
                print(f"{model:5s} {creator:8s} {backend:6s} {rate:.3g} steps/s", flush=True)
    invocation["load_after"] = list(os.getloadavg())
    result["invocations"].append(invocation)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
