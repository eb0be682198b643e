"""The PyTorch backend exposes the reference's API: names, signatures, arrays, errors."""

import inspect

import numpy as np
import pytest
import torch

import setwise.reference as R
from setwise import torch_backend as B
from setwise.reference import get_backend


def test_every_public_name_has_the_reference_signature():
    for name in R.PUBLIC_API:
        assert inspect.signature(getattr(B, name)) == inspect.signature(getattr(R, name)), name


def test_get_backend_returns_this_module():
    assert get_backend("torch") is B


def test_arrays_round_trip():
    a = np.arange(6.0).reshape(2, 3)
    t = B.asarray(a)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    assert B.asarray(a, dtype="float32").dtype == torch.float32
    assert B.asarray(a, dtype=np.float32).dtype == torch.float32
    np.testing.assert_array_equal(B.to_numpy(t.requires_grad_()), a)
    assert B.to_numpy(t.to(torch.bfloat16)).dtype == np.float32


def test_convert_params_and_init_match_the_reference():
    ref = R.init_equilibrium_aggregation(3, 4, 5, hidden=(6, 5), dtype="float64")
    got = B.init_equilibrium_aggregation(3, 4, 5, hidden=(6, 5), dtype="float64")
    assert sorted(ref) == sorted(got)
    for k in ref:
        np.testing.assert_array_equal(B.to_numpy(got[k]), ref[k])
    conv = B.convert_params(ref, dtype="float32")
    assert all(v.dtype == torch.float32 for v in conv.values())
    assert B.init_attention_pool(0, 3, 4, num_heads=2, dtype=torch.bfloat16)["key_w"].dtype \
        == torch.bfloat16


@pytest.mark.parametrize("call", [
    lambda M: M.sum_pool(M.asarray(np.zeros((2, 3))), index=M.asarray(np.array([0, 1, 1])),
                         num_sets=2),
    lambda M: M.mean_pool(M.asarray(np.zeros((2, 3, 1))), M.asarray(np.ones((2, 2), bool))),
    lambda M: M.max_pool(M.asarray(np.zeros((3, 1))), index=M.asarray(np.array([0, 0, 5])),
                         num_sets=2),
    lambda M: M.max_pool(M.asarray(np.array([[np.nan]])), index=M.asarray(np.array([0])),
                         num_sets=1),
    lambda M: M.sum_pool(M.asarray(np.zeros((3, 1))), ptr=M.asarray(np.array([0, 2, 1]))),
    lambda M: M.sum_pool(M.asarray(np.zeros((3, 1), np.int64)), index=M.asarray(np.zeros(3,
                                                                                        int)),
                         num_sets=1),
    lambda M: M.equilibrium_aggregation(
        M.init_equilibrium_aggregation(0, 2, 2, hidden=(4,)), M.asarray(np.zeros((1, 3, 2),
                                                                                 np.float32)),
        num_steps=-1),
    lambda M: M.equilibrium_aggregation(
        M.init_equilibrium_aggregation(0, 2, 2, hidden=(4,)),
        M.asarray(np.zeros((1, 3, 2), np.float32)), grad_mode="truncated", truncate_steps=9),
    lambda M: M.top_n_creation(M.init_top_n_creation(0, 2, 3, 4), M.asarray(np.zeros((2, 2))),
                               5),
    lambda M: M.chamfer_loss(M.asarray(np.zeros((2, 3, 2))), M.asarray(np.zeros((3, 3, 2)))),
])
def test_errors_are_the_reference_errors(call):
    with pytest.raises(Exception) as ref:
        call(R)
    with pytest.raises(Exception) as got:
        call(B)
    assert type(got.value) is type(ref.value)
    assert str(got.value) == str(ref.value)


def test_value_checks_can_be_switched_off_and_back_on():
    import torch

    from setwise import torch_backend as B

    bad = torch.full((1, 2, 1), float("nan"))
    with B.value_checks(False):
        assert B.sum_pool(bad).isnan().all()
    with pytest.raises(ValueError, match="NaN"):
        B.sum_pool(bad)
