"""setwise's PyG aggregations against PyG's own expectations for an ``Aggregation`` (the
behaviours of PyG's test/nn/aggr tests, re-stated), and the PyTorch-only value-check cases of
issue 12 (vmap, meta tensors, true max with checks off)."""

import pytest
import torch

pytest.importorskip("torch_geometric")
from torch_geometric.nn import SAGEConv  # noqa: E402
from torch_geometric.nn.aggr import MultiAggregation  # noqa: E402

from setwise import torch_backend as B  # noqa: E402
from setwise.torch_backend import pyg  # noqa: E402

X = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
INDEX = torch.tensor([0, 0, 1, 1, 1, 2])
PTR = torch.tensor([0, 2, 5, 6])

MAKERS = {
    "ea": lambda: pyg.EquilibriumAggregation(5, 3, hidden=(8, 4), num_steps=3, rng=0),
    "attention": lambda: pyg.AttentionAggregation(5, 4, num_heads=2, rng=0),
    "pna": lambda: pyg.PNAAggregation(5, 3, rng=0),
    "sum": pyg.SumAggregation,
    "mean": pyg.MeanAggregation,
    "max": pyg.MaxAggregation,
}


@pytest.mark.parametrize("name", MAKERS)
def test_leading_dimensions_and_dim(name):
    """``x [*, N, F]``: every leading index is its own batch of sets; ``dim`` picks N."""
    aggr = MAKERS[name]()
    out = aggr(X, INDEX)
    x3 = torch.stack([X, 2 * X, -X])
    got = aggr(x3, INDEX, dim=1)
    assert got.shape == (3, 3, out.shape[-1])
    for b, scale in enumerate((1, 2, -1)):
        torch.testing.assert_close(got[b], aggr(scale * X, INDEX))
    torch.testing.assert_close(aggr(x3, ptr=PTR, dim=-2), got)
    moved = aggr(x3.transpose(0, 1), INDEX, dim=0)  # [N, B, F], aggregated over dim 0
    torch.testing.assert_close(moved, got.transpose(0, 1))
    with pytest.raises(ValueError, match="invalid dimension"):
        aggr(X, INDEX, dim=-3)
    with pytest.raises(ValueError, match="'dim'"):
        aggr(X, INDEX, dim=-1)  # the features are the last dimension


@pytest.mark.parametrize("name", MAKERS)
def test_dim_size_errors_carry_pygs_wording(name):
    aggr = MAKERS[name]()
    with pytest.raises(ValueError, match=r"invalid 'dim_size' \(got '2' but expected >= '3'\)"):
        aggr(X, INDEX, dim_size=2)
    with pytest.raises(ValueError, match="invalid 'dim_size'"):
        aggr(X, ptr=PTR, dim_size=2)


@pytest.mark.parametrize("name", MAKERS)
def test_torchscript(name):
    """``torch.jit.script`` works, alone and inside ``MultiAggregation`` (the setwise op is called
    back in Python)."""
    aggr = MAKERS[name]()
    scripted = torch.jit.script(aggr)
    torch.testing.assert_close(scripted(X, INDEX), aggr(X, INDEX))
    torch.testing.assert_close(scripted(X, ptr=PTR), aggr(X, INDEX))
    multi = MultiAggregation([pyg.SumAggregation(), aggr])
    torch.testing.assert_close(torch.jit.script(multi)(X, INDEX), multi(X, INDEX))


def test_a_convolution_with_an_aggregation_object_scripts():
    conv = SAGEConv(5, 4, aggr=pyg.EquilibriumAggregation(5, 5, [8, 4], grad_iter=2))
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 0, 1, 2, 2]])
    torch.testing.assert_close(torch.jit.script(conv)(X, edge_index), conv(X, edge_index))


def test_equilibrium_aggregation_exports():
    aggr = MAKERS["ea"]()
    exported = torch.export.export(aggr, (X, INDEX), {"dim_size": 3})
    torch.testing.assert_close(exported.module()(X, INDEX, dim_size=3), aggr(X, INDEX))


@pytest.mark.parametrize("grad_iter", [0, 1, 5])
def test_pygs_equilibrium_constructor(grad_iter):
    aggr = pyg.EquilibriumAggregation(5, 2, [10, 10], grad_iter=grad_iter, lamb=0.1)
    assert aggr.num_steps == grad_iter and aggr.hidden == (10, 10)
    torch.testing.assert_close(torch.nn.functional.softplus(aggr.reg_weight_raw),
                               torch.nn.functional.softplus(torch.tensor(0.1)))
    out = aggr(X)
    assert out.shape == (1, 2)
    if grad_iter == 0:
        assert (out == 0).all()
    assert aggr(X, INDEX).shape == (3, 2)


def test_reprs_show_channel_sizes():
    assert repr(MAKERS["ea"]()) == "EquilibriumAggregation(5, 3, num_steps=3, grad_mode='unrolled')"
    assert repr(MAKERS["attention"]()) == "AttentionAggregation(5, 4, num_heads=2)"
    assert repr(MAKERS["pna"]()) == "PNAAggregation(5, 3, delta=1.0)"
    assert repr(pyg.MaxAggregation()) == "MaxAggregation()"


@pytest.mark.parametrize("name", ["ea", "attention", "pna"])
def test_parameters_do_not_follow_the_inputs_dtype(name):
    aggr = MAKERS[name]()
    with pytest.raises(TypeError, match="float64"):
        aggr(X.double(), INDEX)
    assert aggr.double()(X.double(), INDEX).dtype == torch.float64


def test_input_width_is_checked_against_the_parameters():
    for name in ("ea", "attention", "pna"):
        with pytest.raises(ValueError, match="'x'|params"):
            MAKERS[name]()(X[:, :3], INDEX)
    module = B.EquilibriumAggregation(3, 8, hidden=(4, 3), rng=0)
    for width in (2, 1, 0):
        with pytest.raises(ValueError, match="'x' has dim"):
            module(torch.ones(2, 3, width))


def test_max_is_the_true_max_with_value_checks_off():
    x = X.clone()
    x[0, 0], x[1, 1] = float("nan"), float("inf")
    aggr = pyg.MaxAggregation()
    with B.value_checks(False):
        out = aggr(x, INDEX, dim_size=4)
        compiled = torch.compile(aggr, backend="eager")(x, INDEX, dim_size=4)
    for got in (out, compiled):
        assert got[0, 0].isnan() and got[0, 1] == float("inf")
        assert (got[3] == 0).all()  # an empty set
        torch.testing.assert_close(got[1], X[2:5].amax(0))
        torch.testing.assert_close(got[2], X[5])


def test_value_checks_skip_vmap_and_meta_tensors():
    params = B.init_equilibrium_aggregation(0, 3, 2, hidden=(4,), dtype="float64")
    xs = torch.randn(4, 2, 5, 3, dtype=torch.float64)
    batched = torch.func.vmap(lambda x: B.equilibrium_aggregation(params, x, num_steps=2))(xs)
    for i in range(4):
        torch.testing.assert_close(batched[i], B.equilibrium_aggregation(params, xs[i],
                                                                         num_steps=2))
    grads = torch.func.vmap(torch.func.grad(lambda x: B.sum_pool(x).square().sum()))(xs)
    torch.testing.assert_close(grads, 2 * xs.sum(2, keepdim=True).expand_as(xs))
    meta = B.equilibrium_aggregation({k: v.to("meta") for k, v in params.items()},
                                     torch.empty(2, 5, 3, dtype=torch.float64, device="meta"))
    assert meta.shape == (2, 2) and meta.is_meta
    assert B.segment_sum(torch.empty(3, 2, device="meta"),
                         torch.zeros(3, dtype=torch.long, device="meta"), 2).shape == (2, 2)
