"""Gradients: gradcheck in float64, the three EA gradient modes, and graph-free inference."""

import pytest
import torch
from torch.autograd import gradcheck

from setwise import torch_backend as B
from setwise.torch_backend import equilibrium as ea_module

T = torch.tensor
# a potential whose inner loop converges to ~1e-12 in 150 steps (for implicit gradients)
CONVERGENT = dict(hidden=(5, 4), reg_weight=1.0, step_size=0.05, momentum=0.5)


def _batch(rng, dim=2):
    x = T(rng.standard_normal((3, 4, dim)))
    mask = T(rng.random((3, 4)) > 0.3)
    mask[:, 0] = True
    mask[1] = False
    return x, mask


def _ea_fn(params, mask, **solve):
    names = sorted(params)

    def f(x, *values):
        return B.equilibrium_aggregation(dict(zip(names, values)), x, mask, **solve)

    return f, [params[k].clone().requires_grad_() for k in names], names


def test_gradcheck_unrolled(rng):
    x, mask = _batch(rng)
    params = B.init_equilibrium_aggregation(0, 2, 3, hidden=(5, 4), dtype="float64")
    f, values, _ = _ea_fn(params, mask, num_steps=3, gtol=0)
    assert gradcheck(f, (x.clone().requires_grad_(), *values))


def test_gradcheck_implicit(rng):
    x, mask = _batch(rng)
    params = B.init_equilibrium_aggregation(0, 2, 3, dtype="float64", **CONVERGENT)
    f, values, _ = _ea_fn(params, mask, num_steps=150, gtol=0, grad_mode="implicit")
    assert gradcheck(f, (x.clone().requires_grad_(), *values), atol=1e-6, fast_mode=True)


def test_gradcheck_attention_potential_implicit(rng):
    x, mask = _batch(rng)
    params = B.init_equilibrium_aggregation(0, 2, 3, potential="attention", reg_weight=0.5,
                                            dtype="float64", step_size=0.1, momentum=0.5)
    f, values, _ = _ea_fn(params, mask, potential="attention", num_steps=200, gtol=0,
                          grad_mode="implicit")
    assert gradcheck(f, (x.clone().requires_grad_(), *values), atol=1e-6)


def _nesterov(params, x, mask, y, v, steps, gtol):
    alpha = torch.nn.functional.softplus(params["step_size_raw"])
    mu = torch.sigmoid(params["momentum_raw"])
    for _ in range(steps):
        g = B.energy_grad_y(params, x, y + mu * v, mask)
        active = (g.abs().amax(-1) >= gtol).to(g.dtype)[:, None]
        v = mu * v - alpha * g
        y = y + active * v
    return y, v


@pytest.mark.parametrize("keep", [1, 3])
def test_truncated_is_the_gradient_of_the_last_steps(rng, keep):
    x, mask = _batch(rng)
    params = B.init_equilibrium_aggregation(0, 2, 3, hidden=(5, 4), dtype="float64")
    f, values, names = _ea_fn(params, mask, num_steps=4, gtol=0, grad_mode="truncated",
                              truncate_steps=keep)
    xg = x.clone().requires_grad_()
    got = torch.autograd.grad(f(xg, *values).square().sum(), [xg, *values])

    p = dict(zip(names, values))
    with torch.no_grad():
        zero = x.new_zeros(3, 3)
        y0, v0 = _nesterov(p, x, mask, zero, zero, 4 - keep, 0)

    def last_steps(xx, *vals):
        return _nesterov(dict(zip(names, vals)), xx, mask, y0, v0, keep, 0)[0]

    want = torch.autograd.grad(last_steps(xg, *values).square().sum(), [xg, *values],
                               allow_unused=True)
    for name, a, b in zip(["x", *names], got, want):
        torch.testing.assert_close(a, b if b is not None else torch.zeros_like(a), msg=name)
    assert gradcheck(last_steps, (xg, *values), fast_mode=True)


def test_truncated_through_every_step_is_unrolled(rng):
    x, mask = _batch(rng)
    params = B.init_equilibrium_aggregation(0, 2, 3, hidden=(5, 4), dtype="float64")
    f1, values, _ = _ea_fn(params, mask, num_steps=3)
    f2, _, _ = _ea_fn(params, mask, num_steps=3, grad_mode="truncated", truncate_steps=3)
    g1 = torch.autograd.grad(f1(x, *values).sum(), values)
    g2 = torch.autograd.grad(f2(x, *values).sum(), values)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dense_max_dim", [16, 0])  # 0: batched conjugate gradients
def test_implicit_agrees_with_unrolled_when_converged(rng, monkeypatch, dense_max_dim):
    monkeypatch.setattr(ea_module, "DENSE_HESSIAN_MAX_DIM", dense_max_dim)
    x, mask = _batch(rng)
    params = B.init_equilibrium_aggregation(0, 2, 3, dtype="float64", **CONVERGENT)
    grads = {}
    for mode in ("unrolled", "implicit"):
        f, values, names = _ea_fn(params, mask, num_steps=150, gtol=0, grad_mode=mode)
        xg = x.clone().requires_grad_()
        out = f(xg, *values)
        grads[mode] = torch.autograd.grad((out * torch.arange(3.0)).sum(), [xg, *values],
                                          allow_unused=True)
    for name, a, b in zip(["x", *names], grads["unrolled"], grads["implicit"]):
        if name in ("step_size_raw", "momentum_raw"):
            assert b is None  # the fixed point does not depend on them
            continue
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-8, msg=name)


def test_inference_builds_no_graph(rng):
    x, mask = _batch(rng)
    params = {k: v.requires_grad_() for k, v in
              B.init_equilibrium_aggregation(0, 2, 3, hidden=(5, 4), dtype="float64").items()}

    def potential(p, xe, ye):
        return B.potential_value(p, xe, ye)

    for kw in (dict(), dict(grad_mode="implicit"), dict(potential=potential, out_dim=3)):
        with torch.no_grad():
            assert B.equilibrium_aggregation(params, x, mask, **kw).grad_fn is None
        with torch.inference_mode():
            y = B.equilibrium_aggregation(params, x, mask, **kw)
        assert y.grad_fn is None
        torch.testing.assert_close(y, B.equilibrium_aggregation(params, x, mask, **kw).detach())


def test_callable_potential_unrolled_gradient_matches_analytic(rng):
    x, mask = _batch(rng)
    params = B.init_equilibrium_aggregation(0, 2, 3, hidden=(5, 4), dtype="float64")

    def potential(p, xe, ye):
        return B.potential_value(p, xe, ye)

    f1, values, _ = _ea_fn(params, mask, num_steps=3)
    f2, _, _ = _ea_fn(params, mask, num_steps=3, potential=potential, out_dim=3)
    g1 = torch.autograd.grad(f1(x, *values).sum(), values)
    g2 = torch.autograd.grad(f2(x, *values).sum(), values)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_gradcheck_losses(rng):
    x = T(rng.standard_normal((2, 4, 2)), requires_grad=True)
    y = T(rng.standard_normal((2, 5, 2)), requires_grad=True)
    xm = T([[True, True, True, False], [True, True, False, False]])
    ym = T([[True, True, True, True, False], [True, True, True, False, False]])
    assert gradcheck(lambda a, b: B.chamfer_loss(a, b, xm, ym), (x, y))
    assert gradcheck(lambda a, b: B.hungarian_loss(a, b, xm, ym), (x, y))
    assert gradcheck(lambda a, b: B.sinkhorn_loss(a, b, xm, ym, epsilon=0.5, num_iters=20),
                     (x, y))


def test_gradcheck_pooling_and_creation(rng):
    x = T(rng.standard_normal((3, 4, 2)), requires_grad=True)
    mask = T(rng.random((3, 4)) > 0.3)
    mask[2] = False
    pa = B.init_attention_pool(0, 2, 4, num_heads=2, dtype="float64")
    pp = B.init_pna_pool(0, 2, 3, dtype="float64")
    assert gradcheck(lambda a: B.attention_pool(pa, a, mask), (x,))
    assert gradcheck(lambda a: B.pna_pool(pp, a, mask, delta=1.2), (x,))
    params = B.init_top_n_creation(0, 3, 2, 6, dtype="float64")
    names = sorted(params)
    z = T(rng.standard_normal((2, 3)), requires_grad=True)

    def create(zz, *values):
        return B.top_n_creation(dict(zip(names, values)), zz, T([2, 4]))[0]

    values = [params[k].clone().requires_grad_() for k in names]
    assert gradcheck(create, (z, *values), fast_mode=True)
    grads = torch.autograd.grad(create(z, *values).sum(), values)
    assert dict(zip(names, grads))["angles"].abs().sum() > 0
