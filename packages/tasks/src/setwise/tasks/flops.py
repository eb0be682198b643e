"""Arithmetic of a training step, counted from the layer sizes of a task's model.

Counted per layer family (:class:`~setwise.tasks.layers.mlp.MLPSpec`,
:class:`~setwise.tasks.layers.readout.ReadoutSpec`); :func:`training_step_flops` adds up a
median model (:class:`~setwise.tasks.median.model.MedianSpec`, from
``get_task("median").spec(config)``).

Only matrix products are counted (``2 * rows * fan_in * fan_out`` FLOPs per linear layer);
LayerNorm, activations, pooling and the optimiser are left out (they are O(width), not
O(width^2), per row). Conventions:

- a plain network's training step is 3x its forward product FLOPs (forward, then the
  gradients with respect to the inputs and to the weights);
- EA's potential is evaluated on every element at every one of the T steps, each time forward
  and back to its input (the analytic ``grad_y``: 2x the forward products); the training
  backward through the unrolled steps costs twice that again, so EA's aggregation costs
  ``6 T F_pot`` where ``F_pot`` is one forward of the potential over all elements. With the
  split first layer (DESIGN.md section 3) the ``x`` part of every linear map on ``(x, y)``
  is computed once and the ``y`` part once per set, not per element; both are counted so.
"""

from __future__ import annotations

from setwise.tasks.layers.mlp import MLPSpec
from setwise.tasks.layers.readout import ReadoutSpec
from setwise.tasks.median.model import MedianSpec


def mlp_forward_flops(rows: int, in_dim: int, mlp: MLPSpec) -> int:
    """Product FLOPs of one forward of ``mlp`` on ``rows`` inputs (projections included)."""
    flops, width = 0, in_dim
    for size in mlp.sizes:
        flops += 2 * rows * width * size
        if mlp.residual and size != width:
            flops += 2 * rows * width * size
        width = size
    return flops


def potential_forward_flops(num_sets: int, set_size: int, readout: ReadoutSpec) -> int:
    """One forward of EA's residual potential over every element, split first layer."""
    rows, x_dim, y_dim = num_sets * set_size, readout.in_dim, readout.width
    flops, width = 0, x_dim + y_dim
    for i, size in enumerate(readout.ea_hidden):
        maps = 1 + (size != width)  # the layer, and its residual projection
        if i == 0:
            flops += maps * 2 * size * (rows * x_dim + num_sets * y_dim)
        else:
            flops += maps * 2 * rows * width * size
        width = size
    return flops


def readout_training_flops(readout: ReadoutSpec, num_sets: int, set_size: int) -> int:
    """Product FLOPs of a readout in one training step (forward and backward)."""
    rows, dim = num_sets * set_size, readout.in_dim
    if readout.kind == "ea":
        return 6 * readout.ea_steps * potential_forward_flops(num_sets, set_size, readout)
    if readout.kind == "mha":
        return 3 * 2 * (2 * rows * dim * readout.width)  # keys and values
    if readout.kind == "pna":
        return 3 * 2 * num_sets * 12 * dim * readout.width
    return 0


def training_step_flops(model: MedianSpec, num_sets: int, set_size: int) -> dict[str, int]:
    """``{"encoder", "aggregator", "head", "total"}`` product FLOPs of one training step."""
    rows = num_sets * set_size
    head = 3 * mlp_forward_flops(num_sets, model.readout.width, model.head)
    encoder = 3 * mlp_forward_flops(rows, 1, model.encoder) if model.has_encoder else 0
    agg = readout_training_flops(model.readout, num_sets, set_size)
    return {"encoder": encoder, "aggregator": agg, "head": head,
            "total": encoder + agg + head}
