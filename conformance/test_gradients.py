"""Gradients. Every analytic ``grad_y`` equals central finite differences (float64); and
(property 2) backend parameter gradients through EA agree with finite differences of the
float64 reference and with each other."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conformance.assertions import assert_close
from conformance.autodiff import finite_difference_grad, grad
from conformance.strategies import SetBatch, seeds, set_batches

STEP = 1e-6


def fd_grad_y(value, y):
    """Central differences of the per-row scalar ``value(y) -> [rows]`` w.r.t. each ``y`` column."""
    g = np.zeros_like(y)
    for j in range(y.shape[1]):
        e = np.zeros_like(y)
        e[:, j] = STEP
        g[:, j] = (value(y + e) - value(y - e)) / (2 * STEP)
    return g


@pytest.mark.parametrize("potential", ["residual", "quadratic", "absolute", "hinge", "linear",
                                       "attention", "power_sum"])
@given(batch=set_batches(min_size=1, max_size=4), seed=seeds)
def test_potential_grad_y_matches_finite_differences(ref, potential, batch, seed):
    out_dim = {"attention": batch.dim + 1, "power_sum": 2 * batch.dim,
               "residual": 3}.get(potential, batch.dim)
    params = ref.init_potential(seed, batch.dim, out_dim, potential=potential,
                                hidden=(7, 5, 4), dtype="float64")
    x, _, _ = batch.segments()
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(len(x), out_dim))
    n = rng.integers(1, 5, len(x)).astype(float)
    if potential in ("absolute", "hinge"):  # kinks: finite differences are valid away from them
        assume(np.abs(np.repeat(x, out_dim // batch.dim, 1) - y).min() > 10 * STEP)
    want = fd_grad_y(lambda v: ref.potential_value(params, x, v, n, potential=potential), y)
    got = ref.potential_grad_y(params, x, y, n, potential=potential)
    assert_close(got, want, "finite_difference", "float64", f"grad_y[{potential}]", str(batch))


@pytest.mark.parametrize("scaled", [True, False])
@given(batch=set_batches(min_size=0), seed=seeds)
def test_energy_grad_y_matches_finite_differences(ref, scaled, batch, seed):
    params = ref.init_equilibrium_aggregation(seed, batch.dim, 3, hidden=(7, 5, 4),
                                              dtype="float64")
    x, mask = batch.dense()
    y = np.random.default_rng(seed).normal(size=(batch.num_sets, 3))
    want = fd_grad_y(lambda v: ref.energy(params, x, v, mask, scaled=scaled), y)
    got = ref.energy_grad_y(params, x, y, mask, scaled=scaled)
    assert_close(got, want, "finite_difference", "float64", "energy_grad_y", str(batch))


def ea_loss(B, x, mask, target, **kw):
    """A scalar training loss through EA (with the auxiliary loss of eq. 5)."""
    xb, mb, tb = B.asarray(x), B.asarray(mask), B.asarray(target)

    def loss(params):
        y, info = B.equilibrium_aggregation(params, xb, mb, return_info=True, **kw)
        return ((y - tb) ** 2).sum() + 0.1 * info.aux_loss.sum()

    return loss


# One fixed shape (with an empty set) and drawn values: JAX compiles each gradient once.
SMALL = st.builds(SetBatch, sizes=st.just((3, 0, 4)), dim=st.just(2), seed=seeds,
                  padding=st.just(1))


@given(batch=SMALL, seed=seeds)
def test_backend_parameter_gradients_match_reference(other_backend, ref, batch, seed):
    """Unrolled gradients of every parameter, against finite differences of the reference."""
    params = ref.init_equilibrium_aggregation(seed, batch.dim, 2, hidden=(4, 3), dtype="float64")
    x, mask = batch.dense()
    target = np.random.default_rng(seed).normal(size=(batch.num_sets, 2))
    kw = dict(num_steps=3, gtol=0.0)
    want = finite_difference_grad(lambda p: ea_loss(ref, x, mask, target, **kw)(p), params)
    got = grad(other_backend, ea_loss(other_backend, x, mask, target, **kw), params)
    for k in params:
        assert_close(got[k], want[k], "grad", "float64", f"d loss / d {k}", str(batch))


@given(batch=SMALL, seed=seeds)
def test_backend_gradients_agree_with_each_other(ref, batch, seed):
    """For the same parameters and inputs, torch and JAX gradients agree (float64 and float32)."""
    from setwise.reference import available_backends, get_backend

    if not {"torch", "jax"} <= set(available_backends()):
        pytest.skip("needs both the torch and the jax backend installed")
    torch_b, jax_b = get_backend("torch"), get_backend("jax")
    x, mask = batch.dense()
    target = np.random.default_rng(seed).normal(size=(batch.num_sets, 2))
    for dtype in ("float64", "float32"):
        params = ref.init_equilibrium_aggregation(seed, batch.dim, 2, hidden=(4, 3), dtype=dtype)
        xs, ts = x.astype(dtype), target.astype(dtype)
        kw = dict(num_steps=3, gtol=0.0)
        gt = grad(torch_b, ea_loss(torch_b, xs, mask, ts, **kw), params)
        gj = grad(jax_b, ea_loss(jax_b, xs, mask, ts, **kw), params)
        for k in params:
            assert_close(gj[k], gt[k], "grad", dtype, f"jax vs torch d loss / d {k}",
                         str(batch))
