"""Property 2 (values): every backend agrees with the float64 reference, in float64 and float32,
on every aggregator, EA's energy and diagnostics, the creators and the losses."""

import numpy as np
import pytest
from hypothesis import given

from conformance.assertions import assert_close
from conformance.cases import AGGREGATORS, aggregator_case
from conformance.strategies import seeds, set_batches

DTYPES = ("float64", "float32")


def run(B, op, *args, **kwargs):
    args = [B.convert_params(a) if isinstance(a, dict) else
            (B.asarray(a) if isinstance(a, np.ndarray) else a) for a in args]
    kwargs = {k: B.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = getattr(B, op)(*args, **kwargs)
    if isinstance(out, tuple):
        return tuple(_np(B, o) for o in out)
    return B.to_numpy(out)


def _np(B, o):
    return type(o)(*(B.to_numpy(v) for v in o)) if isinstance(o, tuple) else B.to_numpy(o)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", AGGREGATORS)
@given(batch=set_batches())
def test_aggregators_match_reference(backend, ref, name, dtype, batch):
    args, kwargs = aggregator_case(ref, name, batch.dim, dtype)
    x, mask = batch.dense(dtype)
    want = run(ref, name, *[ref.convert_params(a, "float64") for a in args],
               x.astype("float64"), mask, **kwargs)
    got = run(backend, name, *args, x, mask, **kwargs)
    assert got.dtype == np.dtype(dtype), f"{name} returned {got.dtype} for {dtype} input"
    assert_close(got, want, "value", dtype, name, str(batch))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scaled", [True, False])
@given(batch=set_batches(), seed=seeds)
def test_ea_energy_and_diagnostics_match_reference(backend, ref, dtype, scaled, batch, seed):
    params = ref.init_equilibrium_aggregation(seed, batch.dim, 3, hidden=(8, 6, 4), dtype=dtype)
    p64 = ref.convert_params(params, "float64")
    x, mask = batch.dense(dtype)
    y = np.random.default_rng(seed).normal(size=(batch.num_sets, 3)).astype(dtype)
    for op in ("energy", "energy_grad_y"):
        want = run(ref, op, p64, x.astype("float64"), y.astype("float64"), mask, scaled=scaled)
        got = run(backend, op, params, x, y, mask, scaled=scaled)
        assert_close(got, want, "value", dtype, "equilibrium_aggregation", f"{op} {batch}")
    kw = dict(num_steps=5, scaled=scaled, return_info=True)
    y_want, info_want = run(ref, "equilibrium_aggregation", p64, x.astype("float64"), mask, **kw)
    y_got, info_got = run(backend, "equilibrium_aggregation", params, x, mask, **kw)
    assert_close(y_got, y_want, "value", dtype, "equilibrium_aggregation", str(batch))
    for field in ("aux_loss", "grad_max_norm"):
        assert_close(getattr(info_got, field), getattr(info_want, field), "value", dtype,
                     "equilibrium_aggregation", f"info.{field} {batch}")
    if dtype == "float64":  # float32 may flip a gtol comparison that sits on the threshold
        np.testing.assert_array_equal(info_got.active_steps, info_want.active_steps)


@pytest.mark.parametrize("potential", ["quadratic", "absolute", "hinge", "linear", "attention",
                                       "power_sum"])
@given(batch=set_batches(min_size=1), seed=seeds)
def test_named_potentials_match_reference(backend, ref, potential, batch, seed):
    out_dim = {"attention": batch.dim + 1, "power_sum": 2 * batch.dim}.get(potential, batch.dim)
    params = ref.init_potential(seed, batch.dim, out_dim, potential=potential, dtype="float64")
    x, _, _ = batch.segments()
    y = np.random.default_rng(seed).normal(size=(len(x), out_dim))
    n = np.random.default_rng(seed).integers(1, 5, len(x)).astype("float64")
    for op in ("potential_value", "potential_grad_y"):
        want = run(ref, op, params, x, y, n, potential=potential)
        got = run(backend, op, params, x, y, n, potential=potential)
        assert_close(got, want, "value", "float64", op, f"{potential} {batch}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("creator", ["top_n", "first_n", "mlp"])
@given(seed=seeds)
def test_creators_match_reference(backend, ref, creator, dtype, seed):
    rng = np.random.default_rng(seed)
    params = ref.init_creation(creator, seed, 5, 3, 8, dtype=dtype)
    z = rng.normal(size=(4, 5)).astype(dtype)
    n = rng.integers(0, 9, 4)
    max_n = int(rng.integers(8, 11))  # beyond the 8 reference points: zero padding
    x_want, m_want = run(ref, "create_set", creator, ref.convert_params(params, "float64"),
                         z.astype("float64"), n, max_n=max_n)
    x_got, m_got = run(backend, "create_set", creator, params, z, n, max_n=max_n)
    assert x_got.shape == (4, max_n, 3)
    np.testing.assert_array_equal(m_got, m_want)
    assert_close(x_got, x_want, "value", dtype, "create_set", f"{creator} seed={seed}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["chamfer_loss", "hungarian_loss", "sinkhorn_loss"])
@given(a=set_batches(min_sets=2, max_sets=2, dims=(2, 3)), seed=seeds)
def test_losses_match_reference(backend, ref, loss, dtype, a, seed):
    x, xm = a.dense(dtype)
    rng = np.random.default_rng(seed)
    y = rng.uniform(-2, 2, x.shape).astype(dtype)
    ym = rng.random(xm.shape) < 0.7
    kw = {"epsilon": 0.5, "num_iters": 50} if loss == "sinkhorn_loss" else {}
    want = run(ref, loss, x.astype("float64"), y.astype("float64"), xm, ym, **kw)
    got = run(backend, loss, x, y, xm, ym, **kw)
    assert_close(got, want, "value", dtype, loss, str(a))
