"""Benchmark: one Equilibrium Aggregation training step (forward + backward), JAX vs PyTorch.

Settings (issue 3, used by issue 4):

- ``a``: 1000 elements in 32 sets, 64 -> 64, potential hidden [256, 256], T = 5;
- ``b``: a MOLPCBA-like batch, 256 sets of about 26 elements (sizes uniform in 16..36),
  300 -> 300, hidden [600, 300, 32], T = 15.

Both backends get the same float32 inputs (segment form, ``index`` sorted by set, as a PyG
batch) and the same parameters, and differentiate ``sum(y ** 2)`` with respect to every
parameter and ``x``. JAX runs one ``jax.jit``-compiled step, its compile time measured
apart (``extra_info['compile_s']``); PyTorch runs eagerly and, as ``torch-compile``, under
``torch.compile`` (compile time = first call minus a step). A backend that does not import
is skipped with the reason. Run (benchmarks are disabled by default in this repo)::

    python -m pytest tools/benchmarks/test_bench_jax.py --benchmark-enable \
        --benchmark-columns=min,median,mean,rounds
"""

from __future__ import annotations

import time

import pytest

import setwise.reference as R
from tools.benchmarks.settings import SETTINGS, ea_inputs

BACKENDS = ("jax", "torch", "torch-compile")


def make_inputs(setting):
    """``(x [E, dim] float32, index [E] int64 sorted, num_sets, params)`` as NumPy."""
    cfg = SETTINGS[setting]
    x, index, num_sets = ea_inputs(setting)
    params = R.init_equilibrium_aggregation(1, cfg["dim"], cfg["dim"], hidden=cfg["hidden"])
    return x, index, num_sets, params


def jax_step(setting):
    """``(run, compile_s)``: ``run()`` does one compiled training step and waits for it."""
    jax = pytest.importorskip("jax")
    B = pytest.importorskip("setwise.jax_backend", reason="setwise.jax_backend not importable")
    cfg = SETTINGS[setting]
    x, index, num_sets, params = make_inputs(setting)
    x, index, params = B.asarray(x), B.asarray(index), B.convert_params(params)

    def loss(p, xx):
        y = B.equilibrium_aggregation(p, xx, index=index, num_sets=num_sets,
                                      num_steps=cfg["num_steps"])
        return (y**2).sum()

    start = time.perf_counter()
    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(params, x).compile()
    compile_s = time.perf_counter() - start

    def run():
        return jax.block_until_ready(step(params, x))

    return run, compile_s


def torch_step(setting, compiled):
    """``(run, compile_s)`` for the PyTorch backend, eager or under ``torch.compile``."""
    torch = pytest.importorskip("torch")
    try:
        from setwise import torch_backend as TB
    except ImportError as err:
        pytest.skip(f"setwise.torch_backend not importable yet: {err}")
    cfg = SETTINGS[setting]
    x, index, num_sets, params = make_inputs(setting)
    x = torch.tensor(x, requires_grad=True)
    index = torch.tensor(index)
    params = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}

    def forward(p, xx):
        return TB.equilibrium_aggregation(p, xx, index=index, num_sets=num_sets,
                                          num_steps=cfg["num_steps"])

    fn = torch.compile(forward) if compiled else forward

    def run():
        for t in (x, *params.values()):
            t.grad = None
        (fn(params, x) ** 2).sum().backward()

    compile_s = 0.0
    if compiled:
        start = time.perf_counter()
        run()
        first = time.perf_counter() - start
        start = time.perf_counter()
        run()
        compile_s = first - (time.perf_counter() - start)
    return run, compile_s


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_ea_train_step(benchmark, setting, backend):
    benchmark.group = f"ea-train-step-{setting}"
    if backend == "jax":
        run, compile_s = jax_step(setting)
    else:
        run, compile_s = torch_step(setting, compiled=backend == "torch-compile")
    benchmark.extra_info.update(setting=setting, backend=backend, compile_s=compile_s,
                                **{k: v for k, v in SETTINGS[setting].items() if k != "rounds"})
    benchmark.pedantic(run, rounds=SETTINGS[setting]["rounds"], iterations=1, warmup_rounds=1)
