"""``--devices N`` (:mod:`setwise.tasks.distributed`): a 2-way run reaches the metrics of the
1-device run with the same global batch, and a 2-way run stopped at a checkpoint and resumed
reaches the uninterrupted 2-way run's metrics, for median, molecules (graph batches) and
setmnist (paper 2), on both backends.

torch: 2 gloo processes under ``torchrun`` (one subprocess, both ranks run every task; rank 0
also runs the 1-device references). JAX: one subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (a 2-device CPU mesh). Each worker
imports its framework once and trains every tiny run in-process, so the whole file costs two
process starts. Tolerances (float32): JAX shards one jitted global-batch step, so it agrees
to ``JAX_RTOL``; torch averages the shards' gradients, exact for per-set mean losses (median,
setmnist: ``TORCH_RTOL``) and close for molecules, whose BCE averages over the labelled
targets (shards weighted equally, not by their counts: ``MOLECULES_RTOL``).

The resume check stops a 2-way run at its first checkpoint (``steps`` = the tiny preset's
``eval_every``) and resumes it (``--resume`` with the preset's steps) rather than SIGKILLing
it; test_every_task.py makes the SIGKILL assertion for one device, and the checkpoint written
by rank 0 and read by every rank is the same file either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TASKS = ("median", "molecules", "setmnist")
#: options that make the 1-device and 2-device runs comparable (see each test)
OVERRIDES = {"molecules": {"drop_rate": 0.0}}
JAX_RTOL = 1e-4
TORCH_RTOL = 1e-4
MOLECULES_RTOL = 0.1

WORKER = textwrap.dedent('''
    import json, os, sys
    from setwise.tasks import distributed
    from setwise.tasks.config import resolve
    from setwise.tasks.registry import get_task
    from setwise.tasks.train import fit, read_metrics

    backend, out, tasks, overrides = sys.argv[1], sys.argv[2], sys.argv[3].split(","), \\
        json.loads(sys.argv[4])
    rank = distributed.world()[0]
    results = {}
    for name in tasks:
        task = get_task(name)
        base = {"backend": backend, **overrides.get(name, {})}
        config = resolve(task, "tiny", base)
        half = resolve(task, "tiny", {**base, "steps": config["eval_every"]})
        root = os.path.join(out, name)
        runs = {"two": (config, 2, False), "stopped": (half, 2, False),
                "resumed": (config, 2, True)}
        for run, (cfg, devices, resume) in runs.items():
            run_dir = os.path.join(root, "resume" if run != "two" else "two")
            fit(task, cfg, run_dir, resume=resume, device="cpu", progress=False, plot=False,
                devices=devices)
        if rank == 0:
            fit(task, config, os.path.join(root, "one"), device="cpu", progress=False,
                plot=False)
            results[name] = {run: [m[task.metric] for m in read_metrics(os.path.join(root, run))
                                   if m["split"] == "eval"]
                             for run in ("one", "two", "resume")}
    if rank == 0:
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f)
''')


def _env(**extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    env.setdefault("SETWISE_DATA",
                   str(Path(__file__).resolve().parents[3].parent / "shared" / "data"))
    return env


def _run(backend: str, tmp_path: Path) -> dict:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    args = [str(worker), backend, str(tmp_path), ",".join(TASKS), json.dumps(OVERRIDES)]
    if backend == "torch":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", *args]
        env = _env()
    else:
        cmd = [sys.executable, *args]
        # the 2-way runs (uninterrupted, stopped, resumed) share their compilations
        env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=2 "
                             "--xla_cpu_multi_thread_eigen=false",
                   JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"),
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((tmp_path / "results.json").read_text())


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_two_devices_reach_one_device_metrics(backend, tmp_path):
    results = _run(backend, tmp_path)
    print(backend, json.dumps(results))  # shown with -s: the measured agreement
    for name in TASKS:
        one, two, resumed = (results[name][k] for k in ("one", "two", "resume"))
        rtol = JAX_RTOL if backend == "jax" else \
            MOLECULES_RTOL if name == "molecules" else TORCH_RTOL
        assert len(one) == len(two) >= 2, (name, one, two)
        assert two == pytest.approx(one, rel=rtol, abs=1e-6), (name, backend, one, two)
        # the stopped-and-resumed 2-way run logs the uninterrupted 2-way run's metrics
        assert resumed == pytest.approx(two, rel=1e-6, abs=1e-7), (name, backend, two,
                                                                    resumed)


def test_gpu_check_dry_run(tmp_path):
    """``tools/gpu_check.sh --device cpu`` at tiny sizes: every median aggregator trains on
    torch, median's preset is timed, the EA benchmark against PyG and the molecules EA/Sum
    ratio are measured, and one results file names the device and versions."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [str(root / "tools" / "gpu_check.sh"), "--device", "cpu", "--tiny", "--steps", "4",
         "--tasks", "median", "--backends", "torch", "--out", str(tmp_path)],
        env=_env(SETWISE_NO_INSTALL="1"), capture_output=True, text=True, timeout=900,
        cwd=root)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {"python", "torch", "jax", "torch_geometric"} <= set(result["versions"])
    runs = result["training"]
    assert sorted(r["aggregator"] for r in runs) == sorted(("ea", "sum", "mha", "pna"))
    assert all(r["status"] == "ok" and r["final"] > 0 and r["steps_per_s"] > 0 for r in runs)
    bench = result["ea_vs_pyg"]
    assert all(bench[k] > 0 for k in ("pyg_sum_s", "setwise_ea_T5_s", "setwise_ea_T10_s",
                                      "pyg_ea_T5_s", "pyg_ea_T10_s")), bench
    ratio = result["molecules_step"]["torch"]["ea_over_sum"]
    assert ratio["2"] > 0 and ratio["5"] > 0 and ratio["10"] > 0, result["molecules_step"]
    (paper,) = result["paper"]
    assert paper["status"] == "ok" and paper["steps_per_s"] > 0, paper
    assert "EA/Sum training-step time" in (tmp_path / "gpu_check.md").read_text()
