"""setwise.jax_backend: the reference's functions in JAX, jit-compiled, with Equinox modules.

Every name of :data:`setwise.reference.PUBLIC_API` is here with the same signature and
semantics; the docstrings of :mod:`setwise.reference` hold the math. What this backend adds:

- every op is pure and jit-compatible (configuration such as ``num_sets``, ``num_steps``,
  ``potential`` and ``max_n`` is static; value checks run only on concrete arrays) and
  vmap-compatible; float32 and float64 (enable x64), half precision computed in float32;
- Equilibrium Aggregation's solver is a ``lax.fori_loop`` with an analytic, split-first-layer
  inner gradient; ``grad_mode`` is ``unrolled``, ``truncated`` or ``implicit``
  (:mod:`setwise.jax_backend.equilibrium`); a potential may be a callable;
- Equinox modules holding the shared parameter mapping (:mod:`setwise.jax_backend.modules`).

>>> import numpy as np
>>> from setwise import jax_backend as B
>>> params = B.init_equilibrium_aggregation(0, 3, 4, hidden=(8, 8))
>>> B.equilibrium_aggregation(params, np.ones((2, 5, 3), np.float32)).shape
(2, 4)
"""

from setwise.jax_backend.api import asarray, checked, convert_params, jit_value_checks, to_numpy
from setwise.jax_backend.creation import (
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
from setwise.jax_backend.equilibrium import (
    GRAD_MODES,
    EAInfo,
    energy,
    energy_grad_y,
    energy_scale,
    equilibrium_aggregation,
    init_equilibrium_aggregation,
)
from setwise.jax_backend.losses import (
    chamfer_loss,
    hungarian_loss,
    hungarian_matching,
    sinkhorn_loss,
)
from setwise.jax_backend.modules import (
    AttentionPool,
    EquilibriumAggregation,
    PNAPool,
    SetCreator,
)
from setwise.jax_backend.pooling import (
    attention_pool,
    init_attention_pool,
    init_pna_pool,
    max_pool,
    mean_pool,
    pna_delta,
    pna_pool,
    sum_pool,
)
from setwise.jax_backend.potentials import (
    POTENTIALS,
    init_potential,
    potential_grad_y,
    potential_value,
)
from setwise.jax_backend.segments import (
    index_from_ptr,
    segment_max,
    segment_min,
    segment_softmax,
    segment_sum,
    to_dense,
    to_segments,
)
from setwise.jax_backend.top_n import init_top_n_creation, top_n_creation
from setwise.reference.api import PUBLIC_API

__all__ = [
    "checked", "jit_value_checks",
    *PUBLIC_API,
    "CREATORS", "GRAD_MODES", "POTENTIALS", "EAInfo",
    "AttentionPool", "EquilibriumAggregation", "PNAPool", "SetCreator",
]
