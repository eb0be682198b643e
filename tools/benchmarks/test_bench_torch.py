"""Benchmark: setwise's PyTorch EA against ``torch_geometric.nn.aggr.EquilibriumAggregation``.

One training step = forward + backward of ``mean(y ** 2)`` with respect to ``x`` and every
parameter, at equal widths, steps and batch (issue 3):

- ``a``: 1000 elements in 32 sets, 64 -> 64, potential hidden [256, 256], T = 5;
- ``b``: a MOLPCBA-like batch, 256 sets of about 26 elements (sizes uniform in 16..36),
  300 -> 300, hidden [600, 300, 32], T = 15.

Implementations: ``setwise`` (eager), ``setwise-compile`` (``torch.compile`` of the module;
its compile time is measured apart in ``extra_info['compile_s']``) and ``pyg`` (PyG's
``EquilibriumAggregation(in, out, num_layers=hidden, grad_iter=T)``, which needs double
backward and so cannot be compiled). Inputs are the same float32 segment batch (``index``
sorted, as a PyG batch) as ``test_bench_jax.py``. Each test also records the peak tensor
memory of one step (``extra_info['peak_mib']``: allocations seen by the torch profiler,
or ``torch.cuda.max_memory_allocated`` on a GPU). ``test_grad_mode_memory`` compares the
unrolled and implicit gradient modes as T grows (implicit should stay flat). PyTorch runs on
one CPU thread (``SETWISE_BENCH_THREADS`` to change it): on a small shared machine more
threads than free cores makes every timing meaningless.

Run (benchmarks are disabled by default in this repo)::

    python -m pytest tools/benchmarks/test_bench_torch.py --benchmark-enable \
        --benchmark-columns=min,median,mean,rounds -p no:logging -s
"""

from __future__ import annotations

import os
import time

import pytest

import setwise.reference as R
from tools.benchmarks.settings import SETTINGS, ea_inputs

torch = pytest.importorskip("torch")
TB = pytest.importorskip("setwise.torch_backend")

IMPLS = ("setwise", "setwise-compile", "pyg")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
torch.set_num_threads(int(os.environ.get("SETWISE_BENCH_THREADS", "1")))
RESULTS = {}


def make_inputs(setting):
    """``(x [E, dim] float32, index [E] int64 sorted, num_sets)`` as tensors on DEVICE."""
    x, index, num_sets = ea_inputs(setting)
    return torch.tensor(x, device=DEVICE), torch.tensor(index, device=DEVICE), num_sets


def make_module(setting, impl, **solve):
    cfg = SETTINGS[setting]
    if impl == "pyg":
        aggr = pytest.importorskip("torch_geometric.nn.aggr")
        torch.manual_seed(0)
        return aggr.EquilibriumAggregation(cfg["dim"], cfg["dim"], list(cfg["hidden"]),
                                           grad_iter=cfg["num_steps"]).to(DEVICE)
    params = R.init_equilibrium_aggregation(1, cfg["dim"], cfg["dim"], hidden=cfg["hidden"])
    module = TB.EquilibriumAggregation.from_params(
        params, num_steps=solve.pop("num_steps", cfg["num_steps"]), **solve).to(DEVICE)
    return torch.compile(module) if impl == "setwise-compile" else module


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def make_step(setting, impl, **solve):
    """``run()``: one training step, synchronised."""
    x, index, num_sets = make_inputs(setting)
    x.requires_grad_()
    module = make_module(setting, impl, **solve)
    params = list(module.parameters())

    def run():
        for t in (x, *params):
            t.grad = None
        if impl == "pyg":
            y = module(x, index, dim_size=num_sets)
        else:
            y = module(x, index=index, num_sets=num_sets)
        y.square().mean().backward()
        sync()

    return run


def peak_mib(run):
    """Peak tensor memory of ``run()`` in MiB (above what was allocated before it)."""
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events()
                    if e.self_cpu_memory_usage)
    now = peak = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak / 2**20


def _record(benchmark, key, run, first_s=None):
    mem = peak_mib(run)
    benchmark.extra_info.update(peak_mib=round(mem, 1), device=DEVICE,
                                threads=torch.get_num_threads())
    if first_s is not None:
        start = time.perf_counter()
        run()
        benchmark.extra_info["compile_s"] = round(first_s - (time.perf_counter() - start), 1)
    benchmark.pedantic(run, rounds=benchmark.extra_info["rounds"], iterations=1,
                       warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable (the repo default): ran once, no timings
        return
    RESULTS[key] = (benchmark.stats.stats.min, benchmark.stats.stats.median, mem)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_ea_train_step(benchmark, setting, impl):
    benchmark.group = f"ea-train-step-{setting}"
    cfg = SETTINGS[setting]
    benchmark.extra_info.update(setting=setting, impl=impl, rounds=cfg["rounds"],
                                **{k: v for k, v in cfg.items() if k != "rounds"})
    run = make_step(setting, impl)
    start = time.perf_counter()
    run()  # compiles for setwise-compile
    first_s = time.perf_counter() - start if impl == "setwise-compile" else None
    _record(benchmark, (setting, impl), run, first_s)


@pytest.mark.parametrize("num_steps", [5, 15, 30])
@pytest.mark.parametrize("grad_mode", ["unrolled", "implicit"])
def test_grad_mode_memory(benchmark, grad_mode, num_steps):
    """Setting a's widths and batch; peak memory and time of a step as T grows."""
    benchmark.group = "ea-grad-mode-vs-T-a"
    benchmark.extra_info.update(setting="a", grad_mode=grad_mode, num_steps=num_steps,
                                rounds=3)
    run = make_step("a", "setwise", num_steps=num_steps, grad_mode=grad_mode)
    run()
    _record(benchmark, ("a", grad_mode, num_steps), run)


def teardown_module():
    """Print the ratios against PyG (min and median times) when run with ``-s``."""
    lines = []
    for setting in SETTINGS:
        if (setting, "pyg") not in RESULTS:
            continue
        pyg_min, pyg_med, pyg_mem = RESULTS[(setting, "pyg")]
        for impl in IMPLS[:2]:
            if (setting, impl) in RESULTS:
                t_min, t_med, mem = RESULTS[(setting, impl)]
                lines.append(f"setting {setting} {impl:16s} speed-up vs pyg: "
                             f"{pyg_min / t_min:.2f}x (min) {pyg_med / t_med:.2f}x (median); "
                             f"peak {mem:.0f} MiB vs pyg {pyg_mem:.0f} MiB")
    for key, (_, t_med, mem) in RESULTS.items():
        if len(key) == 3:
            lines.append(f"setting a {key[1]:9s} T={key[2]:2d}: median {t_med * 1e3:.0f} ms, "
                         f"peak {mem:.0f} MiB")
    if lines:
        print("\n" + "\n".join(lines))
