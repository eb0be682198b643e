"""Valid but unusual inputs, and inputs at the edge of the floating range: every backend accepts
the first and agrees with the reference on the second (issue 12).

Bad inputs that must be refused are in ``test_errors.py``; these are the cases that must not be.
"""

import numpy as np
import pytest

from conformance.tolerances import tolerance


def ea_params(ref, in_dim=2, out_dim=3, dtype="float64"):
    return ref.init_equilibrium_aggregation(0, in_dim, out_dim, hidden=(4, 3), dtype=dtype)


INT_LIKE = [np.int64(2), np.int32(2), np.array(2), np.array(2, np.int16)]


@pytest.mark.parametrize("num_sets", INT_LIKE, ids=["np.int64", "np.int32", "0-d", "0-d int16"])
def test_numpy_and_0d_integers_are_ints(backend, ref, num_sets):
    x = np.arange(6.0).reshape(3, 2)
    index = np.array([0, 1, 1])
    want = ref.sum_pool(x, index=index, num_sets=2)
    got = backend.sum_pool(backend.asarray(x), index=backend.asarray(index), num_sets=num_sets)
    np.testing.assert_allclose(backend.to_numpy(got), want)
    got = backend.segment_sum(backend.asarray(x), backend.asarray(index), num_sets)
    np.testing.assert_allclose(backend.to_numpy(got), want)
    p = backend.convert_params(ea_params(ref))
    y = backend.equilibrium_aggregation(p, backend.asarray(x), index=backend.asarray(index),
                                        num_sets=num_sets, num_steps=np.int64(3))
    assert tuple(y.shape) == (2, 3)
    z = np.ones((2, 4))
    tp = backend.convert_params(ref.init_top_n_creation(0, 4, 2, 5, dtype="float64"))
    out, mask = backend.top_n_creation(tp, backend.asarray(z), np.int64(2), max_n=np.int64(3))
    assert tuple(out.shape) == (2, 3, 2) and backend.to_numpy(mask).sum() == 4


def test_a_0d_torch_tensor_is_an_int(ref):
    torch = pytest.importorskip("torch")
    from setwise import torch_backend as T

    x = torch.arange(6.0, dtype=torch.float64).reshape(3, 2)
    y = T.sum_pool(x, index=torch.tensor([0, 1, 1]), num_sets=torch.tensor(2))
    np.testing.assert_allclose(T.to_numpy(y), ref.sum_pool(x.numpy(), index=np.array([0, 1, 1]),
                                                           num_sets=2))


def test_zero_steps_return_the_start_point(backend, ref):
    """PyG's ``grad_iter=0``: no step, ``y = y0 = 0``, finite diagnostics."""
    x = np.random.default_rng(0).normal(size=(2, 3, 2))
    p = backend.convert_params(ea_params(ref))
    y, info = backend.equilibrium_aggregation(p, backend.asarray(x), num_steps=0,
                                              return_info=True)
    assert (backend.to_numpy(y) == 0).all()
    assert (backend.to_numpy(info.aux_loss) == 0).all()
    assert (backend.to_numpy(info.active_steps) == 0).all()
    assert not backend.to_numpy(info.diverged).any()


def test_a_diverging_descent_is_flagged(backend, ref):
    """A step size far too large for the potential: ``EAInfo.diverged`` says which sets blew up,
    the same on every backend (no silent NaN)."""
    x = np.random.default_rng(0).normal(size=(3, 4, 2))
    mask = np.ones((3, 4), bool)
    mask[2] = False  # an empty set has no gradient: it cannot diverge
    p = {"step_size_raw": np.array(60.0), "momentum_raw": np.array(0.0)}
    kwargs = dict(potential="quadratic", num_steps=150, return_info=True)
    _, want = ref.equilibrium_aggregation(p, x, mask, **kwargs)
    assert want.diverged.tolist() == [True, True, False]
    y, info = backend.equilibrium_aggregation(backend.convert_params(p), backend.asarray(x),
                                              backend.asarray(mask), **kwargs)
    assert backend.to_numpy(info.diverged).tolist() == [True, True, False]
    assert not np.isfinite(backend.to_numpy(y)[:2]).all()
    _, calm = backend.equilibrium_aggregation(backend.convert_params(ea_params(ref)),
                                              backend.asarray(x), backend.asarray(mask),
                                              num_steps=3, return_info=True)
    assert not backend.to_numpy(calm.diverged).any()


def test_segment_extremes_are_true_extremes(backend, ref):
    """NaN and Inf in the data come out of segment_max / min; only an empty set gives 0."""
    data = np.array([[1.0, np.nan], [np.inf, 2.0], [-np.inf, 3.0]])
    index = np.array([0, 0, 2])
    for name in ("segment_max", "segment_min"):
        want = getattr(ref, name)(data, index, 3)
        got = backend.to_numpy(getattr(backend, name)(backend.asarray(data),
                                                      backend.asarray(index), 3))
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ref.segment_max(data, index, 3),
                                  [[np.inf, np.nan], [0, 0], [-np.inf, 3.0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_finite_inputs_agree_with_the_reference(backend, ref, dtype):
    """``x = 1e30``: the residual potential's LayerNorm overflows its variance (NumPy: Inf, so
    the row normalises to 0); every backend gives the reference's finite values."""
    x = np.full((2, 3, 2), 1e30)
    x[1, 0] = -1e30
    rtol, _ = tolerance("value", dtype, "equilibrium_aggregation")
    for op, params in (("equilibrium_aggregation", ea_params(ref, dtype=dtype)),
                       ("attention_pool", ref.init_attention_pool(0, 2, 4, num_heads=2,
                                                                  dtype=dtype))):
        want = getattr(ref, op)(params, x.astype(dtype))
        got = backend.to_numpy(getattr(backend, op)(backend.convert_params(params),
                                                    backend.asarray(x.astype(dtype))))
        assert np.isfinite(want).all()
        assert np.isfinite(got).all(), f"{op} {dtype}: {got}"
        np.testing.assert_allclose(got, want, rtol=rtol, err_msg=op)
