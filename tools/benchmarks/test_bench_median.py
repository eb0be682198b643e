"""Benchmark: one training step of the median task (paper 1 section 5.1) per aggregator,
EA at T = 5 and T = 10, with its arithmetic and the fraction of this machine's matmul peak.

The step is the task's own (``setwise.tasks`` trainer: forward, backward, Adam) at the paper's
widths (``--preset paper``: ResNet [256, 256, D], EA potential [256, 256, 1], head
[D, 128, 1]), D = 16, 32 sets of 100 numbers. FLOPs are counted from the layer sizes
(:mod:`setwise.tasks.flops`: matrix products only); the CPU's peak is the faster of the
frameworks' large float32 matmuls, timed in the same run with the same threads. On a CPU the step is
FLOP-bound, so GFLOP/s against the peak is the figure of merit; the EA/Sum time ratio is set
beside paper 1 appendix E.2 (1.84x at 5 steps, 2.86x at 10, MOLPCBA on GPUs).

Run (benchmarks are disabled by default in this repo; ``-s`` prints the table)::

    python -m pytest tools/benchmarks/test_bench_median.py --benchmark-enable -s \
        --benchmark-columns=min,median,rounds
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from setwise.tasks.config import resolve
from setwise.tasks.flops import training_step_flops
from setwise.tasks.registry import get_task
from setwise.tasks.train import trainer_class

TASK = get_task("median")
DIM, BATCH, ROUNDS = 16, 32, 5
PAPER_RATIO = {5: 1.84, 10: 2.86}  # paper 1 appendix E.2: EA time / Sum time
CASES = [("sum", 5), ("mha", 5), ("pna", 5), ("ea", 5), ("ea", 10)]
RESULTS: dict[tuple[str, str, int], dict] = {}


def framework(name):
    try:
        if name == "torch":
            import torch

            return torch
        import jax

        return jax
    except ImportError as err:
        pytest.skip(f"{name} does not import: {err}")


def matmul_peak(backend, n=2048, reps=5) -> float:
    """GFLOP/s of the best of ``reps`` float32 ``[n, n] @ [n, n]`` products."""
    a = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
    if backend == "torch":
        torch = framework("torch")
        x = torch.from_numpy(a)

        def run():
            return float((x @ x)[0, 0])
    else:
        jax = framework("jax")
        x = jax.device_put(a)
        mm = jax.jit(lambda u: u @ u)

        def run():
            return mm(x).block_until_ready()
    run()
    best = min(_timed(run) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def peaks():
    cache: dict[str, float] = {}
    yield cache
    print_report(cache)


def sync_step(trainer, batch, backend):
    logs = trainer.step(batch, 0)
    if backend == "torch":
        return float(logs["loss"])
    return logs["loss"].block_until_ready()


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("aggregator,num_steps", CASES, ids=[f"{a}-T{t}" for a, t in CASES])
def test_median_training_step(benchmark, peaks, backend, aggregator, num_steps):
    framework(backend)
    if backend not in peaks:
        peaks[backend] = matmul_peak(backend)
    config = resolve(TASK, "paper", {"backend": backend, "aggregator": aggregator,
                                     "dim": DIM, "batch_size": BATCH, "ea_steps": num_steps})
    trainer = trainer_class(backend)(TASK, config, "cpu")
    batch = TASK.train_batch(config, 0)
    sync_step(trainer, batch, backend)  # compile / warm up
    benchmark.group = f"median-train-step-{backend}"
    benchmark.pedantic(sync_step, args=(trainer, batch, backend), rounds=ROUNDS,
                       iterations=1, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable (the repo default): ran once, no timings
        return
    flops = training_step_flops(TASK.spec(config), BATCH, int(config["set_size"]))["total"]
    seconds = benchmark.stats.stats.median
    result = {"seconds": seconds, "gflop": flops / 1e9, "gflops": flops / seconds / 1e9,
              "own_matmul_gflops": peaks[backend], "torch_threads": _threads(backend)}
    result["fraction_of_own_matmul"] = result["gflops"] / peaks[backend]
    benchmark.extra_info.update(result)
    RESULTS[(backend, aggregator, num_steps)] = result


def _threads(backend):
    if backend == "torch":
        return framework("torch").get_num_threads()
    return None


def print_report(peaks):
    """The markdown table of all results (shown with ``pytest -s``)."""
    if not RESULTS:
        return
    peak = max(peaks.values())  # this CPU's matmul peak: the best framework's large matmul
    lines = ["", "| backend | aggregator | T | step (ms) | GFLOP/step | GFLOP/s | of CPU peak | "
             "time / Sum | FLOPs / Sum | paper E.2 |", "|" + "---|" * 10]
    for (backend, agg, t), r in sorted(RESULTS.items()):
        base = RESULTS.get((backend, "sum", 5))
        ratio = f"{r['seconds'] / base['seconds']:.2f}x" if base else "-"
        flop_ratio = f"{r['gflop'] / base['gflop']:.2f}x" if base else "-"
        paper = f"{PAPER_RATIO[t]}x" if agg == "ea" else ""
        lines.append(f"| {backend} | {agg} | {t if agg == 'ea' else '-'} | "
                     f"{r['seconds'] * 1e3:.1f} | {r['gflop']:.3f} | {r['gflops']:.1f} | "
                     f"{r['gflops'] / peak:.1%} | {ratio} | {flop_ratio} | {paper} |")
    lines.append("")
    lines.append(f"CPU peak {peak:.1f} GFLOP/s = the best float32 2048^3 matmul (best of 5) of "
                 + ", ".join(f"{b} {p:.1f}" for b, p in peaks.items()) + " GFLOP/s")
    print("\n".join(lines))
