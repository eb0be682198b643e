"""FLOP counts of a training step from the layer sizes."""

from setwise.tasks.flops import mlp_forward_flops, potential_forward_flops, training_step_flops
from setwise.tasks.layers.mlp import MLPSpec
from setwise.tasks.layers.readout import ReadoutSpec
from setwise.tasks.median.model import MedianSpec


def spec(aggregator, steps=5):
    return MedianSpec(encoder=MLPSpec((8, 8, 4), residual=True, normalize=True),
                      readout=ReadoutSpec(aggregator, 1 if aggregator == "ea" else 4, 4,
                                          ea_hidden=(8, 8, 1), ea_steps=steps),
                      head=MLPSpec((4, 3, 1)))


def test_mlp_counts_every_product_once_and_projections_where_width_changes():
    # 1->8 (+proj 1->8), 8->8 (identity skip), 8->4 (+proj 8->4), 10 rows
    assert mlp_forward_flops(10, 1, MLPSpec((8, 8, 4), residual=True)) == \
        2 * 10 * (1 * 8 * 2 + 8 * 8 + 8 * 4 * 2)
    assert mlp_forward_flops(10, 4, MLPSpec((4, 3, 1))) == 2 * 10 * (16 + 12 + 3)


def test_potential_splits_the_first_layer_into_element_and_set_parts():
    # 5 -> 8 (+proj): x part on 3*7 elements (dim 1), y part on 3 sets (dim 4)
    first = 2 * 2 * 8 * (21 * 1 + 3 * 4)
    rest = 2 * 21 * 8 * 8 + 2 * 2 * 21 * 8 * 1
    assert potential_forward_flops(3, 7, spec("ea").readout) == first + rest


def test_ea_costs_six_potential_passes_per_step_and_no_encoder():
    f5, f10 = (training_step_flops(spec("ea", t), 3, 7) for t in (5, 10))
    assert f5["encoder"] == 0
    assert f5["aggregator"] == 6 * 5 * potential_forward_flops(3, 7, spec("ea").readout)
    assert f10["aggregator"] == 2 * f5["aggregator"]
    s = training_step_flops(spec("sum"), 3, 7)
    assert s["aggregator"] == 0 and s["total"] == s["encoder"] + s["head"]
    assert s["encoder"] == 3 * mlp_forward_flops(21, 1, spec("sum").encoder)
