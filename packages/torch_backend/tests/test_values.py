"""Values of every op against the float64 NumPy reference (float64 tight, float32 looser)."""

import numpy as np
import pytest
import torch

import setwise.reference as R
from setwise import torch_backend as B

T = torch.tensor
DTYPES = [torch.float64, torch.float32]
EA_CASES = [("residual", 6, (8, 4)), ("residual", 6, (9, 9)), ("residual", 6, (10, 10, 3)),
            ("residual", 2, (5,)), ("quadratic", 3, None), ("absolute", 3, None),
            ("hinge", 3, None), ("linear", 3, None), ("attention", 4, None),
            ("power_sum", 6, None)]


def _tensors(dtype, *arrays):
    return [T(a, dtype=dtype) if a.dtype.kind == "f" else T(a) for a in arrays]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("potential,out_dim,hidden", EA_CASES)
def test_equilibrium_aggregation_matches_reference(rng, dtype, potential, out_dim, hidden,
                                                  dense_batch, assert_close):
    empty = None if potential == "power_sum" else 1  # see the report: reference NaN
    x, mask = dense_batch(rng, empty=empty)
    kw = dict(potential=potential, hidden=hidden) if hidden else dict(potential=potential)
    params = R.init_equilibrium_aggregation(0, 3, out_dim, dtype="float64", **kw)
    solve = dict(potential=potential, num_steps=6, return_info=True,
                 out_dim=out_dim if potential == "power_sum" else None)
    y_ref, info_ref = R.equilibrium_aggregation(params, x, mask, **solve)
    xt, mt = _tensors(dtype, x, mask)
    y, info = B.equilibrium_aggregation(params, xt, mt, **solve)
    assert y.dtype == dtype
    assert_close(y_ref, y, dtype, "y")
    assert_close(info_ref.aux_loss, info.aux_loss, dtype, "aux_loss")
    assert_close(info_ref.grad_max_norm, info.grad_max_norm, dtype, "grad_max_norm")
    if dtype == torch.float64:
        np.testing.assert_array_equal(info.active_steps.numpy(), info_ref.active_steps)
    xs, index, num_sets = R.to_segments(x, mask)
    ptr = np.concatenate([[0], np.cumsum(mask.sum(1))])
    for form in (dict(index=T(index), num_sets=num_sets), dict(ptr=T(ptr))):
        assert_close(y_ref, B.equilibrium_aggregation(params, T(xs, dtype=dtype), **form,
                                                      **solve)[0], dtype, str(form))


def test_power_sum_gives_zero_for_an_empty_dense_set(rng, dense_batch):
    x, mask = dense_batch(rng, empty=1)
    params = B.init_equilibrium_aggregation(0, 3, 6, potential="power_sum", dtype="float64")
    y = B.equilibrium_aggregation(params, T(x), T(mask), potential="power_sum", out_dim=6)
    assert torch.isfinite(y).all() and (y[1] == 0).all()


def test_energy_and_potentials_match_reference(rng, dense_batch, assert_close):
    x, mask = dense_batch(rng)
    params = R.init_equilibrium_aggregation(0, 3, 6, hidden=(9, 9), dtype="float64")
    y = rng.standard_normal((4, 6))
    assert_close(R.energy(params, x, y, mask), B.energy(params, T(x), T(y), T(mask)))
    assert_close(R.energy_grad_y(params, x, y, mask),
                 B.energy_grad_y(params, T(x), T(y), T(mask)))
    xe, ye = rng.standard_normal((7, 3)), rng.standard_normal((7, 6))
    assert_close(R.potential_value(params, xe, ye), B.potential_value(params, T(xe), T(ye)))
    assert_close(R.potential_grad_y(params, xe, ye), B.potential_grad_y(params, T(xe), T(ye)))
    sizes = T(np.array([0.0, 1.0, 5.0]))
    assert_close(R.energy_scale(sizes.numpy()), B.energy_scale(sizes))
    assert_close(R.energy_scale(sizes.numpy(), False), B.energy_scale(sizes, False))


def test_callable_potential_uses_autograd_and_agrees(rng, dense_batch, assert_close):
    x, mask = dense_batch(rng)
    params = R.init_equilibrium_aggregation(0, 3, 6, hidden=(8, 4), dtype="float64")

    def potential(p, xe, ye):
        return B.potential_value(p, xe, ye)

    y = B.equilibrium_aggregation(params, T(x), T(mask), potential=potential, out_dim=6)
    assert_close(R.equilibrium_aggregation(params, x, mask), y)
    assert not y.requires_grad  # nothing needed a graph
    g = B.potential_grad_y(params, T(x[0]), T(np.ones((5, 6))), potential=potential)
    assert_close(R.potential_grad_y(params, x[0], np.ones((5, 6))), g)


def test_bfloat16_runs_close_to_reference(rng, dense_batch):
    x, mask = dense_batch(rng)
    params = R.init_equilibrium_aggregation(0, 3, 6, hidden=(8, 4), dtype="float64")
    y = B.equilibrium_aggregation(params, T(x, dtype=torch.bfloat16), T(mask))
    assert y.dtype == torch.bfloat16
    np.testing.assert_allclose(B.to_numpy(y), R.equilibrium_aggregation(params, x, mask),
                               atol=0.1, rtol=0.1)
    pooled = B.mean_pool(T(x, dtype=torch.bfloat16), T(mask))
    np.testing.assert_allclose(B.to_numpy(pooled), R.mean_pool(x, mask), atol=0.05)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_matches_reference(rng, dtype, dense_batch, assert_close):
    x, mask = dense_batch(rng)
    xt, mt = _tensors(dtype, x, mask)
    xs, index, num_sets = R.to_segments(x, mask)
    seg = dict(index=T(index), num_sets=num_sets)
    for name in ("sum_pool", "mean_pool", "max_pool"):
        ref = getattr(R, name)(x, mask)
        assert_close(ref, getattr(B, name)(xt, mt), dtype, name)
        assert_close(ref, getattr(B, name)(T(xs, dtype=dtype), **seg), dtype, name)
    pa = R.init_attention_pool(0, 3, 8, num_heads=2, dtype="float64")
    assert_close(R.attention_pool(pa, x, mask), B.attention_pool(pa, xt, mt), dtype)
    pp = R.init_pna_pool(0, 3, 5, dtype="float64")
    delta = B.pna_delta(T([1, 2, 3]))
    assert delta == R.pna_delta([1, 2, 3])
    assert_close(R.pna_pool(pp, x, mask, delta=delta), B.pna_pool(pp, xt, mt, delta=delta), dtype)


def test_segment_ops_match_reference(rng, assert_close):
    data = rng.standard_normal((7, 2))
    index = np.array([0, 0, 2, 2, 2, 3, 0])
    weight = np.array([1, 1, 0, 1, 1, 1, 0.0])
    for name in ("segment_max", "segment_min", "segment_softmax"):
        assert_close(getattr(R, name)(data, index, 5, weight),
                     getattr(B, name)(T(data), T(index), 5, T(weight)), what=name)
    assert_close(R.segment_sum(data, index, 5), B.segment_sum(T(data), T(index), 5))
    assert B.index_from_ptr(T([0, 2, 2, 3])).tolist() == [0, 0, 2]
    dense, mask = B.to_dense(T(data), T(index), 5)
    dense_ref, mask_ref = R.to_dense(data, index, 5)
    assert_close(dense_ref, dense)
    np.testing.assert_array_equal(mask.numpy(), mask_ref)
    xs, idx, n = B.to_segments(dense, mask)
    xs_ref, idx_ref, _ = R.to_segments(dense_ref, mask_ref)
    assert_close(xs_ref, xs)
    assert idx.tolist() == idx_ref.tolist() and n == 5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["top_n", "first_n", "iid", "mlp"])
def test_creation_matches_reference(rng, name, dtype, assert_close):
    z = rng.standard_normal((3, 4))
    params = R.init_creation(name, 0, 4, 2, 6, dtype="float64")
    n = np.array([2, 0, 5])
    x_ref, m_ref = R.create_set(name, params, z, n, rng=1)
    x, m = B.create_set(name, params, T(z, dtype=dtype), n, rng=1)
    assert_close(x_ref, x, dtype)
    np.testing.assert_array_equal(m.numpy(), m_ref)
    x_pad, m_pad = B.create_set(name, params, T(z), T(n), max_n=7 if name != "iid" else 5,
                                rng=1)
    assert_close(x_ref, x_pad[:, :5])
    assert not m_pad[:, 5:].any() and (x_pad[:, 5:] == 0).all()


def test_iid_creation_accepts_a_torch_generator():
    params = B.init_iid_creation(0, 4, 2)
    x, mask = B.iid_creation(params, torch.zeros(2, 4), 3, rng=torch.Generator().manual_seed(0))
    assert x.shape == (2, 3, 2) and mask.all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_match_reference(rng, dtype, dense_batch, assert_close):
    x, xm = dense_batch(rng)
    y, ym = dense_batch(rng, max_size=6, empty=2)
    xt, yt, xmt, ymt = _tensors(dtype, x, y, xm, ym)
    for name, kw in (("chamfer_loss", {}), ("chamfer_loss", {"variant": "dspn"}),
                     ("hungarian_loss", {}), ("sinkhorn_loss", {"epsilon": 0.1})):
        assert_close(getattr(R, name)(x, y, xm, ym, **kw),
                     getattr(B, name)(xt, yt, xmt, ymt, **kw), dtype, name)
    np.testing.assert_array_equal(R.hungarian_matching(x, y, xm, ym),
                                  B.hungarian_matching(xt, yt, xmt, ymt).numpy())
