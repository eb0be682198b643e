"""Unit tests of the reference that the conformance properties do not already cover."""

import doctest

import numpy as np
import pytest

import setwise.reference as R
from setwise.reference import creation, losses, nn, pooling, potentials, segments, top_n


@pytest.mark.parametrize("module", [segments, pooling, potentials, creation, losses, top_n,
                                    R.api])
def test_docstring_examples(module):
    failed, _ = doctest.testmod(module, extraglobs={"np": np})
    assert failed == 0


def test_dense_segment_round_trip():
    rng = np.random.default_rng(0)
    index = rng.integers(0, 4, 11)
    x = rng.normal(size=(11, 3))
    dense, mask = R.to_dense(x, index, 5)
    assert mask.sum(1).tolist() == np.bincount(index, minlength=5).tolist()
    back, back_index, num_sets = R.to_segments(dense, mask)
    order = np.argsort(index, kind="stable")
    np.testing.assert_array_equal(back, x[order])
    np.testing.assert_array_equal(back_index, index[order])
    assert num_sets == 5


def test_inverse_softplus_and_logit_are_true_inverses():
    a = np.array([1e-4, 0.125, 1.0, 50.0])
    np.testing.assert_allclose(nn.softplus(nn.inverse_softplus(a)), a, rtol=1e-12)
    mu = np.array([0.1, 0.9, 0.999])
    np.testing.assert_allclose(nn.sigmoid(nn.logit(mu)), mu, rtol=1e-12)


def test_ea_starts_at_the_requested_step_size_and_momentum():
    p = R.init_equilibrium_aggregation(0, 2, 2, step_size=0.125, momentum=0.9, dtype="float64")
    assert np.isclose(nn.softplus(p["step_size_raw"]), 0.125)
    assert np.isclose(nn.sigmoid(p["momentum_raw"]), 0.9)
    assert np.isclose(nn.softplus(p["reg_weight_raw"]), np.log(2))


def test_ea_follows_listing_2_by_hand():
    """Two Nesterov steps on F = (x - y)^2, unscaled, written out by hand."""
    p = R.init_equilibrium_aggregation(0, 1, 1, potential="quadratic", step_size=0.1,
                                       momentum=0.5, dtype="float64")
    x = np.array([[[1.0], [3.0]]])
    y, info = R.equilibrium_aggregation(p, x, potential="quadratic", num_steps=2, scaled=False,
                                        gtol=0.0, return_info=True)
    grad = lambda y: 2 * ((y - 1) + (y - 3))  # noqa: E731
    g1 = grad(0.0)
    v1 = -0.1 * g1
    y1 = v1
    g2 = grad(y1 + 0.5 * v1)
    v2 = 0.5 * v1 - 0.1 * g2
    assert np.isclose(y[0, 0], y1 + v2)
    assert np.isclose(info.aux_loss[0], (g1**2 + g2**2) / 2)
    assert np.isclose(info.grad_max_norm[0], abs(g2))


def test_gtol_freezes_converged_sets():
    p = R.init_equilibrium_aggregation(0, 1, 1, potential="quadratic", step_size=0.05,
                                       momentum=0.5, dtype="float64")
    x = np.array([[[0.0], [0.0]], [[1.0], [3.0]]])
    _, info = R.equilibrium_aggregation(p, x, potential="quadratic", num_steps=50, gtol=1e-3,
                                        return_info=True)
    assert info.active_steps[0] == 0  # y0 = 0 is already the minimiser
    assert 0 < info.active_steps[1] < 50


def test_clip_bounds_the_aggregate():
    p = R.init_equilibrium_aggregation(0, 1, 1, potential="linear", dtype="float64")
    y = R.equilibrium_aggregation(p, np.full((1, 4, 1), 5.0), potential="linear", num_steps=50,
                                  clip=2.0)
    assert y.max() <= 2.0


def test_top_n_selects_the_largest_cosines_with_lower_index_on_ties():
    scores = np.array([[0.5, 0.9, 0.5, 0.1]])
    assert top_n.top_n_select(scores, 3).tolist() == [[1, 0, 2]]


def test_top_n_softmax_runs_over_the_selected_points_only():
    p = R.init_top_n_creation(0, 2, 1, 4, dtype="float64")
    p.update(w1=np.ones((1, 1)), w2=np.zeros((1, 1)), w3=np.zeros((2, 1)), w4=np.zeros((2, 1)))
    p["w3"][0, 0] = 1.0
    p["points"] = np.ones((4, 1))
    z = np.array([[1.0, 0.0]])
    x, mask = R.top_n_creation(p, z, 2)
    # X0 = R[s] * c~ * (z W3): with R = 1 and z W3 = 1 the rows are the softmax weights
    assert np.isclose(x[0, :, 0].sum(), 1.0) and mask.tolist() == [[True, True]]


def test_iid_creation_needs_an_rng():
    p = R.init_iid_creation(0, 3, 2)
    with pytest.raises(ValueError, match="'rng'"):
        R.iid_creation(p, np.ones((2, 3), np.float32), 4)
    x, mask = R.iid_creation(p, np.ones((2, 3), np.float32), np.array([1, 4]), rng=0)
    assert x.shape == (2, 4, 2) and mask.sum() == 5


def test_pna_matches_its_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 4, 2))
    params = {"weight": np.eye(24)[:, :24], "bias": np.zeros(24)}
    out = R.pna_pool(params, x, delta=1.5)[0]
    v = x[0]
    aggs = np.concatenate([v.mean(0), v.max(0), v.min(0), np.sqrt(v.var(0) + 1e-5)])
    amp = np.log(5) / 1.5
    np.testing.assert_allclose(out, np.concatenate([aggs, aggs * amp, aggs / amp]), rtol=1e-12)


def test_hungarian_matching_is_a_partial_permutation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1, 4, 2)), rng.normal(size=(1, 4, 2))
    ym = np.array([[True, True, False, True]])
    match = losses.hungarian_matching(x, y, None, ym)
    got = match[match >= 0]
    assert len(got) == 3 and len(set(got.tolist())) == 3 and 2 not in got
