"""Every registered task, on both backends: what a task gets by registering.

Parametrised over :func:`setwise.tasks.registry.task_names` and both backends, on each task's
``tiny`` preset:

- a few training steps: finite metrics, the paper's metric evaluated, a checkpoint holding
  exactly the task's parameter names and shapes;
- the cross-backend check (:mod:`setwise.tasks.check`): float64 loss, logs, gradients and
  state equal by flat name, for every variant the task lists;
- resume after SIGKILL: ``setwise train`` in a subprocess, killed once its first checkpoint
  is written, then ``--resume``d, logs exactly the numbers of an uninterrupted
  ``setwise train``;
- ``init_from`` across backends: the torch-trained parameters evaluated by the JAX model give
  the same metric (float32 on both sides: ``rel 1e-4``, the round-off of a float32 forward
  pass of a few layers, with margin).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from setwise.tasks.check import check_task, table
from setwise.tasks.checkpoint import CHECKPOINT, load_checkpoint
from setwise.tasks.config import resolve
from setwise.tasks.datasets.files import DATA_ENV
from setwise.tasks.registry import get_task, task_names
from setwise.tasks.runs import read_metrics
from setwise.tasks.train import evaluate, fit, init_weights, trainer_class

BACKENDS = ("torch", "jax")
#: float32 models on two backends: agreement of an evaluation metric.
INIT_FROM_RTOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def data_dir_for_subprocesses():
    """Tasks read ``$SETWISE_DATA``; tests default it to ``<repo>/../shared/data`` (as
    conftest's ``data_dir``), for this process and the ``setwise train`` subprocesses."""
    if os.environ.get(DATA_ENV):
        yield
        return
    os.environ[DATA_ENV] = str(Path(__file__).resolve().parents[3].parent / "shared" / "data")
    yield
    del os.environ[DATA_ENV]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``get(task, backend)``: one in-process run of the tiny preset per (task, backend),
    shared by the tests of this module."""
    cache = {}

    def get(name, backend):
        task = get_task(name)
        config = tiny(task, backend)
        key = (name, backend)
        if key not in cache:
            run_dir = tmp_path_factory.mktemp(f"{name}-{backend}")
            fit(task, config, run_dir, device="cpu", progress=False, plot=False)
            cache[key] = run_dir
        return cache[key]

    return get


def tiny(task, backend):
    return resolve(task, "tiny", {"backend": backend})


def numbers(run_dir):
    """The metric lines without their wall-clock times."""
    return [{k: v for k, v in m.items() if k != "time"} for m in read_metrics(run_dir)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", task_names())
def test_a_few_training_steps(name, backend, runs):
    task = get_task(name)
    config = tiny(task, backend)
    run_dir = runs(name, backend)
    lines = numbers(run_dir)
    evals = [m for m in lines if m["split"] == "eval"]
    assert evals and evals[-1]["step"] == config["steps"]
    assert task.metric in evals[-1]
    for line in lines:
        values = [v for k, v in line.items() if k not in ("step", "split")]
        assert np.all(np.isfinite(values)), line
    ckpt = load_checkpoint(run_dir / CHECKPOINT)
    want = task.init_params(config)
    assert {k: v.shape for k, v in ckpt.params.items()} == {k: v.shape for k, v in want.items()}
    assert any(not np.array_equal(ckpt.params[k], want[k]) for k in want), "nothing trained"
    assert ckpt.step == config["steps"] and ckpt.adam_count == config["steps"]


@pytest.mark.parametrize("name", task_names())
def test_backends_give_the_same_loss_and_gradients(name):
    rows = check_task(get_task(name))
    assert all(r.ok for r in rows), table(rows) + "\n" + "\n".join(
        f"[{r.variant}] {f}" for r in rows for f in r.failures)


def train_command(name, backend, run_dir, steps, *extra):
    return [sys.executable, "-m", "setwise.tasks.cli", "train", name, "--preset=tiny",
            f"--backend={backend}", f"--steps={steps}", f"--run-dir={run_dir}",
            "--device=cpu", "--threads=1", "--no-progress", "--no-plot", *extra]


def kill_after_first_checkpoint(command, run_dir, env, timeout=300) -> int:
    """Start ``command``, SIGKILL it once ``run_dir`` holds a checkpoint; its step."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    checkpoint = run_dir / CHECKPOINT
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill:\n{err[-2000:]}"
    assert checkpoint.exists(), f"no checkpoint within {timeout} s:\n{err[-2000:]}"
    return load_checkpoint(checkpoint).step


def run_command(command, env):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", task_names())
def test_a_killed_run_resumes_exactly(name, backend, tmp_path):
    """``setwise train`` (a run far longer than the test) killed by SIGKILL right after its
    first checkpoint, then ``--resume``d to the tiny preset's length: the same metric lines
    as an uninterrupted ``setwise train``.

    All three are subprocesses with the same environment: XLA reads its thread flags once per
    process, and they change the float32 rounding of fused operations (omniglot-counting's
    convolutions differ in the 7th digit), so an in-process run is no exact reference. They
    share a JAX compilation cache (the test run's, see the root ``conftest.py``).
    """
    config = tiny(get_task(name), backend)
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR":
           os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(tmp_path / "jax-cache")}
    step = kill_after_first_checkpoint(train_command(name, backend, killed, 10**6), killed,
                                       env)
    assert step % config["eval_every"] == 0 and 0 < step
    steps = max(config["steps"], step + config["eval_every"])
    run_command(train_command(name, backend, straight, steps), env)
    run_command(train_command(name, backend, killed, steps, "--resume"), env)
    assert numbers(killed) == numbers(straight)
    assert not (straight / "curve.png").exists()  # --no-plot (the plot costs seconds)


@pytest.mark.parametrize("name", task_names())
def test_torch_trained_parameters_evaluate_alike_on_jax(name, runs):
    task = get_task(name)
    torch_run = runs(name, "torch")
    want = [m for m in read_metrics(torch_run) if m["split"] == "eval"][-1][task.metric]
    trainer = trainer_class("jax")(task, tiny(task, "jax"), "cpu")
    init_weights(trainer, torch_run)
    got = evaluate(task, trainer, list(task.eval_batches(tiny(task, "jax"))))[task.metric]
    assert got == pytest.approx(want, rel=INIT_FROM_RTOL, abs=1e-7)
