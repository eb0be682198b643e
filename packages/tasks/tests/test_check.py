"""``setwise check`` itself: it passes the median task and fails models that differ."""

import io

import numpy as np

from setwise.tasks.check import Row, check_variant, compare, error, run
from setwise.tasks.median.task import MedianTask


class Scaled:
    """A model whose loss is ``factor`` times the wrapped one's (a small, real difference)."""

    def __init__(self, model, factor):
        self.model, self.factor = model, factor

    def loss(self, params, state, batch, rng, train):
        loss, logs, state = self.model.loss(params, state, batch, rng, train)
        return loss * self.factor, logs, state


class Skewed(MedianTask):
    """The median task with a JAX model 1e-6 off: a float32-sized disagreement."""

    def build_model(self, backend, config):
        model = super().build_model(backend, config)
        return Scaled(model, 1 + 1e-6) if backend == "jax" else model


def test_the_check_passes_median_and_fails_a_model_one_part_in_a_million_off():
    good = check_variant(MedianTask(), {"aggregator": "sum"})
    assert good.ok and good.grad[1] < 1e-12
    bad = check_variant(Skewed(), {"aggregator": "sum"})
    assert not bad.ok
    assert any(f.startswith("loss:") for f in bad.failures)
    assert any(f.startswith("grad encoder_0_w") for f in bad.failures)
    assert 5e-7 < bad.grad[1] < 2e-6


def test_missing_gradient_names_and_logs_are_failures():
    from setwise.tasks.check import Result

    params = {"a_w": np.ones(2), "b_w": np.ones(3)}
    full = Result(1.0, {"mse": 1.0}, {k: np.zeros_like(v) for k, v in params.items()}, {})
    short = Result(1.0, {}, {"a_w": np.zeros(2)}, {})
    row = compare("t", "v", params, {}, full, short)
    assert not row.ok
    assert any("jax gradient names differ" in f and "b_w" in f for f in row.failures)
    assert any("logged names differ" in f for f in row.failures)


def test_error_is_relative_to_the_arrays_scale():
    assert error([1.0, 2e-20], [1.0, 0.0]) == (2e-20, 2e-20)
    assert error(np.zeros(3), np.zeros(3)) == (0.0, 0.0)
    assert error(np.zeros(2), np.zeros(3))[0] == float("inf")


def test_run_prints_the_table_and_exits_1_on_a_failure(monkeypatch):
    import setwise.tasks.check as check

    rows = {"good": [Row("good", "tiny")], "bad": [Row("bad", "tiny", failures=["loss: 1 vs 2"])]}
    monkeypatch.setattr(check, "get_task", lambda name: name)
    monkeypatch.setattr(check, "check_task", lambda task: rows[task])
    out = io.StringIO()
    assert run(["good"], out=out, threads=None) == 0
    assert "| good | tiny |" in out.getvalue()
    out = io.StringIO()
    assert run(["good", "bad"], out=out, threads=None) == 1
    assert "FAIL bad [tiny]: loss: 1 vs 2" in out.getvalue()
