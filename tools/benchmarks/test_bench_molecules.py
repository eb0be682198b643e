"""Benchmark: one training step of the molecules task (paper 1 section 5.3) per readout, and
EA's cost against Sum as its inner steps grow (paper 1 appendix E.2).

The step is the task's own trainer (forward, backward, Adam) on GIN over one fixed
ogbg-moltox21 batch, at two sizes:

- ``cpu``: the task's CPU configuration (width 64, 3 layers, EA ``[128, 64, 32]``, dynamic
  batches of <= 32 graphs / 768 nodes);
- ``paper``: the paper's widths (width 300, 5 layers, EA ``[600, 300, 32]``, <= 8 graphs /
  1024 nodes) on moltox21 (molpcba's graphs are not here: same model, 12 tasks not 128).

Paper 1 appendix E.2 times 2 million MOLPCBA steps on GPUs: Sum 5h30, EA with 2 / 5 / 10 inner
steps 7h50 / 10h08 / 15h44, i.e. 1.42x / 1.84x / 2.86x Sum's time. The table printed here sets
the EA / Sum ratio of one step beside those.

Run (benchmarks are disabled by default in this repo; ``-s`` prints the table)::

    SETWISE_DATA=../shared/data python -m pytest tools/benchmarks/test_bench_molecules.py \\
        --benchmark-enable -s --benchmark-columns=min,median,rounds
"""

from __future__ import annotations

import pytest

from setwise.tasks.config import resolve
from setwise.tasks.datasets.errors import MissingDataError
from setwise.tasks.registry import get_task
from setwise.tasks.train import set_threads, trainer_class

TASK = get_task("molecules")
ROUNDS = 5
PAPER_RATIO = {2: 1.42, 5: 1.84, 10: 2.86}  # paper 1 appendix E.2: EA time / Sum time
SIZES = {"cpu": {}, "paper": {"width": 300, "num_layers": 5, "max_graphs": 8,
                              "max_nodes": 1024}}
CASES = [("cpu", "sum", 0), ("cpu", "mha", 0), ("cpu", "pna", 0), ("cpu", "ea", 2),
         ("cpu", "ea", 5), ("cpu", "ea", 10), ("cpu", "ea", 15), ("paper", "sum", 0),
         ("paper", "ea", 2), ("paper", "ea", 5), ("paper", "ea", 15)]
RESULTS: dict[tuple[str, str, str, int], float] = {}


@pytest.fixture(scope="module")
def report():
    yield
    print_report()


def sync_step(trainer, batch, backend):
    logs = trainer.step(batch, 0)
    if backend == "torch":
        return float(logs["loss"])
    return logs["loss"].block_until_ready()


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("size,readout,num_steps", CASES,
                         ids=[f"{s}-{a}" + (f"-T{t}" if t else "") for s, a, t in CASES])
def test_molecules_training_step(benchmark, report, backend, size, readout, num_steps):
    pytest.importorskip(backend)
    set_threads(backend, 1)
    overrides = {"backend": backend, "gnn": "gin", "aggregator": readout, **SIZES[size]}
    if num_steps:
        overrides["ea_steps"] = num_steps
    config = resolve(TASK, None, overrides)
    try:
        batch = TASK.train_batch(config, 0)
    except MissingDataError as error:
        pytest.skip(f"ogbg-moltox21 not available: {error}")
    trainer = trainer_class(backend)(TASK, config, "cpu")
    sync_step(trainer, batch, backend)  # compile / warm up
    benchmark.group = f"molecules-train-step-{size}-{backend}"
    benchmark.pedantic(sync_step, args=(trainer, batch, backend), rounds=ROUNDS,
                       iterations=1, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable (the repo default): ran once, no timings
        return
    RESULTS[(backend, size, readout, num_steps)] = benchmark.stats.stats.median


def print_report():
    """The markdown table of all results (shown with ``pytest -s``)."""
    if not RESULTS:
        return
    lines = ["", "| backend | size | readout | T | step (ms) | steps/s | time / Sum | paper E.2 |",
             "|" + "---|" * 8]
    for (backend, size, readout, t), seconds in sorted(RESULTS.items()):
        base = RESULTS.get((backend, size, "sum", 0))
        ratio = f"{seconds / base:.2f}x" if base else "-"
        paper = f"{PAPER_RATIO[t]}x" if t in PAPER_RATIO else ""
        lines.append(f"| {backend} | {size} | {readout} | {t or '-'} | {seconds * 1e3:.1f} | "
                     f"{1 / seconds:.2f} | {ratio} | {paper} |")
    print("\n".join(lines))
