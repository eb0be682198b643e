"""Benchmark: every setwise operator on every backend, grouped by operator.

Backends: ``numpy`` (the reference), ``torch`` (eager), ``torch-compiled`` (``torch.compile``,
inductor; the compile time is in ``extra_info['compile_s']``, outside the timing) and
``jax-jit`` (``jax.jit``; compile time likewise). A backend that does not import is skipped.
Operators: EA forward, EA forward + gradient in the ``unrolled`` and ``implicit`` modes (no
reference: NumPy has no autodiff), sum / MHA / PNA pooling, Top-n against First-n creation
(one group), Chamfer, Hungarian and Sinkhorn losses. Every timed call ends with the device
synchronised (``block_until_ready`` / ``torch.cuda.synchronize``).

Run (benchmarks are disabled by default in this repo)::

    python -m pytest tools/benchmarks/test_bench_ops.py --benchmark-enable \
        --benchmark-columns=min,median,mean,rounds --benchmark-sort=name
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import setwise.reference as R

BACKENDS = ("numpy", "torch", "torch-compiled", "jax-jit")
ROUNDS = 5

# sizes: CPU-sized, the same for every backend
EA = dict(num_sets=64, set_size=32, dim=16, out_dim=16, hidden=(64, 64, 16), num_steps=5)
POOL = dict(num_sets=256, set_size=64, dim=64, heads=4)
CREATE = dict(num_sets=256, latent=32, n0=64, n=32, out_dim=3)
LOSS = dict(num_sets=64, set_size=32, dim=3)


class Runner:
    """How one backend turns NumPy inputs into arrays and a function into a timed call."""

    def __init__(self, name):
        self.name = name
        self.framework = {"numpy": "numpy", "torch": "torch", "torch-compiled": "torch",
                          "jax-jit": "jax"}[name]
        try:
            self.B = R.get_backend(self.framework)
        except ImportError as err:
            pytest.skip(f"backend {self.framework!r} does not import: {err}")
        if self.framework == "torch":
            import torch

            self.torch = torch
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.framework == "jax":
            import jax

            self.jax = jax

    def array(self, value, requires_grad=False):
        value = np.asarray(value)
        if self.framework == "numpy":
            return value
        if self.framework == "torch":
            t = self.torch.from_numpy(value).to(self.device)
            return t.requires_grad_() if requires_grad else t
        return self.jax.device_put(value)

    def params(self, params, requires_grad=False):
        return {k: self.array(v, requires_grad and np.issubdtype(np.asarray(v).dtype,
                                                                  np.floating))
                for k, v in params.items()}

    def sync(self, out):
        if self.framework == "jax":
            return self.jax.block_until_ready(out)
        if self.framework == "torch" and self.device == "cuda":
            self.torch.cuda.synchronize()
        return out

    def compile(self, fn, static=()):
        """``fn(*arrays)`` compiled for this backend (jit / torch.compile) or as is."""
        if self.name == "jax-jit":
            return self.jax.jit(fn, static_argnums=static)
        if self.name == "torch-compiled":
            return self.torch.compile(fn)
        return fn


def bench(benchmark, runner, group, fn, *args):
    """Warm up (compile) once outside the timing, then time ``fn(*args)`` synchronised."""
    benchmark.group = group
    benchmark.extra_info["backend"] = runner.name
    if runner.framework == "torch":
        benchmark.extra_info["torch_threads"] = runner.torch.get_num_threads()
    start = time.perf_counter()
    try:
        runner.sync(fn(*args))
    except Exception as err:  # a backend that cannot run this op compiled: say why, skip
        if runner.name in ("torch-compiled", "jax-jit"):
            pytest.skip(f"{runner.name} cannot run {group}: {type(err).__name__}: {err}")
        raise
    benchmark.extra_info["compile_s"] = round(time.perf_counter() - start, 3)
    benchmark.pedantic(lambda: runner.sync(fn(*args)), rounds=ROUNDS, iterations=1,
                       warmup_rounds=1)


@pytest.fixture(params=BACKENDS)
def runner(request):
    return Runner(request.param)


def dense_sets(rng, num_sets, set_size, dim):
    """``x [S, N, dim]`` float32 and a mask with sizes uniform in ``[N/2, N]``."""
    x = rng.normal(size=(num_sets, set_size, dim)).astype(np.float32)
    sizes = rng.integers(set_size // 2, set_size + 1, num_sets)
    return x, np.arange(set_size)[None] < sizes[:, None]


# --- Equilibrium Aggregation -------------------------------------------------------------

def ea_inputs(runner, requires_grad=False):
    rng = np.random.default_rng(0)
    x, mask = dense_sets(rng, EA["num_sets"], EA["set_size"], EA["dim"])
    params = R.init_equilibrium_aggregation(0, EA["dim"], EA["out_dim"], hidden=EA["hidden"])
    return runner.params(params, requires_grad), runner.array(x), runner.array(mask)


def test_ea_forward(benchmark, runner):
    params, x, mask = ea_inputs(runner)
    B = runner.B

    def forward(params, x, mask):
        return B.equilibrium_aggregation(params, x, mask, num_steps=EA["num_steps"])

    if runner.framework == "torch":
        forward = runner.torch.no_grad()(forward)
    bench(benchmark, runner, "ea-forward", runner.compile(forward), params, x, mask)


@pytest.mark.parametrize("grad_mode", ["unrolled", "implicit"])
def test_ea_forward_and_gradient(benchmark, runner, grad_mode):
    """``mean(y^2)`` and its gradient with respect to every parameter."""
    if runner.framework == "numpy":
        pytest.skip("the NumPy reference computes values only (no autodiff)")
    params, x, mask = ea_inputs(runner, requires_grad=True)
    B = runner.B

    def loss(params, x, mask):
        y = B.equilibrium_aggregation(params, x, mask, num_steps=EA["num_steps"],
                                      grad_mode=grad_mode)
        return (y**2).mean()

    if runner.framework == "jax":
        step = runner.jax.jit(runner.jax.value_and_grad(loss))
    else:
        compiled = runner.compile(loss)
        names = list(params)

        def step(params, x, mask):
            value = compiled(params, x, mask)
            # allow_unused: implicit mode gives the step size and momentum no gradient
            return value, runner.torch.autograd.grad(value, [params[k] for k in names],
                                                     allow_unused=True)

    bench(benchmark, runner, f"ea-{grad_mode}-grad", step, params, x, mask)


# --- pooling -------------------------------------------------------------------------------

def pool_inputs(runner):
    x, mask = dense_sets(np.random.default_rng(1), POOL["num_sets"], POOL["set_size"],
                         POOL["dim"])
    return runner.array(x), runner.array(mask)


def test_sum_pool(benchmark, runner):
    x, mask = pool_inputs(runner)
    bench(benchmark, runner, "sum-pool", runner.compile(runner.B.sum_pool), x, mask)


def test_mha_pool(benchmark, runner):
    x, mask = pool_inputs(runner)
    params = runner.params(R.init_attention_pool(0, POOL["dim"], POOL["dim"],
                                                 num_heads=POOL["heads"]))
    bench(benchmark, runner, "mha-pool", runner.compile(runner.B.attention_pool), params, x,
          mask)


def test_pna_pool(benchmark, runner):
    x, mask = pool_inputs(runner)
    params = runner.params(R.init_pna_pool(0, POOL["dim"], POOL["dim"]))
    delta = R.pna_delta(np.arange(POOL["set_size"] // 2, POOL["set_size"] + 1))
    B = runner.B
    bench(benchmark, runner, "pna-pool",
          runner.compile(lambda p, x, m: B.pna_pool(p, x, m, delta=delta)), params, x, mask)


# --- creation ------------------------------------------------------------------------------

@pytest.mark.parametrize("creator", ["top_n", "first_n"])
def test_creation(benchmark, runner, creator):
    """Top-n against First-n: one group, so the cost of selection shows per backend."""
    c = CREATE
    params = runner.params(R.init_creation(creator, 0, c["latent"], c["out_dim"], c["n0"]))
    z = runner.array(np.random.default_rng(2).normal(size=(c["num_sets"], c["latent"]))
                     .astype(np.float32))
    B = runner.B
    bench(benchmark, runner, "creation",
          runner.compile(lambda p, z: B.create_set(creator, p, z, c["n"], max_n=c["n"])),
          params, z)


# --- losses --------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["chamfer_loss", "hungarian_loss", "sinkhorn_loss"])
def test_loss(benchmark, runner, loss):
    rng = np.random.default_rng(3)
    x, mask = dense_sets(rng, LOSS["num_sets"], LOSS["set_size"], LOSS["dim"])
    y = rng.normal(size=x.shape).astype(np.float32)
    fn = getattr(runner.B, loss)
    kwargs = {"num_iters": 50, "epsilon": 0.05} if loss == "sinkhorn_loss" else {}
    bench(benchmark, runner, loss.replace("_loss", ""),
          runner.compile(lambda x, y, m: fn(x, y, m, m, **kwargs)), runner.array(x),
          runner.array(y), runner.array(mask))
