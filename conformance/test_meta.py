"""The measuring helpers catch what they claim to catch (e3nn's habit: test the checker).

Each helper must report ~0 for a correct set function and a large error for a function broken
in exactly the way it looks for: order dependence, padding dependence, batch dependence.
"""

import pytest

from conformance.assertions import (
    assert_invariant,
    companion_error,
    padding_error,
    permutation_error,
)
from conformance.strategies import SetBatch

BATCH = SetBatch(sizes=(3, 5, 1, 4), dim=2, seed=7, padding=2)


def correct_sum(x, mask):
    return (x * mask[..., None]).sum(1)


def first_element(x, mask):
    """Depends on element order."""
    return x[:, 0]


def sum_ignoring_mask(x, mask):
    """Depends on padding."""
    return x.sum(1)


def minus_batch_mean(x, mask):
    """Depends on batch companions (like a regulariser averaged over the batch)."""
    s = correct_sum(x, mask)
    return s - s.mean(0)


@pytest.mark.parametrize("measure", [permutation_error, padding_error, companion_error])
def test_correct_function_passes(measure, rng):
    x, mask = BATCH.dense()
    assert measure(correct_sum, x, mask, rng) < 1e-12
    assert_invariant(measure, correct_sum, x, mask, "float64", rng)


@pytest.mark.parametrize("measure, broken", [
    (permutation_error, first_element),
    (padding_error, sum_ignoring_mask),
    (companion_error, minus_batch_mean),
])
def test_broken_function_is_caught(measure, broken, rng):
    x, mask = BATCH.dense()
    assert measure(broken, x, mask, rng) > 1e-2
    with pytest.raises(AssertionError, match=measure.__name__):
        assert_invariant(measure, broken, x, mask, "float64", rng)


def test_broken_ea_is_caught(ref, rng):
    """An EA whose energy averages the regulariser over the batch (PyG's choice) is caught."""
    params = ref.init_equilibrium_aggregation(0, 2, 3, hidden=(8, 8), dtype="float64")
    x, mask = BATCH.dense()

    def batch_coupled_ea(x, mask):
        y = ref.equilibrium_aggregation(params, x, mask)
        return y - 0.1 * y.mean(0)

    assert companion_error(batch_coupled_ea, x, mask, rng) > 1e-3
