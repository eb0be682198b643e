"""Training speed of the class-counting models: steps/s of the full training step (forward,
backward, Adam) per aggregator and backend, at the CPU configuration and the paper's widths.

``python -m setwise.tasks.omniglot_counting.speed --out docs/results/omniglot-counting-speed.json``
times each (backend, widths, aggregator) in its own trainer (:mod:`setwise.tasks.loops`) on
training batches of the task, after ``warmup`` steps (JAX's compilation excluded), with one
thread per backend: the median of ``repeats`` windows of ``steps`` steps.
:func:`setwise.tasks.omniglot_counting.report.write` puts the table on the results page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from setwise.tasks.config import resolve
from setwise.tasks.omniglot_counting.model import AGGREGATORS
from setwise.tasks.report import load_average
from setwise.tasks.speed import steps_per_second
from setwise.tasks.train import set_threads

WIDTHS = ("cpu", "paper")


def measure(backend: str, steps: int, warmup: int, repeats: int, aggregators=AGGREGATORS
            ) -> list[dict]:
    from setwise.tasks.omniglot_counting.task import OmniglotCountingTask

    task = OmniglotCountingTask()
    rows = []
    for widths in WIDTHS:
        for agg in aggregators:
            config = resolve(task, None if widths == "cpu" else "paper",
                             {"backend": backend, "aggregator": agg})
            rate = steps_per_second(task, config, steps, warmup, repeats=repeats)
            rows.append({"backend": backend, "widths": widths, "aggregator": agg,
                         "batch_size": config["batch_size"], "steps_per_second": rate,
                         "load_average": load_average()})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("torch", "jax"), nargs="+",
                        default=["torch", "jax"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--aggregator", choices=AGGREGATORS, nargs="+", default=list(AGGREGATORS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = []
    for backend in args.backend:
        set_threads(backend, 1)
        rows += measure(backend, args.steps, args.warmup, args.repeats, args.aggregator)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": "python -m setwise.tasks.omniglot_counting.speed " + " ".join(
            argv if argv is not None else os.sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other work",
        "threads": 1, "steps": args.steps, "repeats": args.repeats, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
