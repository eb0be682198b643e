"""Property 3: EA with the closed-form potentials of Table 1, appendix B and Theorem 1 returns
the mean, median, max, sum, attention pooling and power sums (paper 1).

Each case gives the solver enough steps and a step size suited to the potential's curvature
(the scaled energy's Hessian is ``s(N) N F''``); tolerances are CLOSED_FORM_ATOL.
"""

import numpy as np
import pytest
from hypothesis import given

from conformance.assertions import assert_close
from conformance.strategies import set_batches
from conformance.tolerances import CLOSED_FORM_ATOL


def ea(B, params, x, mask, **kw):
    out = B.equilibrium_aggregation(B.convert_params(params), B.asarray(x), B.asarray(mask),
                                    gtol=0.0, **kw)
    return B.to_numpy(out)


def check(potential, got, want, batch):
    atol = CLOSED_FORM_ATOL[potential]
    err = np.abs(got - want).max(initial=0)
    assert err <= atol, f"EA[{potential}] off its closed form by {err:.3g} > {atol} ({batch})"


def present(x, mask, s):
    return x[s][mask[s]]


# (potential, closed form of one set [N, dim] -> [out], solver settings)
CASES = {
    "quadratic": (lambda v: v.mean(0), dict(step_size=0.05, momentum=0.5), 400),
    "linear": (lambda v: v.sum(0), dict(step_size=0.1, momentum=0.5), 400),
    "absolute": (lambda v: np.median(v, 0), dict(step_size=1e-3, momentum=0.9), 3000),
    "hinge": (lambda v: v.max(0), dict(step_size=2e-3, momentum=0.5), 3000),
}


@pytest.mark.parametrize("potential", list(CASES))
@given(batch=set_batches(min_size=1, max_size=7, odd_sizes=True, low=0.05, high=1.0))
def test_table1_closed_forms(backend, ref, potential, batch):
    """Mean, sum, median (odd sizes: a unique median) and max (data > 0 = y0)."""
    closed, init, steps = CASES[potential]
    params = ref.init_equilibrium_aggregation(0, batch.dim, batch.dim, potential=potential,
                                              dtype="float64", **init)
    x, mask = batch.dense()
    got = ea(backend, params, x, mask, potential=potential, num_steps=steps)
    want = np.stack([closed(present(x, mask, s)) for s in range(batch.num_sets)])
    check(potential, got, want, batch)


@given(batch=set_batches(min_size=1, max_size=6, dims=(1, 3), low=-1.0, high=1.0))
def test_attention_potential_gives_attention_pooling(backend, ref, batch):
    """Appendix B: ``y_r`` is softmax(h.x)-weighted mean of x, ``y_s`` the mean of exp(h.x).

    The appendix writes ``y_r = (1/N) sum_i exp(h.x_i) x_i`` and normalises by ``y_s``; the
    stated potential's minimiser is the normalised (attention) average itself.
    """
    params = ref.init_equilibrium_aggregation(0, batch.dim, batch.dim + 1, potential="attention",
                                              step_size=0.02, momentum=0.9, dtype="float64")
    params["potential_query"] = np.linspace(-0.5, 0.5, batch.dim)
    x, mask = batch.dense()
    got = ea(backend, params, x, mask, potential="attention", num_steps=2000)
    want = []
    for s in range(batch.num_sets):
        v = present(x, mask, s)
        w = np.exp(v @ params["potential_query"])
        want.append(np.concatenate([(w[:, None] * v).sum(0) / w.sum(), [w.mean()]]))
    check("attention", got, np.stack(want), batch)
    pool = {"key_w": np.eye(batch.dim), "key_b": np.zeros(batch.dim),
            "value_w": np.eye(batch.dim), "value_b": np.zeros(batch.dim),
            "query": params["potential_query"][None] * np.sqrt(batch.dim)}
    pooled = backend.to_numpy(backend.attention_pool(backend.convert_params(pool),
                                                     backend.asarray(x), backend.asarray(mask)))
    check("attention", got[:, :-1], pooled, batch)


@given(batch=set_batches(min_size=1, max_size=4, dims=(1, 2), low=0.0, high=1.0))
def test_power_sum_potential_gives_power_sums(backend, ref, batch):
    """Theorem 1: ``F = sum_k (y_k / N - x^k)^2`` is minimised by ``y_k = sum_i x_i^k``."""
    degree = 3
    params = ref.init_equilibrium_aggregation(0, batch.dim, degree * batch.dim,
                                              potential="power_sum", step_size=0.5,
                                              momentum=0.5, dtype="float64")
    x, mask = batch.dense()
    got = ea(backend, params, x, mask, potential="power_sum", num_steps=600, scaled=False,
             out_dim=degree * batch.dim)
    want = np.stack([(present(x, mask, s)[:, :, None] ** np.arange(1, degree + 1)).sum(0)
                     .reshape(-1) for s in range(batch.num_sets)])
    check("power_sum", got, want, batch)


def test_scaled_and_unscaled_share_the_minimiser(backend, ref):
    """s(N) > 0 rescales the energy of a non-empty set without moving its minimiser."""
    x = np.random.default_rng(0).uniform(size=(3, 5, 2))
    mask = np.ones((3, 5), bool)
    params = ref.init_equilibrium_aggregation(0, 2, 2, potential="quadratic", step_size=0.05,
                                              momentum=0.5, dtype="float64")
    a = ea(backend, params, x, mask, potential="quadratic", num_steps=400, scaled=True)
    params["step_size_raw"] = np.log(np.expm1(0.05 / np.log2(6) * 5))
    b = ea(backend, params, x, mask, potential="quadratic", num_steps=400, scaled=False)
    assert_close(a, b, "value", "float64", "equilibrium_aggregation")
