"""nn.Module wrappers: the state_dict is the shared parameter mapping, forward is the op."""

import numpy as np
import pytest
import torch

import setwise.reference as R
from setwise import torch_backend as B

T = torch.tensor


@pytest.mark.parametrize("make,init", [
    (lambda: B.EquilibriumAggregation(3, 4, hidden=(6, 5), rng=7),
     lambda: R.init_equilibrium_aggregation(7, 3, 4, hidden=(6, 5))),
    (lambda: B.AttentionPool(3, 4, num_heads=2, rng=7),
     lambda: R.init_attention_pool(7, 3, 4, num_heads=2)),
    (lambda: B.PNAPool(3, 4, rng=7), lambda: R.init_pna_pool(7, 3, 4)),
    (lambda: B.TopNCreation(3, 2, 5, rng=7), lambda: R.init_top_n_creation(7, 3, 2, 5)),
    (lambda: B.FirstNCreation(3, 2, 5, rng=7), lambda: R.init_first_n_creation(7, 3, 2, 5)),
    (lambda: B.IIDCreation(3, 2, 5, rng=7), lambda: R.init_iid_creation(7, 3, 2, 5)),
    (lambda: B.MLPCreation(3, 2, 5, rng=7), lambda: R.init_mlp_creation(7, 3, 2, 5)),
    (lambda: B.SumPool(), lambda: {}),
])
def test_state_dict_is_the_parameter_mapping(make, init):
    module, params = make(), init()
    state = module.state_dict()
    assert sorted(state) == sorted(params)
    for name in params:
        np.testing.assert_array_equal(B.to_numpy(state[name]), params[name])
    other = make()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    other.load_state_dict(B.convert_params(params))
    for name in params:
        np.testing.assert_array_equal(B.to_numpy(other.state_dict()[name]), params[name])


def test_modules_call_the_functional_ops(rng):
    x = T(rng.standard_normal((4, 5, 3)), dtype=torch.float32)
    mask = T(rng.random((4, 5)) > 0.3)
    ea = B.EquilibriumAggregation(3, 4, hidden=(6, 5), num_steps=4, rng=1)
    y, info = ea(x, mask, return_info=True)
    torch.testing.assert_close(y, B.equilibrium_aggregation(ea.params, x, mask, num_steps=4))
    assert info.aux_loss.shape == (4,)
    pna = B.PNAPool(3, 2, delta=1.5, rng=1)
    torch.testing.assert_close(pna(x, mask), B.pna_pool(pna.params, x, mask, delta=1.5))
    top = B.TopNCreation(3, 2, 6, rng=1)
    z = T(rng.standard_normal((2, 3)), dtype=torch.float32)
    torch.testing.assert_close(top(z, 4)[0], B.top_n_creation(top.params, z, 4)[0])
    assert B.MaxPool()(x, mask).shape == (4, 3)


def test_from_params_and_dtype_moves(rng):
    params = R.init_equilibrium_aggregation(0, 3, 4, hidden=(6, 5), dtype="float64")
    ea = B.EquilibriumAggregation.from_params(params, num_steps=3, grad_mode="implicit")
    assert ea.grad_mode == "implicit" and ea.potential_0_w.dtype == torch.float64
    x = rng.standard_normal((2, 4, 3))
    torch.testing.assert_close(ea(T(x)).detach().numpy(),
                               R.equilibrium_aggregation(params, x, num_steps=3))
    ea32 = ea.float()
    assert ea32(T(x, dtype=torch.float32)).dtype == torch.float32


def test_training_step_reaches_every_parameter(rng):
    ea = B.EquilibriumAggregation(3, 4, hidden=(6, 5), num_steps=3, rng=0)
    x = T(rng.standard_normal((2, 4, 3)), dtype=torch.float32)
    y, info = ea(x, return_info=True)
    (y.square().sum() + info.aux_loss.sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ea.parameters())
