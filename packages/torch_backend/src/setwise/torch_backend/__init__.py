"""setwise.torch_backend: the PyTorch backend of setwise.

The same functions as :mod:`setwise.reference` (same names, arguments and values), on torch
tensors on any device and differentiable; ``nn.Module`` wrappers whose ``state_dict()`` is the
shared parameter mapping (:mod:`setwise.torch_backend.modules`); and PyTorch Geometric
aggregations in :mod:`setwise.torch_backend.pyg` (imported on demand).

>>> import torch
>>> from setwise import torch_backend as B
>>> params = B.init_equilibrium_aggregation(0, in_dim=3, out_dim=2, hidden=(8, 4))
>>> y = B.equilibrium_aggregation(params, torch.randn(5, 3), index=torch.tensor([0, 0, 1, 1, 1]),
...                               num_sets=2)
>>> tuple(y.shape)
(2, 2)
"""

from setwise.reference.api import PUBLIC_API
from setwise.torch_backend.api import asarray, convert_params, to_numpy
from setwise.torch_backend.creation import (
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
from setwise.torch_backend.equilibrium import (
    GRAD_MODES,
    EAInfo,
    energy,
    energy_grad_y,
    energy_scale,
    equilibrium_aggregation,
    init_equilibrium_aggregation,
)
from setwise.torch_backend.losses import (
    chamfer_loss,
    hungarian_loss,
    hungarian_matching,
    sinkhorn_loss,
)
from setwise.torch_backend.modules import (
    AttentionPool,
    EquilibriumAggregation,
    FirstNCreation,
    IIDCreation,
    MaxPool,
    MeanPool,
    MLPCreation,
    PNAPool,
    SumPool,
    TopNCreation,
)
from setwise.torch_backend.nn import value_checks
from setwise.torch_backend.pooling import (
    attention_pool,
    init_attention_pool,
    init_pna_pool,
    max_pool,
    mean_pool,
    pna_delta,
    pna_pool,
    sum_pool,
)
from setwise.torch_backend.potentials import (
    POTENTIALS,
    init_potential,
    potential_grad_y,
    potential_value,
)
from setwise.torch_backend.segments import (
    index_from_ptr,
    segment_max,
    segment_min,
    segment_softmax,
    segment_sum,
    to_dense,
    to_segments,
)
from setwise.torch_backend.top_n import init_top_n_creation, top_n_creation

MODULES = ("EquilibriumAggregation", "SumPool", "MeanPool", "MaxPool", "AttentionPool",
           "PNAPool", "TopNCreation", "FirstNCreation", "IIDCreation", "MLPCreation")

__all__ = [*PUBLIC_API, *MODULES, "CREATORS", "GRAD_MODES", "POTENTIALS", "EAInfo", "value_checks"]
