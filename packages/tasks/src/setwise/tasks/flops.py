"""Arithmetic of a training step, counted from the layer sizes of a :class:`SetModelSpec`.

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

from setwise.tasks.models.spec import MLPSpec, SetModelSpec


def mlp_forward_flops(rows: int, in_dim: int, mlp: MLPSpec) -> int:
    """Product FLOPs of one forward of ``mlp`` on ``rows`` inputs (projections included)."""
    flops, width = 0, in_dim
    for size in mlp.sizes:
        flops += 2 * rows * width * size
        if mlp.residual and size != width:
            flops += 2 * rows * width * size
        width = size
    return flops


def potential_forward_flops(num_sets: int, set_size: int, spec: SetModelSpec) -> int:
    """One forward of EA's residual potential over every element, split first layer."""
    rows, x_dim, y_dim = num_sets * set_size, spec.in_dim, spec.dim
    flops, width = 0, x_dim + y_dim
    for i, size in enumerate(spec.ea_hidden):
        maps = 1 + (size != width)  # the layer, and its residual projection
        if i == 0:
            flops += maps * 2 * size * (rows * x_dim + num_sets * y_dim)
        else:
            flops += maps * 2 * rows * width * size
        width = size
    return flops


def training_step_flops(spec: SetModelSpec, num_sets: int, set_size: int) -> dict[str, int]:
    """``{"encoder", "aggregator", "head", "total"}`` product FLOPs of one training step."""
    rows = num_sets * set_size
    head = 3 * mlp_forward_flops(num_sets, spec.dim, spec.head)
    encoder = 0 if spec.aggregator == "ea" else 3 * mlp_forward_flops(rows, spec.in_dim,
                                                                      spec.encoder)
    if spec.aggregator == "ea":
        agg = 6 * spec.ea_steps * potential_forward_flops(num_sets, set_size, spec)
    elif spec.aggregator == "mha":
        agg = 3 * 2 * (2 * rows * spec.dim * spec.dim)  # keys and values
    elif spec.aggregator == "pna":
        agg = 3 * 2 * num_sets * 12 * spec.dim * spec.dim
    else:
        agg = 0
    return {"encoder": encoder, "aggregator": agg, "head": head,
            "total": encoder + agg + head}
