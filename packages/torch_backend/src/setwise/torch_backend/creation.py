"""Set creation baselines in PyTorch with Top-n's signature, and a dispatcher.

Same contract as :mod:`setwise.reference.creation`: every creator is
``create(params, z, n, *, max_n=None, rng=None) -> (x, mask)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from setwise.reference import creation as ref_creation
from setwise.reference import nn as ref_nn
from setwise.reference.creation import CREATORS as CREATORS  # re-exported by the package
from setwise.reference.creation import check_iid_args, creation_dispatchers
from setwise.torch_backend.nn import as_params, as_tensor, init_params
from setwise.torch_backend.top_n import creation_sizes, init_top_n_creation, top_n_creation


def _rows(t, max_n):
    """The first ``max_n`` rows of ``t [n_max, ...]``, zero-padded past ``n_max``."""
    t = t[:max_n]
    return F.pad(t, (0, 0) * (t.ndim - 1) + (0, max_n - t.shape[0]))


def init_first_n_creation(rng, latent_dim, out_dim, num_points, *, dtype="float32"):
    """:func:`setwise.reference.init_first_n_creation`, as tensors."""
    return init_params(ref_creation.init_first_n_creation, rng, latent_dim, out_dim,
                       num_points, dtype=dtype)


def first_n_creation(params, z, n, *, max_n=None, rng=None):
    """First-n: ``X0 = R[:n] + 1_n z^T W_z`` (:func:`setwise.reference.first_n_creation`)."""
    op = "first_n_creation"
    z = as_tensor(z)
    num_points = ref_creation.check_first_n_params(op, params, z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n_max")
    params = as_params(params, z)
    x = _rows(params["points"], max_n)[None] + (z @ params["z_w"])[:, None]
    return torch.where(mask[..., None], x, 0), mask


def init_iid_creation(rng, latent_dim, out_dim, num_points=None, *, noise_dim=None,
                      dtype="float32"):
    """:func:`setwise.reference.init_iid_creation`, as tensors."""
    return init_params(ref_creation.init_iid_creation, rng, latent_dim, out_dim, num_points,
                       noise_dim=noise_dim, dtype=dtype)


def iid_creation(params, z, n, *, max_n=None, rng=None):
    """i.i.d. sampling: ``X0 = E W_e + 1_n z^T W_z``, ``E_ij ~ N(0, 1)``.

    ``rng``: a ``numpy.random.Generator`` or int seed (the noise is drawn with NumPy, so the
    values equal the reference's), or a ``torch.Generator`` (drawn on ``z``'s device).
    """
    op = "iid_creation"
    z = as_tensor(z)
    check_iid_args(op, params, rng, "a numpy.random.Generator, int seed or torch.Generator", z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, None, "")
    params = as_params(params, z)
    shape = (z.shape[0], max_n, params["noise_w"].shape[0])
    if isinstance(rng, torch.Generator):
        noise = torch.randn(shape, generator=rng, dtype=z.dtype, device=rng.device)
        noise = noise.to(z.device)
    else:
        noise = torch.as_tensor(ref_nn.as_rng(rng).standard_normal(shape))
        noise = noise.to(device=z.device, dtype=z.dtype)
    x = noise @ params["noise_w"] + (z @ params["z_w"])[:, None]
    return torch.where(mask[..., None], x, 0), mask


def init_mlp_creation(rng, latent_dim, out_dim, num_points, *, hidden=(128,), dtype="float32"):
    """:func:`setwise.reference.init_mlp_creation`, as tensors."""
    return init_params(ref_creation.init_mlp_creation, rng, latent_dim, out_dim, num_points,
                       hidden=hidden, dtype=dtype)


def mlp_creation(params, z, n, *, max_n=None, rng=None):
    """MLP creation: ``reshape(MLP(z), [n_max, out_dim])[:n]``."""
    op = "mlp_creation"
    z = as_tensor(z)
    num_points = ref_creation.check_mlp_params(op, params, z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n_max")
    params = as_params(params, z)
    h = z
    for i in range(ref_nn.mlp_depth(params, "mlp")):
        h = torch.relu(h @ params[f"mlp_{i}_w"] + params[f"mlp_{i}_b"])
    x = torch.einsum("bh,hnc->bnc", h, params["mlp_out_w"]) + params["mlp_out_b"]
    x = _rows(x.transpose(0, 1), max_n).transpose(0, 1)
    return torch.where(mask[..., None], x, 0), mask


init_creation, create_set = creation_dispatchers({
    "top_n": (init_top_n_creation, top_n_creation),
    "first_n": (init_first_n_creation, first_n_creation),
    "iid": (init_iid_creation, iid_creation),
    "mlp": (init_mlp_creation, mlp_creation),
})
