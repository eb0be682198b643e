"""setwise.reference: the NumPy reference of setwise, the exact math every backend matches.

Equilibrium Aggregation (paper 1), Top-n creation (paper 2), baseline aggregators and
creators, and set losses, in float32 or float64 (float64 is the ground truth).
"""

from setwise.reference.api import (
    PUBLIC_API,
    asarray,
    available_backends,
    convert_params,
    get_backend,
    to_numpy,
)
from setwise.reference.creation import (
    CREATORS,
    create_set,
    first_n_creation,
    iid_creation,
    init_creation,
    init_first_n_creation,
    init_iid_creation,
    init_mlp_creation,
    mlp_creation,
)
from setwise.reference.equilibrium import (
    GRAD_MODES,
    EAInfo,
    energy,
    energy_grad_y,
    energy_scale,
    equilibrium_aggregation,
    init_equilibrium_aggregation,
)
from setwise.reference.losses import (
    chamfer_loss,
    hungarian_loss,
    hungarian_matching,
    sinkhorn_loss,
)
from setwise.reference.pooling import (
    attention_pool,
    init_attention_pool,
    init_pna_pool,
    max_pool,
    mean_pool,
    pna_delta,
    pna_pool,
    sum_pool,
)
from setwise.reference.potentials import (
    POTENTIALS,
    init_potential,
    potential_grad_y,
    potential_value,
)
from setwise.reference.segments import (
    index_from_ptr,
    segment_max,
    segment_min,
    segment_softmax,
    segment_sum,
    to_dense,
    to_segments,
)
from setwise.reference.top_n import init_top_n_creation, top_n_creation

__all__ = [
    *PUBLIC_API,
    "CREATORS", "GRAD_MODES", "POTENTIALS", "EAInfo", "available_backends", "get_backend",
]
