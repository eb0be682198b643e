"""setwise's PyG aggregations behave like PyG aggregations (and do not mix sets)."""

import pytest
import torch

pytest.importorskip("torch_geometric")
from torch_geometric.nn import MessagePassing  # noqa: E402
from torch_geometric.nn.aggr import EquilibriumAggregation as PygEquilibrium  # noqa: E402

from setwise import torch_backend as B  # noqa: E402
from setwise.torch_backend import pyg  # noqa: E402

AGGRS = [
    lambda d: pyg.EquilibriumAggregation(d, 3, hidden=(8, 4), num_steps=3, rng=0),
    lambda d: pyg.AttentionAggregation(d, 4, num_heads=2, rng=0),
    lambda d: pyg.PNAAggregation(d, 3, rng=0),
    lambda d: pyg.SumAggregation(),
    lambda d: pyg.MeanAggregation(),
    lambda d: pyg.MaxAggregation(),
]


@pytest.mark.parametrize("make", AGGRS)
def test_pyg_aggregation_behaviours(make):
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    index = torch.tensor([0, 0, 1, 1, 1, 2])
    ptr = torch.tensor([0, 2, 5, 6])
    aggr = make(5)
    out = aggr(x, index)
    assert out.shape[0] == 3 and out.dim() == 2
    torch.testing.assert_close(out, aggr(x, ptr=ptr))
    torch.testing.assert_close(out, aggr(x, index, dim_size=3))
    wide = aggr(x, index, dim_size=5)  # two trailing empty sets
    assert wide.shape[0] == 5 and torch.isfinite(wide).all()
    torch.testing.assert_close(wide[:3], out)
    perm = torch.tensor([5, 3, 0, 4, 1, 2])  # unsorted index, same sets
    torch.testing.assert_close(aggr(x[perm], index[perm]), out)
    empty = aggr(x[:0], index[:0], dim_size=2)
    assert empty.shape == (2, out.shape[1]) and torch.isfinite(empty).all()
    assert torch.isfinite(aggr(x)).all()  # no index: one set
    with pytest.raises(ValueError):
        aggr(x, index, dim_size=2)


class Propagate(MessagePassing):
    def forward(self, x, edge_index):
        return self.propagate(edge_index, x=x)


def test_local_aggregation_in_message_passing():
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 0, 2], [1, 0, 1, 1, 0, 3, 4]])  # node 2: none
    aggr = pyg.EquilibriumAggregation(4, 4, hidden=(8, 4), num_steps=3, rng=0)
    out = Propagate(aggr=aggr)(x, edge_index)
    want = B.equilibrium_aggregation(aggr.params, x[edge_index[0]], index=edge_index[1],
                                     num_sets=5, num_steps=3)
    torch.testing.assert_close(out, want)
    assert (out[2] == 0).all()
    out.sum().backward()
    assert aggr.potential_0_w.grad is not None


def test_state_dict_and_reset():
    aggr = pyg.EquilibriumAggregation(4, 3, hidden=(8, 4), rng=0)
    assert sorted(aggr.state_dict()) == sorted(B.init_equilibrium_aggregation(
        0, 4, 3, hidden=(8, 4)))
    before = aggr.potential_0_w.detach().clone()
    aggr.reset_parameters()
    assert not torch.equal(before, aggr.potential_0_w)


def test_a_set_does_not_depend_on_its_batch_companions_unlike_pyg():
    torch.manual_seed(0)
    a, b = torch.randn(4, 6), 3 * torch.randn(9, 6)
    alone = torch.zeros(4, dtype=torch.long)
    both = torch.cat([alone, torch.ones(9, dtype=torch.long)])
    ours = pyg.EquilibriumAggregation(6, 6, hidden=(16, 8), num_steps=5, rng=0)
    torch.testing.assert_close(ours(a, alone, dim_size=1)[0],
                               ours(torch.cat([a, b]), both, dim_size=2)[0])
    theirs = PygEquilibrium(6, 6, [16, 8], grad_iter=5)
    alone_out = theirs(a, alone, dim_size=1)[0]
    batch_out = theirs(torch.cat([a, b]), both, dim_size=2)[0]
    assert (alone_out - batch_out).abs().max() > 1e-4  # PyG averages its regulariser
