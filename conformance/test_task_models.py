"""Property: every registered task's model has the set symmetries its task declares, on both
backends (issue #20).

Parametrised over :func:`setwise.tasks.registry.task_names` (each task's ``tiny`` preset; with
``SETWISE_TASK_VARIANTS=1`` also every :meth:`~setwise.tasks.registry.Task.check_variants`)
and the backends ``torch`` / ``jax`` (``--backends`` selects). Nothing here names a task: the
layout comes from :meth:`~setwise.tasks.registry.Task.symmetries`
(:mod:`setwise.tasks.symmetries`), and a task without it fails. Hypothesis draws the batch
(an evaluation batch, or a training step) and the permutations; the profile's example count
is divided by :data:`EXAMPLE_DIVISOR` (these are whole models: ``ci`` runs 2 examples).

- invariance of set-level predictions, and equality *as sets* of set-valued ones, when the
  elements of any declared set axis are permuted (a graph's nodes, its edges) and when their
  padding changes (junk values, extra slots);
- batch independence in evaluation mode (a set's prediction without its companions);
- paper 2's Lemma 1 at model level: with the noise fixed, the training loss's parameter
  gradients are identical for a batch and a permutation of its sets' elements;
- cross-backend agreement (float64 loss, logs, gradients, state; ``setwise check``) over
  random training batches.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.conftest import _selected
from conformance.model_checks import (
    backend_disagreement,
    companion_error,
    gradient,
    gradient_permutation_error,
    padding_error,
    permutation_error,
    predictor,
    undeclared_outputs,
)
from conformance.tolerances import tolerance
from setwise.tasks.check import variant_name
from setwise.tasks.config import resolve
from setwise.tasks.registry import get_task, task_names

#: Tasks read ``$SETWISE_DATA``; the suite defaults it to ``<repo>/../shared/data``.
os.environ.setdefault("SETWISE_DATA",
                      str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
MODEL_BACKENDS = ("torch", "jax")
#: Whole-model examples are ~10^3 times an operator's cost: the profile's count over this.
EXAMPLE_DIVISOR = 6


def cases() -> list[tuple[str, tuple]]:
    """``(task, overrides)``: the tiny preset of every task (and its check variants when
    ``SETWISE_TASK_VARIANTS=1``)."""
    out = []
    for name in task_names():
        out.append((name, ()))
        if os.environ.get("SETWISE_TASK_VARIANTS") == "1":
            task = get_task(name)
            out += [(name, tuple(v.items())) for v in task.check_variants(resolve(task, "tiny"))
                    if v]
    return out


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        found = cases()
        metafunc.parametrize("case", found,
                             ids=[f"{n}-{variant_name(dict(v))}" if v else n for n, v in found])
    if "model_backend" in metafunc.fixturenames:
        names = [b for b in _selected(metafunc.config) if b in MODEL_BACKENDS]
        metafunc.parametrize("model_backend", names, ids=names)


def examples() -> int:
    return max(1, settings().max_examples // EXAMPLE_DIVISOR)


@functools.cache
def setup(name: str, overrides: tuple):
    """``(task, config, symmetries, params, state, eval batches)`` in float64."""
    task = get_task(name)
    config = resolve(task, "tiny", dict(overrides))
    return (task, config, task.symmetries(config), task.init_params(config, "float64"),
            task.init_state(config, "float64"), list(task.eval_batches(config)))


@functools.cache
def model(name: str, overrides: tuple, backend: str):
    task, config = setup(name, overrides)[:2]
    return task.build_model(backend, config)


def assert_small(err: float, what: str, context: str):
    __tracebackhide__ = True
    rtol, atol = tolerance("task_model", "float64")
    if not err <= atol + rtol:
        raise AssertionError(f"{context}: {what} = {err:.3g} > {atol + rtol:.3g} (float64)")


def predict_case(case, backend, index):
    name, overrides = case
    task, config, sym, params, state, batches = setup(name, overrides)
    predict = predictor(model(name, overrides, backend), backend, params, state)
    return sym, predict, batches[index % len(batches)]


def test_declaration_covers_every_prediction(case, model_backend):
    """Every predict output is declared invariant, set-valued or a diagnostic."""
    sym, predict, batch = predict_case(case, model_backend, 0)
    undeclared = undeclared_outputs(sym, predict(batch))
    assert not undeclared, (f"{case[0]}: predict outputs {sorted(undeclared)} are not in "
                            "Task.symmetries(config) (invariant, equivariant or diagnostics)")


@given(index=st.integers(0, 2**16), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=examples())
def test_permuting_elements(case, model_backend, index, seed):
    sym, predict, batch = predict_case(case, model_backend, index)
    for axis in sym.sets:
        err = permutation_error(predict, batch, sym, axis, np.random.default_rng(seed))
        assert_small(err, f"permutation_error over {axis.name}",
                     f"{case} [{model_backend}] eval batch {index}, seed {seed}")


@given(index=st.integers(0, 2**16), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=examples())
def test_padding(case, model_backend, index, seed):
    sym, predict, batch = predict_case(case, model_backend, index)
    padded = [axis for axis in sym.sets if axis.mask is not None or axis.resizable]
    if not padded:
        pytest.skip(f"{case[0]}: no set axis has a mask or room for new slots")
    for axis in padded:
        err = padding_error(predict, batch, sym, axis, np.random.default_rng(seed))
        assert_small(err, f"padding_error over {axis.name}",
                     f"{case} [{model_backend}] eval batch {index}, seed {seed}")


@given(index=st.integers(0, 2**16), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=examples())
def test_batch_independence_in_evaluation(case, model_backend, index, seed):
    sym, predict, batch = predict_case(case, model_backend, index)
    if sym.per_set_noise:
        pytest.skip(f"{case}: evaluation draws noise per set of the batch")
    err = companion_error(predict, batch, sym, np.random.default_rng(seed))
    assert_small(err, "companion_error", f"{case} [{model_backend}] eval batch {index}, "
                 f"seed {seed}")


@given(step=st.integers(0, 1000), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=examples())
def test_lemma1_gradients(case, model_backend, step, seed):
    name, overrides = case
    task, config, sym, params, state, _ = setup(name, overrides)
    if not sym.lemma1:
        pytest.skip(f"{name} declares no Lemma 1: {sym.notes}")
    grads = gradient(model(name, overrides, model_backend), model_backend, params, state)
    batch = task.train_batch(config, step)
    for axis in sym.sets:
        err = gradient_permutation_error(grads, batch, sym, axis, np.random.default_rng(seed))
        assert_small(err, f"gradient_permutation_error over {axis.name}",
                     f"{case} [{model_backend}] training step {step}, seed {seed}")


@given(step=st.integers(0, 1000))
@settings(max_examples=examples())
def test_backends_agree_on_random_batches(case, step):
    """``setwise check``'s comparison on the training batch of a random step."""
    name, overrides = case
    task, config, _, params, state, _ = setup(name, overrides)
    models = {b: model(name, overrides, b) for b in MODEL_BACKENDS}
    row = backend_disagreement(name, models, params, state, task.train_batch(config, step))
    assert row.ok, f"{case} training step {step}: " + "; ".join(row.failures)
