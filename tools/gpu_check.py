"""One-command check of setwise on an accelerator (run by ``tools/gpu_check.sh``).

1. Device and versions (Python, NumPy, torch + CUDA, JAX + its devices, PyG).
2. Every registered task x backend (torch, JAX) x aggregator (``Task.aggregators``; setmnist
   also every ``--creator``) trains ``--steps`` steps of its ``cpu`` preset on the device
   (``setwise.tasks.train.fit``, an ordinary run directory), recording steps/s after the
   first logging window (JAX's compilation left out), the run's seconds and final metrics.
   Runs are skipped, and recorded as skipped, once ``--budget`` seconds are spent.
3. The ``paper`` preset of every task x backend (its first aggregator / creator), where the
   paper's data is not here replaced as :data:`PAPER_DATA` says: steps/s of the training step
   at the paper's sizes (``--paper-steps`` timed steps after ``--paper-warmup`` untimed ones
   on every batch shape met, which hold JAX's compilations), until ``--paper-budget``
   seconds are spent. A check that the paper-sized models run on the accelerator at all,
   and how fast.
4. The EA benchmark against PyG (paper 1 appendix E.2): one forward + backward of
   ``torch_geometric.nn.aggr.SumAggregation``, PyG's ``EquilibriumAggregation`` and setwise's
   torch ``equilibrium_aggregation`` on a MOLPCBA-like batch (256 sets of 16..36 elements,
   300 -> 300; setwise's potential ``[600, 300, 32]``), at T = 5 and T = 10 inner steps, and
   the EA/Sum time ratio of the molecules *training step* (GIN, paper widths), beside the
   paper's 1.84x (T = 5) and 2.86x (T = 10).

Writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out`` (default ``$OUT``, else
``runs/gpu_check``). ``--device cpu --steps 2 --tiny`` is the dry run the tests use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

PAPER_RATIO = {2: 1.42, 5: 1.84, 10: 2.86}  # paper 1 appendix E.2: EA / Sum time, MOLPCBA

#: Overrides of the ``paper`` preset where its data is not on this machine (nothing is
#: downloaded): ogbg-molpcba's graphs are not in the data folder, so the paper-sized model
#: trains on ogbg-moltox21's molecules (same atom and bond vocabularies); CLEVR v1.0 is not
#: here, so the paper-sized DSPN reads synthetic CLEVR-like scenes at 128 x 128 (a few are
#: rendered: only the step is timed).
PAPER_DATA = {"molecules": {"dataset": "ogbg-moltox21"},
              "clevr": {"source": "synthetic", "num_train": 64, "num_val": 8}}


def versions(device: str) -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__,
           "machine": platform.node(), "requested_device": device}
    try:
        import torch

        out["torch"] = torch.__version__
        out["cuda"] = torch.version.cuda
        out["torch_device"] = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                               else "cpu")
    except Exception as err:  # noqa: BLE001 - recorded, not fatal
        out["torch"] = f"unavailable: {err}"
    try:
        import jax

        out["jax"] = jax.__version__
        out["jax_devices"] = [str(d) for d in jax.devices()]
    except Exception as err:  # noqa: BLE001
        out["jax"] = f"unavailable: {err}"
    try:
        import torch_geometric

        out["torch_geometric"] = torch_geometric.__version__
    except Exception as err:  # noqa: BLE001
        out["torch_geometric"] = f"unavailable: {err}"
    return out


def variants(task) -> list[dict]:
    """The aggregator (and, for setmnist, creator) choices of ``task``."""
    names = {o.name: o for o in task.options}
    out = [{"aggregator": a} for a in task.aggregators] or [{}]
    if "creator" in names and names["creator"].choices:
        out = [{**v, "creator": c} for v in out for c in names["creator"].choices]
    return out


def train_all(args, out_dir: Path) -> list[dict]:
    from setwise.tasks.config import resolve
    from setwise.tasks.registry import get_task, task_names
    from setwise.tasks.train import fit

    rows, start = [], time.perf_counter()
    tasks = args.tasks or task_names()
    for name in tasks:
        task = get_task(name)
        for backend in args.backends:
            for variant in variants(task):
                row = {"task": name, "backend": backend, **variant}
                if time.perf_counter() - start > args.budget:
                    rows.append({**row, "status": "skipped (budget spent)"})
                    continue
                try:
                    config = resolve(task, "tiny" if args.tiny else None,
                                     {"backend": backend, **variant, "steps": args.steps,
                                      "eval_every": args.steps,
                                      "log_every": max(1, args.steps // 4)})
                    tag = "-".join(str(v) for v in variant.values())
                    summary = fit(task, config, out_dir / "runs" / name / f"{backend}-{tag}",
                                  overwrite=True, device=args.device, progress=False,
                                  plot=False)
                    rows.append({**row, "status": "ok", "device": summary["device"],
                                 "steps": args.steps,
                                 "steps_per_s": steady_rate(out_dir / "runs" / name /
                                                            f"{backend}-{tag}"),
                                 "seconds": summary["time"],
                                 "metric": task.metric,
                                 "final": summary["final"].get(task.metric)})
                except Exception as err:  # noqa: BLE001 - one failure must not stop the check
                    rows.append({**row, "status": f"failed: {err!r}"[:300],
                                 "traceback": traceback.format_exc()[-1500:]})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def steady_rate(run_dir) -> float | None:
    """Steps per second after the first logging window (JAX's compilation left out)."""
    from setwise.tasks.runs import read_metrics

    train = [m for m in read_metrics(run_dir) if m["split"] == "train"]
    if len(train) < 2 or train[-1]["time"] <= train[0]["time"]:
        return None
    return (train[-1]["step"] - train[0]["step"]) / (train[-1]["time"] - train[0]["time"])


def paper_speed(args) -> list[dict]:
    """Steps/s of each task's ``paper`` preset (:data:`PAPER_DATA` overrides) per backend."""
    from setwise.tasks.config import resolve
    from setwise.tasks.registry import get_task, task_names
    from setwise.tasks.train import trainer_class

    rows, start = [], time.perf_counter()
    for backend in args.backends:
        for name in args.tasks or task_names():
            task = get_task(name)
            row = {"task": name, "backend": backend}
            if time.perf_counter() - start > args.paper_budget:
                rows.append({**row, "status": "skipped (budget spent)"})
                continue
            try:
                overrides = {"backend": backend, **PAPER_DATA.get(name, {})}
                config = resolve(task, "tiny" if args.tiny else "paper", overrides)
                clock = time.perf_counter()
                trainer = trainer_class(backend)(task, config, args.device)
                warmup, steps = args.paper_warmup, args.paper_steps
                batches = [task.train_batch(config, s) for s in range(warmup + steps)]
                # every batch shape the timed steps meet is compiled first (synthetic's
                # padded set widths vary by batch), each ``warmup`` times
                shapes = {tuple(sorted((k, np.shape(v)) for k, v in b.items())): b
                          for b in batches[warmup:]}
                for s in range(warmup):
                    for batch in (batches[s], *shapes.values()):
                        logs = trainer.step(batch, s)
                float(logs["loss"])
                warm = time.perf_counter()
                for s in range(warmup, warmup + steps):
                    logs = trainer.step(batches[s], s)
                loss = float(logs["loss"])
                done = time.perf_counter()
                rows.append({**row, "status": "ok", "device": trainer.device_name,
                             "batch_size": config.get("batch_size"),
                             "steps_per_s": steps / (done - warm),
                             "setup_and_warmup_s": warm - clock, "loss": loss})
            except Exception as err:  # noqa: BLE001 - one failure must not stop the check
                rows.append({**row, "status": f"failed: {err!r}"[:300],
                             "traceback": traceback.format_exc()[-1500:]})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _time(fn, rounds: int, sync) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def ea_vs_pyg(args) -> dict:
    """Seconds of one forward + backward (best of ``rounds``) per aggregator and T."""
    import torch

    from setwise.reference import init_equilibrium_aggregation
    from setwise.torch_backend import equilibrium_aggregation

    dev = torch.device("cuda" if args.device in ("cuda", "gpu", "auto")
                       and torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    num_sets, dim, lo, hi = (16, 16, 4, 8) if args.tiny else (256, 300, 16, 36)
    hidden = (32, 16, 8) if args.tiny else (600, 300, 32)
    sizes = rng.integers(lo, hi + 1, num_sets)
    index = torch.as_tensor(np.repeat(np.arange(num_sets), sizes), device=dev)
    x = torch.as_tensor(rng.normal(size=(len(index), dim)).astype(np.float32), device=dev,
                        ).requires_grad_(True)
    out = {"elements": int(len(index)), "sets": num_sets, "dim": dim, "device": str(dev)}
    rounds = 2 if args.tiny else 20
    try:
        from torch_geometric.nn.aggr import EquilibriumAggregation, SumAggregation
    except Exception as err:  # noqa: BLE001
        out["pyg"] = f"unavailable: {err}"
        SumAggregation = EquilibriumAggregation = None

    def backward(y):
        (y ** 2).sum().backward()

    if SumAggregation is not None:
        summ = SumAggregation()
        out["pyg_sum_s"] = _time(lambda: backward(summ(x, index, dim_size=num_sets)),
                                 rounds, sync)
    for steps in (5, 10):
        params = {k: torch.as_tensor(v, device=dev).requires_grad_(True) for k, v in
                  init_equilibrium_aggregation(1, dim, dim, hidden=hidden).items()}
        out[f"setwise_ea_T{steps}_s"] = _time(lambda p=params, t=steps: backward(
            equilibrium_aggregation(p, x, index=index, num_sets=num_sets, num_steps=t)),
            rounds, sync)
        if EquilibriumAggregation is not None:
            pyg = EquilibriumAggregation(dim, dim, list(hidden[:-1]), grad_iter=steps).to(dev)
            out[f"pyg_ea_T{steps}_s"] = _time(
                lambda m=pyg: backward(m(x, index, dim_size=num_sets)), rounds, sync)
    return out


def molecules_ratio(args) -> dict:
    """EA / Sum time of one molecules training step (GIN, paper widths, the paper's EA
    potential) at T = 2, 5 and 10, per backend (the trainers' own step, batch transfer
    included; the result is read back each step, so the time is a whole step's)."""
    from setwise.tasks.config import resolve
    from setwise.tasks.registry import get_task
    from setwise.tasks.train import trainer_class

    task = get_task("molecules")
    preset = "tiny" if args.tiny else "paper"
    rounds = 2 if args.tiny else 20
    out = {"paper_ea_over_sum": PAPER_RATIO}
    for backend in args.backends:
        times = {}
        for agg, steps in (("sum", 5), ("ea", 2), ("ea", 5), ("ea", 10)):
            config = resolve(task, preset, {**PAPER_DATA["molecules"], "backend": backend,
                                            "gnn": "gin", "aggregator": agg,
                                            "ea_steps": steps})
            trainer = trainer_class(backend)(task, config, args.device)
            batch = task.train_batch(config, 0)
            trainer.step(batch, 0)  # JAX: the second call compiles again (donated buffers)
            times[f"{agg}_T{steps}" if agg == "ea" else agg] = _time(
                lambda t=trainer, b=batch: float(t.step(b, 0)["loss"]), rounds, lambda: None)
        out[backend] = {"step_s": times,
                        "ea_over_sum": {t: times[f"ea_T{t}"] / times["sum"] for t in (2, 5, 10)}}
    return out


def markdown(result: dict) -> str:
    lines = ["# setwise GPU check", "", "```", json.dumps(result["versions"], indent=1), "```",
             "", f"Total {result['seconds']:.0f} s.", "",
             "| task | backend | variant | status | steps/s | final metric |",
             "|---|---|---|---|---|---|"]
    for r in result["training"]:
        variant = " ".join(f"{k}={r[k]}" for k in ("aggregator", "creator") if k in r)
        sps = f"{r['steps_per_s']:.1f}" if r.get("steps_per_s") else ""
        final = f"{r['metric']} {r['final']:.4g}" if r.get("final") is not None else ""
        lines.append(f"| {r['task']} | {r['backend']} | {variant} | {r['status'][:60]} | "
                     f"{sps} | {final} |")
    lines += ["", "## Paper presets", "", "| task | backend | status | batch | steps/s | "
              "setup + warm-up s |", "|---|---|---|---|---|---|"]
    for r in result.get("paper", []):
        sps = f"{r['steps_per_s']:.2f}" if r.get("steps_per_s") else ""
        warm = f"{r['setup_and_warmup_s']:.0f}" if r.get("setup_and_warmup_s") else ""
        lines.append(f"| {r['task']} | {r['backend']} | {r['status'][:60]} | "
                     f"{r.get('batch_size', '')} | {sps} | {warm} |")
    for key in ("ea_vs_pyg", "molecules_step"):
        lines += ["", f"## {key}", "", "```", json.dumps(result.get(key), indent=1), "```"]
    for backend in ("torch", "jax"):
        ratio = (result.get("molecules_step") or {}).get(backend, {}).get("ea_over_sum")
        if ratio:
            lines += ["", f"EA/Sum training-step time ({backend}): " + ", ".join(
                f"{ratio[t]:.2f}x at T={t} (paper {PAPER_RATIO[t]}x)" for t in (2, 5, 10))
                + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cpu, auto")
    p.add_argument("--steps", type=int, default=300, help="training steps per run")
    p.add_argument("--budget", type=float, default=330.0,
                   help="seconds of training runs; later runs are recorded as skipped")
    p.add_argument("--backends", nargs="+", default=["torch", "jax"])
    p.add_argument("--tasks", nargs="*", default=None, help="default: every registered task")
    p.add_argument("--tiny", action="store_true", help="tiny presets and sizes (dry run)")
    p.add_argument("--paper-budget", type=float, default=240.0,
                   help="seconds of paper-preset timings; later ones are recorded as skipped")
    p.add_argument("--paper-steps", type=int, default=10, help="timed steps per paper preset")
    p.add_argument("--paper-warmup", type=int, default=2,
                   help="untimed steps first (JAX compiles in the first two)")
    p.add_argument("--skip", nargs="*", default=[], choices=("molecules_step", "ea_vs_pyg",
                                                            "paper", "training"),
                   help="parts to leave out")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    out_dir = args.out or Path(os.environ.get("OUT") or "runs/gpu_check")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = {"versions": versions(args.device), "args": {k: str(v) for k, v in
                                                          vars(args).items()}}
    # most wanted first: a run cut short by its time limit has them
    for key, fn in (("molecules_step", molecules_ratio), ("ea_vs_pyg", ea_vs_pyg)):
        if key in args.skip:
            continue
        try:
            result[key] = fn(args)
        except Exception as err:  # noqa: BLE001
            result[key] = {"failed": repr(err), "traceback": traceback.format_exc()[-1500:]}
        print(json.dumps({key: result[key]}, default=str), file=sys.stderr, flush=True)
    result["paper"] = [] if "paper" in args.skip else paper_speed(args)
    result["training"] = [] if "training" in args.skip else train_all(args, out_dir)
    result["seconds"] = time.perf_counter() - start
    (out_dir / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))
    (out_dir / "gpu_check.md").write_text(markdown(result))
    print(markdown(result))
    failed = [r for r in result["training"] + result["paper"]
              if r["status"].startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
