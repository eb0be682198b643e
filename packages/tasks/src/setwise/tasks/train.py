"""Training: the schedule every task and backend shares.

:func:`fit` owns the schedule (steps, logging, evaluation, checkpoints, resume, progress bar,
the training-curve plot); a backend trainer (:mod:`setwise.tasks.loops.torch_loop`,
:mod:`setwise.tasks.loops.jax_loop`) owns the arrays: parameters, state, Adam, one step,
prediction, and their contents as a :class:`~setwise.tasks.checkpoint.Checkpoint`. Training
batches are a pure function of ``(seed, step)`` and checkpoints hold the parameters, the model
state, Adam's state and the step (:mod:`setwise.tasks.checkpoint`, one format for both
backends), so a run killed and resumed logs the same numbers as an uninterrupted one, and
``init_from`` starts a run from another run's parameters, whichever backend trained it.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from setwise.tasks import distributed
from setwise.tasks.checkpoint import CHECKPOINT, check_names, load_checkpoint, save_checkpoint
from setwise.tasks.registry import Task
from setwise.tasks.runs import RunDir, read_metrics
from setwise.tasks.schedule import Plateau

TRAINERS = {"torch": "setwise.tasks.loops.torch_loop:TorchTrainer",
            "jax": "setwise.tasks.loops.jax_loop:JaxTrainer"}


def trainer_class(backend: str):
    if backend not in TRAINERS:
        raise ValueError(f"backend is {backend!r}; expected one of {', '.join(TRAINERS)}")
    module, cls = TRAINERS[backend].split(":")
    return getattr(importlib.import_module(module), cls)


def set_threads(backend: str, threads: int | None) -> None:
    """Limit the CPU threads of ``backend`` (call before the backend's first computation).

    On a CPU shared with other work, PyTorch's default (one OpenMP thread per core,
    busy-waiting) can make small models 10-20x slower than one thread.
    """
    if not threads:
        return
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (f"{flags} --xla_cpu_multi_thread_eigen={threads > 1} "
                                       f"intra_op_parallelism_threads={threads}").strip()


def evaluate(task: Task, trainer, batches: list[dict]) -> dict[str, float]:
    """``task``'s metrics of the trainer's current parameters on ``batches``."""
    return task.evaluate([trainer.predict(b, i) for i, b in enumerate(batches)], batches)


def init_weights(trainer, init_from) -> None:
    """Start ``trainer`` from the parameters and state of the run in ``init_from`` (trained on
    either backend; Adam starts afresh). Raises ``ValueError`` if its names or shapes differ
    from this run's model."""
    ckpt = load_checkpoint(Path(init_from) / CHECKPOINT)
    own = trainer.checkpoint(0, 0.0)
    check_names(f"--init-from {init_from}: parameters", ckpt.params, own.params)
    check_names(f"--init-from {init_from}: state", ckpt.state, own.state)
    trainer.set_weights({k: v.astype(own.params[k].dtype) for k, v in ckpt.params.items()},
                        {k: v.astype(own.state[k].dtype) for k, v in ckpt.state.items()})


def _mean(records: list[Mapping]) -> dict[str, float]:
    return {k: float(np.mean([float(r[k]) for r in records])) for k in records[0]}


def best_eval(task: Task, run_dir) -> dict | None:
    """The evaluation line with the best ``task.metric`` in ``run_dir``."""
    evals = [m for m in read_metrics(run_dir) if m["split"] == "eval"]
    if not evals:
        return None
    pick = min if task.metric_mode == "min" else max
    return pick(evals, key=lambda m: m[task.metric])


def fit(task: Task, config: Mapping, run_dir, *, resume: bool = False, overwrite: bool = False,
        device: str = "auto", progress: bool = True, plot: bool = True, init_from=None,
        devices: int = 1) -> dict:
    """Train ``task`` with ``config`` into ``run_dir``; return the run's summary.

    Args:
        task: a registered task.
        config: a resolved configuration (:func:`setwise.tasks.config.resolve`).
        run_dir: where config, metrics, checkpoint, summary and plot go.
        resume: continue from the checkpoint in ``run_dir`` (if there is one).
        overwrite: discard a run already in ``run_dir``.
        device: ``auto`` (GPU if present), ``cpu``, ``cuda`` / ``gpu``.
        progress: show a progress bar.
        plot: write ``curve.png`` at the end.
        init_from: a run directory whose checkpoint's parameters and state this run starts
            from (any backend's run; ignored when resuming from this run's own checkpoint).
        devices: train on this many devices (:mod:`setwise.tasks.distributed`: torch ranks
            under ``torchrun``, of which only rank 0 writes ``run_dir`` and evaluates; a JAX
            mesh). A non-zero torch rank returns ``{"rank": r}``.
    """
    steps, log_every, eval_every = (int(config[k]) for k in ("steps", "log_every", "eval_every"))
    trainer_cls = trainer_class(config["backend"])
    run = RunDir(run_dir, CHECKPOINT)
    main = devices == 1 or distributed.is_main()
    distributed.barrier(devices)  # rank 0's writes of an earlier run are done
    # everything that can fail is done before the run directory is written
    resuming = run.check(config, resume=resume, overwrite=overwrite) if main else \
        resume and run.checkpoint.exists()
    trainer = trainer_cls(task, config, device) if devices == 1 else \
        distributed.make_trainer(task, config, device, devices)
    batches = list(task.eval_batches(config)) if main else []
    start, elapsed = 0, 0.0
    schedule = Plateau.from_config(config)
    if resuming:
        ckpt = load_checkpoint(run.checkpoint)
        RunDir.check_resume_step(run.checkpoint, ckpt.step, steps)
        start, elapsed = trainer.restore(ckpt)
        schedule.load(ckpt.schedule)
        trainer.set_lr(schedule.lr)
    elif init_from is not None:
        init_weights(trainer, init_from)
    distributed.barrier(devices)  # every rank has read the checkpoint before rank 0 writes
    if not main:
        return _follow(task, config, trainer, schedule, start, steps)
    run.create(config, overwrite=overwrite)
    run.truncate_metrics(start)
    clock = time.perf_counter() - elapsed
    bar = tqdm(total=steps, initial=start, desc=f"{task.name} {run.path.name}",
               disable=not progress, dynamic_ncols=True, file=sys.stderr)
    pending, last_eval, shown, process_start = [], {}, {}, time.perf_counter()
    with _StopOnSigint() as sigint:
        for step in range(start, steps):
            pending.append(trainer.step(task.train_batch(config, step), step))
            done = step + 1
            evaluate_now = done % eval_every == 0 or done == steps
            # a checkpoint never leaves a partial window
            if done % log_every == 0 or evaluate_now or sigint.requested:
                train = _mean(pending)
                _check_finite(run, pending, done, train)
                schedule.add(train["loss"], len(pending))
                pending = []
                lr = {"lr": trainer.lr} if schedule.active else {}
                run.log({"step": done, "split": "train", **train, **lr,
                         "time": time.perf_counter() - clock})
                shown = {k: f"{train[k]:.3g}" for k in ("loss", task.metric) if k in train}
                bar.set_postfix(**shown, **last_eval)
            if evaluate_now:
                metrics = evaluate(task, trainer, batches)
                run.log({"step": done, "split": "eval", **metrics,
                         "time": time.perf_counter() - clock})
                last_eval = {f"eval_{task.metric}": f"{metrics[task.metric]:.3g}"}
                bar.set_postfix(**shown, **last_eval)
                tqdm.write(f"{run.path.name} step {done}: eval " + ", ".join(
                    f"{k} {v:.4g}" for k, v in metrics.items()), file=sys.stderr)
                if (cut := schedule.end_interval()) is not None:
                    trainer.set_lr(cut)
                    tqdm.write(f"{run.path.name} step {done}: the mean training loss has not "
                               f"improved for {schedule.patience + 1} evaluation intervals; "
                               f"learning rate {cut:.3g}", file=sys.stderr)
            if evaluate_now or sigint.requested:
                ckpt = trainer.checkpoint(done, time.perf_counter() - clock)
                ckpt.schedule = schedule.state()
                save_checkpoint(run.checkpoint, ckpt)
            bar.update(1)
            if sigint.requested and done < steps:
                bar.close()
                raise TrainingInterrupted(run.path, done)
    bar.close()
    ran = steps - start
    summary = _summary(task, config, run, trainer, ran, time.perf_counter() - process_start)
    if init_from is not None:
        summary["init_from"] = str(init_from)
    run.write_summary(summary)
    if plot:
        from setwise.tasks.plotting import plot_run

        plot_run(run.path)
    return summary


def _follow(task, config, trainer, schedule: Plateau, start: int, steps: int) -> dict:
    """A non-zero torch rank's loop: the same steps (their collectives) and the same
    learning rates (the schedule watches the training loss, averaged over the ranks, so every
    rank cuts the rate at the same step), nothing written."""
    pending, log_every, eval_every = [], int(config["log_every"]), int(config["eval_every"])
    for step in range(start, steps):
        pending.append(trainer.step(task.train_batch(config, step), step))
        done = step + 1
        evaluate_now = done % eval_every == 0 or done == steps
        if done % log_every == 0 or evaluate_now:
            mean = _mean(pending)
            if not np.isfinite(mean["loss"]):
                raise NonFiniteLoss(f"rank {distributed.world()[0]}: the training loss is not "
                                    f"finite by step {step + 1}; rank 0 names the step")
            schedule.add(mean["loss"], len(pending))
            pending = []
        if evaluate_now and (cut := schedule.end_interval()) is not None:
            trainer.set_lr(cut)
    return {"rank": distributed.world()[0]}


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the run stopped, its last good checkpoint
    kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped the run after a step; a checkpoint of that step was saved.

    Attributes:
        run_dir: the run directory.
        step: the steps done (the checkpoint's step).
    """

    def __init__(self, run_dir, step: int):
        super().__init__(f"{run_dir}: interrupted after step {step}; checkpoint saved")
        self.run_dir, self.step = Path(run_dir), step


class _StopOnSigint:
    """While active, the first SIGINT (Ctrl-C) only sets ``requested`` (the loop saves a
    checkpoint after the current step and stops); a second one interrupts at once. Outside
    the main thread (where signals cannot be caught) it does nothing."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to "
                   "stop at once, without one)", file=sys.stderr)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _check_finite(run: RunDir, window: list[Mapping], done: int, mean: Mapping) -> None:
    """Raise :class:`NonFiniteLoss` naming the first step of ``window`` (the steps ending at
    ``done``) whose loss is NaN or infinite."""
    if np.isfinite(mean["loss"]):
        return
    first = len(window)
    for i, record in enumerate(window):
        if not np.isfinite(float(record["loss"])):
            first = i
            break
    step = done - len(window) + first + 1
    kept = (f"the last good checkpoint {run.checkpoint} is kept" if run.checkpoint.exists()
            else "no checkpoint was written before it")
    raise NonFiniteLoss(f"{run.path}: the training loss is {float(window[first]['loss'])} at "
                        f"step {step}; stopped ({kept}). Try a smaller --lr (for EA also "
                        "--ea-step-size or --ea-clip) in a new run (--overwrite or another "
                        "--run-dir)")


def _summary(task, config, run, trainer, ran, seconds) -> dict:
    lines = read_metrics(run.path)
    evals = [m for m in lines if m["split"] == "eval"]
    final = {k: v for k, v in evals[-1].items() if k not in ("split", "time")} if evals else {}
    best = best_eval(task, run.path)
    return {"task": task.name, "backend": config["backend"], "device": trainer.device_name,
            "aggregator": config["aggregator"], "seed": config["seed"], "steps": config["steps"],
            "metric": task.metric, "final": final,
            "best": {k: v for k, v in best.items() if k not in ("split", "time")} if best else {},
            "time": lines[-1]["time"] if lines else 0.0,
            "steps_per_second_this_process": ran / seconds if seconds > 0 else None,
            "config": dict(config)}
