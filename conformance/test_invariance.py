"""Property 1: every aggregator is invariant to element order, padding and batch companions,
and the dense, index and ptr input forms give the same result (DESIGN.md sections 2 and 7)."""

import numpy as np
import pytest
from hypothesis import given

from conformance.assertions import (
    assert_close,
    assert_invariant,
    companion_error,
    padding_error,
    permutation_error,
    set_function,
)
from conformance.cases import AGGREGATORS, aggregator_case
from conformance.strategies import set_batches

DTYPES = ("float64", "float32")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", AGGREGATORS)
@pytest.mark.parametrize("measure", [permutation_error, padding_error, companion_error])
@given(batch=set_batches())
def test_aggregator_invariance(backend, ref, name, measure, dtype, batch):
    args, kwargs = aggregator_case(ref, name, batch.dim, dtype)
    fn = set_function(backend, name, *args, **kwargs)
    x, mask = batch.dense(dtype)
    assert_invariant(measure, fn, x, mask, dtype, np.random.default_rng(batch.seed), str(batch))


@pytest.mark.parametrize("name", AGGREGATORS)
@given(batch=set_batches())
def test_dense_index_ptr_agree(backend, ref, name, batch):
    args, kwargs = aggregator_case(ref, name, batch.dim)
    op = getattr(backend, name)
    args = [backend.convert_params(a) for a in args]
    x, mask = batch.dense()
    flat, index, ptr = batch.segments()
    dense = op(*args, backend.asarray(x), backend.asarray(mask), **kwargs)
    by_index = op(*args, backend.asarray(flat), index=backend.asarray(index),
                  num_sets=batch.num_sets, **kwargs)
    by_ptr = op(*args, backend.asarray(flat), ptr=backend.asarray(ptr), **kwargs)
    want = backend.to_numpy(dense)
    assert_close(backend.to_numpy(by_index), want, "invariance", "float64", name, str(batch))
    assert_close(backend.to_numpy(by_ptr), want, "invariance", "float64", name, str(batch))


@pytest.mark.parametrize("name", AGGREGATORS)
def test_empty_sets_are_finite(backend, ref, name):
    args, kwargs = aggregator_case(ref, name, 2)
    args = [backend.convert_params(a) for a in args]
    x = np.zeros((3, 2, 2))
    mask = np.zeros((3, 2), bool)
    out = backend.to_numpy(getattr(backend, name)(*args, backend.asarray(x),
                                                  backend.asarray(mask), **kwargs))
    assert np.isfinite(out).all() and out.shape[0] == 3
    none = getattr(backend, name)(*args, backend.asarray(np.zeros((0, 2))),
                                  index=backend.asarray(np.zeros(0, np.int64)), num_sets=2,
                                  **kwargs)
    assert np.isfinite(backend.to_numpy(none)).all()


@pytest.mark.parametrize("potential", ["quadratic", "absolute", "hinge", "linear", "attention",
                                       "power_sum"])
def test_named_potentials_are_finite_on_empty_sets(backend, ref, potential):
    """An empty set beside a non-empty one, dense and padded: y = 0, never NaN."""
    out_dim = {"attention": 3, "power_sum": 4}.get(potential, 2)
    params = ref.init_equilibrium_aggregation(0, 2, out_dim, potential=potential,
                                              dtype="float64")
    x = np.ones((2, 3, 2))
    mask = np.array([[True, True, False], [False, False, False]])
    y = backend.to_numpy(backend.equilibrium_aggregation(
        backend.convert_params(params), backend.asarray(x), backend.asarray(mask),
        potential=potential, out_dim=out_dim if potential == "power_sum" else None))
    assert np.isfinite(y).all() and not y[1].any()
