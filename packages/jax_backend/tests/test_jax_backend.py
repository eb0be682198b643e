"""Tests of setwise.jax_backend against the float64 NumPy reference.

Compilation dominates the runtime on CPU, so every test reuses the same few small shapes.
"""

from __future__ import annotations

import functools
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from jax.test_util import check_grads  # noqa: E402

import setwise.reference as R  # noqa: E402
from setwise import jax_backend as B  # noqa: E402

TOL = {"float64": dict(rtol=1e-9, atol=1e-10), "float32": dict(rtol=2e-4, atol=2e-5)}
POT_OUT = {"residual": 3, "quadratic": 3, "absolute": 3, "hinge": 3, "linear": 3,
           "attention": 4, "power_sum": 6}


def close(actual, expected, dtype="float64"):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               **TOL[dtype])


@pytest.fixture(scope="module")
def batch():
    """3 sets of up to 5 elements in 3 dims, with padding; the same batch as segments/ptr."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 3))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    xs, index, num_sets = R.to_segments(x, mask)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(index, minlength=num_sets))])
    return dict(x=x, mask=mask, xs=xs, index=index, ptr=ptr, num_sets=num_sets)


def ea_params(potential="residual", seed=1, **kw):
    kw.setdefault("hidden", (8, 6, 4))
    return R.init_equilibrium_aggregation(seed, 3, POT_OUT[potential], potential=potential,
                                          dtype="float64", **kw)


# --- interface --------------------------------------------------------------------------------

def test_public_api_has_reference_signatures():
    for name in R.PUBLIC_API:
        assert inspect.signature(getattr(B, name)) == inspect.signature(getattr(R, name)), name
    assert B.EAInfo is R.EAInfo


def test_init_values_are_the_references():
    ref = R.init_equilibrium_aggregation(3, 4, 5, hidden=(6, 7))
    ours = B.init_equilibrium_aggregation(3, 4, 5, hidden=(6, 7))
    assert ref.keys() == ours.keys()
    for k in ref:
        assert isinstance(ours[k], jax.Array)
        np.testing.assert_array_equal(np.asarray(ours[k]), ref[k])


# --- equilibrium aggregation: values ------------------------------------------------------------

@pytest.mark.parametrize("potential", list(POT_OUT))
def test_ea_matches_reference_float64(batch, potential):
    p = ea_params(potential)
    out_dim = POT_OUT[potential] if potential == "power_sum" else None
    kw = dict(potential=potential, num_steps=6, out_dim=out_dim, return_info=True)
    y_ref, info_ref = R.equilibrium_aggregation(p, batch["x"], batch["mask"], **kw)
    y, info = B.equilibrium_aggregation(B.convert_params(p), B.asarray(batch["x"]),
                                        B.asarray(batch["mask"]), **kw)
    close(y, y_ref)
    for got, want in zip(info, info_ref):
        close(got, want)
    y_seg = B.equilibrium_aggregation(B.convert_params(p), batch["xs"], index=batch["index"],
                                      num_sets=batch["num_sets"], **kw)[0]
    close(y_seg, y_ref)


def test_ea_forms_dtypes_and_empty_sets(batch):
    p = ea_params()
    y_ref = R.equilibrium_aggregation(p, batch["x"], batch["mask"])
    y_ptr = B.equilibrium_aggregation(B.convert_params(p), batch["xs"], ptr=batch["ptr"])
    close(y_ptr, y_ref)
    y32 = B.equilibrium_aggregation(B.convert_params(p, "float32"),
                                    B.asarray(batch["x"], "float32"), batch["mask"])
    assert y32.dtype == jnp.float32
    close(y32, y_ref, "float32")
    # an empty trailing set (segments) and an empty dense set give y = 0
    y_seg = B.equilibrium_aggregation(B.convert_params(p), batch["xs"], index=batch["index"],
                                      num_sets=4)
    np.testing.assert_array_equal(np.asarray(y_seg[3]), 0)
    yb = B.equilibrium_aggregation(B.convert_params(p, "float32"),
                                   B.asarray(batch["x"], "bfloat16"), batch["mask"])
    assert yb.dtype == jnp.bfloat16 and bool(jnp.isfinite(yb).all())


def test_power_sum_empty_dense_set_is_finite(batch):
    p = ea_params("power_sum")
    mask = batch["mask"].copy()
    mask[2] = False
    y = B.equilibrium_aggregation(B.convert_params(p), batch["x"], mask, potential="power_sum",
                                  out_dim=6, num_steps=6)
    np.testing.assert_array_equal(np.asarray(y[2]), 0)
    close(y[:2], R.equilibrium_aggregation(p, batch["x"][:2], batch["mask"][:2],
                                           potential="power_sum", out_dim=6, num_steps=6))


def test_energy_grad_is_the_gradient_of_energy(batch):
    p = ea_params()
    y = np.random.default_rng(1).normal(size=(3, 3))
    args = (batch["x"], y, batch["mask"])
    close(B.energy(B.convert_params(p), *args), R.energy(p, *args))
    g = B.energy_grad_y(B.convert_params(p), *args)
    close(g, R.energy_grad_y(p, *args))
    auto = jax.grad(lambda yy: B.energy(B.convert_params(p), batch["x"], yy,
                                        batch["mask"]).sum())(jnp.asarray(y))
    close(g, auto)
    close(B.energy_scale(np.arange(4.0)), R.energy_scale(np.arange(4.0)))


@pytest.mark.parametrize("potential", ["residual", "attention"])
def test_potential_value_and_grad_y(batch, potential):
    p = ea_params(potential)
    y = np.random.default_rng(2).normal(size=(len(batch["xs"]), POT_OUT[potential]))
    close(B.potential_value(B.convert_params(p), batch["xs"], y, potential=potential),
          R.potential_value(p, batch["xs"], y, potential=potential))
    close(B.potential_grad_y(B.convert_params(p), batch["xs"], y, potential=potential),
          R.potential_grad_y(p, batch["xs"], y, potential=potential))


def test_callable_potential_uses_autodiff_and_agrees(batch):
    """A user-defined potential (jax.grad inner gradient) gives the named one's results."""
    p = B.convert_params(ea_params())

    def residual(params, x, y):
        return B.potential_value(params, x, y)

    def run(potential, params):
        return B.equilibrium_aggregation(params, batch["x"], batch["mask"], potential=potential,
                                         out_dim=3, num_steps=4)

    close(run(residual, p), run("residual", p))
    g_auto = jax.jit(jax.grad(lambda q: run(residual, q).sum()))(p)
    g_named = jax.jit(jax.grad(lambda q: run("residual", q).sum()))(p)
    for k in p:
        close(g_auto[k], g_named[k])


# --- equilibrium aggregation: gradients ----------------------------------------------------------

def converged_problem():
    """A batch and parameters on which 60 steps converge to machine precision."""
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(3, 4, 2)))
    mask = jnp.asarray(rng.random((3, 4)) > 0.3).at[2].set(False)
    p = B.convert_params(R.init_equilibrium_aggregation(0, 2, 2, hidden=(8, 4), step_size=0.1,
                                                        momentum=0.5, reg_weight=1.0,
                                                        dtype="float64"))
    return p, x, mask


@pytest.mark.parametrize("grad_mode", ["unrolled", "truncated"])
def test_check_grads(batch, grad_mode):
    p = B.convert_params(ea_params(hidden=(6, 4)))
    steps = 4
    trunc = steps if grad_mode == "truncated" else None  # K = T: the exact gradient again

    def f(params, x):
        return B.equilibrium_aggregation(params, x, batch["mask"], num_steps=steps,
                                         grad_mode=grad_mode, truncate_steps=trunc)

    check_grads(jax.jit(f), (p, jnp.asarray(batch["x"])), order=1, modes=("rev",))


def test_implicit_check_grads_and_agreement_with_unrolled():
    p, x, mask = converged_problem()

    def f(mode):
        return jax.jit(lambda params, xx: B.equilibrium_aggregation(params, xx, mask, gtol=0.0,
                                                                    num_steps=60,
                                                                    grad_mode=mode))

    implicit, unrolled = f("implicit"), f("unrolled")
    info = B.equilibrium_aggregation(p, x, mask, num_steps=60, gtol=0.0, return_info=True)[1]
    assert float(info.grad_max_norm.max()) < 1e-10
    check_grads(implicit, (p, x), order=1, modes=("rev",))
    y, pull_implicit = jax.vjp(implicit, p, x)  # the VJP check_grads compiled, reused
    y_bar = jnp.asarray(np.random.default_rng(7).normal(size=y.shape))
    gi = pull_implicit(y_bar)
    gu = jax.vjp(unrolled, p, x)[1](y_bar)
    close(gi[1], gu[1])
    for k in p:
        if k in ("step_size_raw", "momentum_raw"):
            assert float(gi[0][k]) == 0.0  # implicit mode: no gradient to the solver
        else:
            close(gi[0][k], gu[0][k])


def test_truncated_is_stop_gradient_before_the_last_steps(batch):
    """K < T: the gradient of a hand-written loop (public energy_grad_y) with stop_gradient."""
    p = B.convert_params(ea_params(hidden=(6, 4)))
    x, mask, steps, keep, gtol = jnp.asarray(batch["x"]), batch["mask"], 5, 2, 1e-3

    def by_hand(params):
        alpha = jax.nn.softplus(params["step_size_raw"])
        mu = jax.nn.sigmoid(params["momentum_raw"])
        y = v = jnp.zeros((3, 3))
        for t in range(steps):
            if t == steps - keep:
                y, v = jax.lax.stop_gradient((y, v))
            g = B.energy_grad_y(params, x, y + mu * v, mask)
            v = mu * v - alpha * g
            y = y + (jnp.abs(g).max(-1) >= gtol)[:, None] * v
        return (y**2).sum()

    ours = jax.jit(jax.grad(lambda q: (B.equilibrium_aggregation(
        q, x, mask, num_steps=steps, grad_mode="truncated", truncate_steps=keep) ** 2).sum()))(p)
    want = jax.jit(jax.grad(by_hand))(p)
    for k in p:
        close(ours[k], want[k])


# --- jit, vmap -------------------------------------------------------------------------------

def test_jit_and_vmap(batch):
    p = B.convert_params(ea_params())
    ea = functools.partial(B.equilibrium_aggregation, num_steps=5, return_info=True)
    xs = jnp.stack([jnp.asarray(batch["x"]), jnp.asarray(batch["x"])[::-1]])
    masks = jnp.stack([batch["mask"], batch["mask"][::-1]])
    y_vmap, info = jax.jit(jax.vmap(lambda x, m: ea(p, x, m)))(xs, masks)
    for i in range(2):
        close(y_vmap[i], ea(p, xs[i], masks[i])[0])
    assert info.active_steps.shape == (2, 3)
    jitted = jax.jit(lambda x, idx: B.equilibrium_aggregation(p, x, index=idx, num_sets=3,
                                                              num_steps=5))
    close(jitted(batch["xs"], batch["index"]), y_vmap[0])


# --- pooling, segments, creation ------------------------------------------------------------------

def test_pooling_matches_reference(batch):
    x, mask, xs, idx, n = batch["x"], batch["mask"], batch["xs"], batch["index"], 4
    for name in ("sum_pool", "mean_pool", "max_pool"):
        close(getattr(B, name)(x, mask), getattr(R, name)(x, mask))
        close(getattr(B, name)(xs, index=idx, num_sets=n),
              getattr(R, name)(xs, index=idx, num_sets=n))
    pa = R.init_attention_pool(0, 3, 4, num_heads=2, dtype="float64")
    close(B.attention_pool(B.convert_params(pa), x, mask), R.attention_pool(pa, x, mask))
    pp = R.init_pna_pool(0, 3, 5, dtype="float64")
    close(B.pna_pool(B.convert_params(pp), xs, index=idx, num_sets=n, delta=1.3),
          R.pna_pool(pp, xs, index=idx, num_sets=n, delta=1.3))
    out32 = B.pna_pool(B.convert_params(pp, "float32"), B.asarray(x, "float32"), mask,
                       delta=np.float64(1.3))
    assert out32.dtype == jnp.float32


def test_segments_match_reference():
    rng = np.random.default_rng(3)
    d, i = rng.normal(size=(7, 2)), np.array([0, 2, 2, 0, 3, 3, 3])
    w = np.array([1, 1, 0, 1, 0, 0, 0.0])
    close(B.segment_sum(d, i, 5), R.segment_sum(d, i, 5))
    close(B.segment_max(d, i, 5, w), R.segment_max(d, i, 5, w))
    close(B.segment_min(d, i, 5), R.segment_min(d, i, 5))
    close(B.segment_softmax(d, i, 5, w), R.segment_softmax(d, i, 5, w))
    np.testing.assert_array_equal(B.index_from_ptr(np.array([0, 2, 2, 3])), [0, 0, 2])
    for got, want in zip(B.to_dense(d, i, 5), R.to_dense(d, i, 5)):
        np.testing.assert_array_equal(np.asarray(got), want)
    dense, mask = R.to_dense(d, i, 5)
    for got, want in zip(B.to_segments(dense, mask), R.to_segments(dense, mask)):
        np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("name", R.CREATORS)
def test_creation_matches_reference(name):
    z = np.random.default_rng(5).normal(size=(3, 4))
    p = R.init_creation(name, 0, 4, 2, 6, dtype="float64")
    n = np.array([2, 0, 5])
    for got, want in zip(B.create_set(name, B.convert_params(p), z, n, rng=7),
                         R.create_set(name, p, z, n, rng=7)):
        close(got, want)
    if name != "iid":  # traced sizes under jit, with a static max_n
        create = jax.jit(lambda zz, nn: B.create_set(name, B.convert_params(p), zz, nn,
                                                     max_n=6))
        x, mask = create(jnp.asarray(z), jnp.asarray(n))
        assert x.shape == (3, 6, 2)
        close(x[:, :5], R.create_set(name, p, z, n)[0])


def test_top_n_gradients_reach_angles_and_mlp():
    p = B.init_top_n_creation(0, 4, 2, 6, dtype="float64")
    z = jnp.asarray(np.random.default_rng(6).normal(size=(2, 4)))
    create = jax.jit(lambda q: B.top_n_creation(q, z, 3)[0])
    g = jax.grad(lambda q: (create(q) ** 2).sum())(p)
    assert float(jnp.abs(g["angles"]).sum()) > 0 and float(jnp.abs(g["angle_mlp_0_w"]).sum()) > 0
    check_grads(create, (p,), order=1, modes=("rev",))


# --- losses --------------------------------------------------------------------------------------

def loss_batch():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 4, 2))
    xm = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    ym = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    return x, y, xm, ym


@pytest.mark.parametrize("name", ["chamfer_loss", "hungarian_loss", "sinkhorn_loss"])
def test_losses_match_reference_and_check_grads(name):
    x, y, xm, ym = loss_batch()
    kw = {"num_iters": 30, "epsilon": 0.1} if name == "sinkhorn_loss" else {}
    ours, ref = getattr(B, name), getattr(R, name)
    close(ours(x, y, xm, ym, **kw), ref(x, y, xm, ym, **kw))
    x_nan = np.where(xm[..., None], x, np.nan)  # padding never reaches a value or gradient
    close(ours(x_nan, y, xm, ym, **kw), ref(x, y, xm, ym, **kw))
    check_grads(jax.jit(lambda a, b: ours(a, b, xm, ym, **kw)), (jnp.asarray(x), jnp.asarray(y)),
                order=1, modes=("rev",))


def test_hungarian_under_jit_and_vmap():
    x, y, xm, ym = loss_batch()
    match = jax.jit(B.hungarian_matching)(x, y, xm, ym)
    np.testing.assert_array_equal(np.asarray(match), R.hungarian_matching(x, y, xm, ym))
    per = jax.vmap(lambda a, b, am, bm: B.hungarian_loss(a[None], b[None], am[None],
                                                         bm[None])[0])(x, y, xm, ym)
    close(per, R.hungarian_loss(x, y, xm, ym))


# --- validation ----------------------------------------------------------------------------------

def test_errors_match_reference_messages(batch):
    p = B.convert_params(ea_params())
    cases = [
        lambda M: M.sum_pool(np.ones((2, 3))),  # segment x without index
        lambda M: M.mean_pool(np.ones((2, 3)), index=np.array([0, 5]), num_sets=2),
        lambda M: M.max_pool(np.where(batch["mask"][..., None], np.nan, 0.0), batch["mask"]),
        lambda M: M.top_n_creation(M.init_top_n_creation(0, 2, 2, 3), np.ones((1, 2)), 4),
        lambda M: M.chamfer_loss(np.ones((2, 3, 2), np.float32), np.ones((2, 3), np.float32)),
    ]
    for case in cases:
        with pytest.raises((ValueError, TypeError)) as ref_err:
            case(R)
        with pytest.raises(type(ref_err.value), match="^" + re.escape(str(ref_err.value))):
            case(B)
    with pytest.raises(ValueError, match="grad_mode"):
        B.equilibrium_aggregation(p, batch["x"], grad_mode="exact")
    # under jit, value checks are skipped (no concretisation error), shape checks still run
    jax.jit(lambda x: B.sum_pool(x, index=jnp.array([0, 0]), num_sets=1))(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="mask"):
        jax.jit(lambda x: B.sum_pool(x, jnp.ones((2, 2), bool)))(jnp.ones((2, 3, 3)))


# --- Equinox modules and optax -------------------------------------------------------------------

def test_equinox_round_trip_and_optax_training():
    eqx = pytest.importorskip("equinox")
    optax = pytest.importorskip("optax")
    ref = R.init_equilibrium_aggregation(0, 2, 2, hidden=(8, 8), reg_weight=0.1)
    ea = B.EquilibriumAggregation(ref, num_steps=5)
    assert ea.params.keys() == ref.keys()
    for k in ref:  # the mapping round-trips: same names, shapes, values
        np.testing.assert_array_equal(B.to_numpy(ea.params[k]), ref[k])
    x = jnp.asarray(np.random.default_rng(9).normal(size=(8, 6, 2)), jnp.float32)
    close(ea(x), R.equilibrium_aggregation(ref, np.asarray(x), num_steps=5), "float32")

    opt = optax.adam(3e-2)
    state = opt.init(eqx.filter(ea, eqx.is_array))

    @eqx.filter_jit
    def train_step(model, state):
        loss, grads = eqx.filter_value_and_grad(lambda m: ((m(x) - x.mean(1)) ** 2).mean())(model)
        updates, state = opt.update(grads, state)
        return eqx.apply_updates(model, updates), state, loss

    losses = []
    for _ in range(30):
        ea, state, loss = train_step(ea, state)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    rebuilt = B.EquilibriumAggregation({k: B.to_numpy(v) for k, v in ea.params.items()},
                                       num_steps=5)
    close(rebuilt(x), ea(x), "float32")
