"""The shared API: backend selection and array conversion.

Every backend (``setwise.reference`` itself, ``setwise.torch_backend``,
``setwise.jax_backend``) exposes the names in :data:`PUBLIC_API` with identical signatures;
a user switches backend by changing one import, or by name:

>>> B = get_backend("numpy")
>>> B.sum_pool(np.ones((2, 3, 4)), np.array([[True] * 3, [True, False, False]])).tolist()[1]
[1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import importlib

import numpy as np

BACKENDS = {
    "numpy": ("setwise.reference", "setwise-reference", "packages/reference"),
    "torch": ("setwise.torch_backend", "setwise-torch", "packages/torch_backend"),
    "jax": ("setwise.jax_backend", "setwise-jax", "packages/jax_backend"),
}

PUBLIC_API = (
    # segments
    "index_from_ptr", "segment_sum", "segment_max", "segment_min", "segment_softmax",
    "to_dense", "to_segments",
    # equilibrium aggregation
    "init_potential", "potential_value", "potential_grad_y", "init_equilibrium_aggregation",
    "energy", "energy_grad_y", "energy_scale", "equilibrium_aggregation",
    # baselines
    "sum_pool", "mean_pool", "max_pool", "init_attention_pool", "attention_pool",
    "init_pna_pool", "pna_pool", "pna_delta",
    # creation
    "init_top_n_creation", "top_n_creation", "init_first_n_creation", "first_n_creation",
    "init_iid_creation", "iid_creation", "init_mlp_creation", "mlp_creation",
    "init_creation", "create_set",
    # losses
    "chamfer_loss", "hungarian_matching", "hungarian_loss", "sinkhorn_loss",
    # arrays
    "asarray", "to_numpy", "convert_params",
)


def get_backend(name: str):
    """The backend module called ``name`` ("numpy", "torch" or "jax"), imported on demand.

    Only the framework asked for is imported. A backend that is not installed raises an
    ``ImportError`` that says how to install it.
    """
    if name not in BACKENDS:
        raise ValueError(f"get_backend: argument 'name' is {name!r}; expected one of "
                         f"{', '.join(map(repr, BACKENDS))}")
    module, dist, path = BACKENDS[name]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"setwise backend {name!r} is not available ({err}). Install the {dist} "
            f"distribution: python -m pip install -c constraints.txt -e {path}") from err


def available_backends() -> list[str]:
    """Names of the backends that import in this environment."""
    names = []
    for name in BACKENDS:
        try:
            get_backend(name)
        except ImportError:
            continue
        names.append(name)
    return names


def asarray(x, dtype=None):
    """A NumPy array (the reference backend's array type)."""
    return np.asarray(x, dtype=dtype)


def to_numpy(x):
    """A NumPy array from any backend's array."""
    return np.asarray(x)


def convert_params(params, dtype=None):
    """A parameter mapping with every value as a NumPy array (optionally cast to ``dtype``)."""
    return {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
