"""``setwise check``: the PyTorch and JAX models of a task are the same model.

For a task's ``tiny`` configuration and each of its :meth:`~setwise.tasks.registry.Task.
check_variants`, both backends get the same float64 parameters and state
(``init_params(config, "float64")``), the same training batch (``train_batch(config, 0)``,
floats cast to float64), the same noise (a :class:`~setwise.tasks.rng.NumpyRng` of seed
:data:`RNG_SEED` each) and ``train=True``. Compared by flat name:

- the loss and every logged scalar;
- the gradient of the loss with respect to every parameter (a parameter the loss does not
  reach has gradient zero: torch's ``None``);
- the new state (batch-norm running statistics).

An array ``a`` (torch) agrees with ``b`` (JAX) when ``max |a - b| <= atol + rtol * max |b|``
(:data:`TOLERANCES`): the error is measured against the array's scale, not element-wise, so an
entry that is zero up to rounding in a large gradient does not fail. Both backends must also
return gradients under exactly the NumPy parameters' names, and the new state under the
state's names.

Tolerances (float64, machine epsilon 2.2e-16): the backends order their sums and matrix
products differently, and EA's unrolled inner descent amplifies rounding by the conditioning
of the computation. Measured on 2026-11-28 over every variant of median, molecules,
omniglot-counting and setmnist: at most 7e-14 relative (a ResNet's first convolution), most
below 1e-15. A real disagreement (an operation that differs, a float32 cast inside a model:
float32 epsilon is 1.2e-7, a gradient that misses a term) shows as 1e-7 or more: EA's implicit
gradient solved by dense LU in one backend and by conjugate gradients on an indefinite
Hessian in the other differed by 1e-1 relative before the backends were aligned. ``rtol =
1e-8`` sits between, with five orders of margin above the round-off and one below a float32
leak; ``atol = 1e-10`` covers quantities that are zero in exact arithmetic.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from setwise.tasks.config import resolve
from setwise.tasks.registry import Task, get_task, task_names
from setwise.tasks.rng import NumpyRng

#: ``(rtol, atol)`` per compared quantity, float64 (see the module docstring).
TOLERANCES = {"loss": (1e-8, 1e-10), "grad": (1e-8, 1e-10), "state": (1e-8, 1e-10)}
#: Seed of the NumPy noise both backends draw.
RNG_SEED = 1234
BACKENDS = ("torch", "jax")


@dataclass
class Result:
    """The loss, logs, gradients and new state of one backend, as float64 NumPy."""

    loss: float
    logs: dict[str, float]
    grads: dict[str, np.ndarray]
    state: dict[str, np.ndarray]


@dataclass
class Row:
    """One task variant's comparison: the worst error of each kind, and what failed."""

    task: str
    variant: str
    loss: tuple[float, float] = (0.0, 0.0)  # (abs, rel) of the loss and logged scalars
    grad: tuple[float, float] = (0.0, 0.0)
    grad_name: str = ""
    state: tuple[float, float] = (0.0, 0.0)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def float64_batch(batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``batch`` with every floating array cast to float64 (ints and bools unchanged)."""
    out = {}
    for k, v in batch.items():
        v = np.asarray(v)
        out[k] = v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v
    return out


def torch_result(model, params, state, batch) -> Result:
    import torch

    def tensor(v):
        return torch.from_numpy(np.array(v, copy=True))

    p = {k: tensor(v).requires_grad_(True) for k, v in params.items()}
    rng = NumpyRng(RNG_SEED, lambda a: torch.from_numpy(np.array(a, copy=True)), "float64")
    loss, logs, new_state = model.loss(p, {k: tensor(v) for k, v in state.items()},
                                       {k: tensor(v) for k, v in batch.items()}, rng, True)
    loss.backward()
    grads = {k: (np.zeros_like(params[k]) if v.grad is None else v.grad.numpy())
             for k, v in p.items()}
    return Result(float(loss.detach()), {k: float(v.detach()) for k, v in logs.items()}, grads,
                  {k: v.detach().numpy() for k, v in new_state.items()})


def jax_result(model, params, state, batch) -> Result:
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        rng = NumpyRng(RNG_SEED, jnp.asarray, "float64")
        as_jax = {k: jnp.asarray(v) for k, v in batch.items()}
        jstate = {k: jnp.asarray(v) for k, v in state.items()}

        def loss_fn(p):
            loss, logs, new_state = model.loss(p, jstate, as_jax, rng, True)
            return loss, (logs, new_state)

        (loss, (logs, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            {k: jnp.asarray(v) for k, v in params.items()})
        return Result(float(loss), {k: float(v) for k, v in logs.items()},
                      {k: np.asarray(v) for k, v in grads.items()},
                      {k: np.asarray(v) for k, v in new_state.items()})


RESULTS = {"torch": torch_result, "jax": jax_result}


def error(a, b) -> tuple[float, float]:
    """``(max |a - b|, max |a - b| / max |b|)`` (relative error 0 when both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf"), float("inf")
    if a.size == 0:
        return 0.0, 0.0
    diff = float(np.max(np.abs(a - b)))
    scale = float(np.max(np.abs(b)))
    return diff, (diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))


def agrees(err: tuple[float, float], scale: float, kind: str) -> bool:
    rtol, atol = TOLERANCES[kind]
    return bool(np.isfinite(err[0])) and err[0] <= atol + rtol * scale


def compare(task: str, variant: str, params: Mapping, state: Mapping, torch: Result,
            jax: Result) -> Row:
    """Compare the two backends' results; a failure is recorded in ``Row.failures``."""
    row = Row(task, variant)
    for backend, res in (("torch", torch), ("jax", jax)):
        if set(res.grads) != set(params):
            row.failures.append(f"{backend} gradient names differ from the parameters' "
                                f"(missing {sorted(set(params) - set(res.grads))}, extra "
                                f"{sorted(set(res.grads) - set(params))})")
        if set(res.state) != set(state):
            row.failures.append(f"{backend} new state names differ from the state's "
                                f"({sorted(res.state)} vs {sorted(state)})")
    if set(torch.logs) != set(jax.logs):
        row.failures.append(f"logged names differ: torch {sorted(torch.logs)}, jax "
                            f"{sorted(jax.logs)}")
    scalars = {"loss": (torch.loss, jax.loss), **{k: (torch.logs[k], jax.logs[k])
                                                  for k in set(torch.logs) & set(jax.logs)}}
    for name, (a, b) in sorted(scalars.items()):
        err = error(a, b)
        row.loss = max(row.loss, err)
        if not agrees(err, abs(b), "loss"):
            row.failures.append(f"{name}: torch {a!r} vs jax {b!r}")
    for kind, t, j in (("grad", torch.grads, jax.grads), ("state", torch.state, jax.state)):
        for name in sorted(set(t) & set(j)):
            err = error(t[name], j[name])
            if err > getattr(row, kind):
                setattr(row, kind, err)
                if kind == "grad":
                    row.grad_name = name
            if not agrees(err, float(np.max(np.abs(j[name]), initial=0.0)), kind):
                row.failures.append(f"{kind} {name}: max |torch - jax| {err[0]:.3g} "
                                    f"(relative {err[1]:.3g})")
    return row


def variant_name(overrides: Mapping) -> str:
    return ",".join(f"{k}={v}" for k, v in overrides.items()) or "tiny"


def check_variant(task: Task, overrides: Mapping) -> Row:
    """Both backends on ``task``'s ``tiny`` configuration with ``overrides``."""
    config = resolve(task, "tiny", dict(overrides))
    params = task.init_params(config, "float64")
    state = task.init_state(config, "float64")
    batch = float64_batch(task.train_batch(config, 0))
    results = {b: RESULTS[b](task.build_model(b, config), params, state, batch)
               for b in BACKENDS}
    return compare(task.name, variant_name(overrides), params, state, results["torch"],
                   results["jax"])


def check_task(task: Task) -> list[Row]:
    """Every variant of ``task`` (:meth:`~setwise.tasks.registry.Task.check_variants`)."""
    config = resolve(task, "tiny")
    return [check_variant(task, v) for v in task.check_variants(config)]


def table(rows: Iterable[Row]) -> str:
    """A markdown table of the worst errors per task and variant."""
    lines = ["| task | variant | loss/logs abs | rel | grad abs | rel | worst grad | "
             "state abs | rel | ok |", "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r.task} | {r.variant} | {r.loss[0]:.2g} | {r.loss[1]:.2g} | "
                     f"{r.grad[0]:.2g} | {r.grad[1]:.2g} | {r.grad_name or '-'} | "
                     f"{r.state[0]:.2g} | {r.state[1]:.2g} | {'yes' if r.ok else 'NO'} |")
    return "\n".join(lines)


def run(names: Iterable[str], out=sys.stdout, threads: int | None = 1) -> int:
    """Check the tasks ``names`` (``["all"]``: every registered task); print the table and
    each failure; return the exit status (0: every variant agrees, 1: one does not).
    ``threads``: PyTorch's CPU threads (1: fastest for these tiny models on a shared CPU)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    names = list(names)
    if names == ["all"]:
        names = task_names()
    rows = []
    for name in names:
        try:
            rows += check_task(get_task(name))
        except Exception as err:  # one task's failure must not hide the others' results
            rows.append(Row(name, "-", failures=[f"{type(err).__name__}: {err}"]))
    print(table(rows), file=out)
    rtol, atol = TOLERANCES["grad"]
    print(f"\ntorch vs jax, float64, tolerance max|a - b| <= {atol:g} + {rtol:g} max|b| per "
          "array", file=out)
    failed = [r for r in rows if not r.ok]
    for r in failed:
        for f in r.failures:
            print(f"FAIL {r.task} [{r.variant}]: {f}", file=out)
    return 1 if failed else 0


def register(subparsers) -> None:
    """Add ``setwise check`` to the ``setwise`` command's subparsers."""
    p = subparsers.add_parser(
        "check", help="check that a task's PyTorch and JAX models agree (float64)",
        description="For each task's tiny configuration and variants: float64 loss, logs, "
                    "gradients and state of the PyTorch and JAX models, compared by flat "
                    "parameter name. Exit status 1 if they disagree.")
    p.add_argument("tasks", nargs="+", metavar="TASK", choices=[*task_names(), "all"],
                   help=f"task names or 'all' ({', '.join(task_names())})")


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m setwise.tasks.check")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", *(sys.argv[1:] if argv is None else argv)])
    return run(args.tasks)


if __name__ == "__main__":
    sys.exit(main())
