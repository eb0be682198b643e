"""Set creation baselines (paper 2, section 2.1) with Top-n's signature, and a dispatcher.

Every creator is ``create(params, z, n, *, max_n=None, rng=None) -> (x, mask)`` with
``z [num_sets, latent_dim]``, ``n`` an int or ``[num_sets]`` sizes, ``x [num_sets, max_n,
out_dim]`` (padding rows 0) and ``mask [num_sets, max_n]``, so a model swaps its creator by
name (:func:`create_set`).

- First-n: the first n rows of a learned reference set, plus the latent (eq. 11: appending
  ``z`` to each point and applying a linear layer equals adding ``z W``).
- i.i.d.: n points drawn from ``N(0, I)`` in ``noise_dim`` dimensions, mapped linearly, plus
  ``z W``; exchangeable, and random (needs ``rng``).
- MLP: ``z -> [n_max * out_dim]``, reshaped, the first n rows kept.
"""

from __future__ import annotations

import numpy as np

from setwise.reference import nn
from setwise.reference import validation as V
from setwise.reference.top_n import creation_sizes, init_top_n_creation, top_n_creation

CREATORS = ("top_n", "first_n", "iid", "mlp")


def pad_rows(a, rows):
    """``a [k, c]`` padded with zero rows to at least ``rows`` rows (``max_n > n_max``)."""
    return np.pad(a, ((0, max(rows - a.shape[0], 0)), (0, 0)))


def init_first_n_creation(rng, latent_dim, out_dim, num_points, *, dtype="float32"):
    """``points [num_points, out_dim]`` (num_points = n_max) and ``z_w [latent_dim, out_dim]``."""
    rng, dtype = nn.as_rng(rng), nn.check_dtype("init_first_n_creation", dtype)
    params = {"points": rng.standard_normal((num_points, out_dim)).astype(dtype)}
    nn.init_linear(rng, params, "z", latent_dim, out_dim, dtype, bias=False)
    return params


def first_n_creation(params, z, n, *, max_n=None, rng=None):
    """First-n: ``X0 = R[:n] + 1_n z^T W_z`` (Zhang et al. 2019; eq. 11's sum form).

    Not invariant to permuting the reference rows: that is the bias Top-n removes.
    """
    op = "first_n_creation"
    z = np.asarray(z)
    num_points = check_first_n_params(op, params, z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n_max")
    points = pad_rows(params["points"], max_n)
    x = points[None, :max_n] + (z @ params["z_w"])[:, None]
    return np.where(mask[..., None], x, 0).astype(z.dtype), mask


def _check_latent(op, params, z, name):
    V.check_rank(op, "z", z.shape, (2,), "z [num_sets, latent_dim]")
    V.check_params(op, params, {name: (None, None)})
    rows = V._shape_dtype(params[name])[0][0]
    if z.shape[1] != rows:
        V.fail(op, "z", f"has latent_dim {z.shape[1]}", f"{rows}, the rows of params['{name}']")


def check_first_n_params(op, params, z):
    """First-n's ``points [n_max, c]`` and ``z_w [latent_dim, c]`` for ``z``; returns n_max.
    Shared by every backend."""
    _check_latent(op, params, z, "z_w")
    V.check_params(op, params, {"points": (None, None)})
    n_max, out = V._shape_dtype(params["points"])[0]
    V.check_params(op, params, {"points": (n_max, out), "z_w": (z.shape[1], out)})
    return n_max


def check_mlp_params(op, params, z):
    """MLP creation's layers from ``latent_dim``, ``mlp_out_w [h, n_max, c]`` and ``mlp_out_b
    [n_max, c]``; returns n_max. Shared by every backend."""
    V.check_rank(op, "z", z.shape, (2,), "z [num_sets, latent_dim]")
    V.check_params(op, params, {"mlp_out_w": (None, None, None)})
    spec, width = V.mlp_spec(params, "mlp", z.shape[1], op) if "mlp_0_w" in params else ({}, None)
    if spec:
        _check_latent(op, params, z, "mlp_0_w")
    h, n_max, out = V._shape_dtype(params["mlp_out_w"])[0]
    V.check_params(op, params, {**spec, "mlp_out_w": (width if spec else z.shape[1], n_max, out),
                                "mlp_out_b": (n_max, out)})
    return n_max


def init_iid_creation(rng, latent_dim, out_dim, num_points=None, *, noise_dim=None,
                      dtype="float32"):
    """``noise_w [noise_dim, out_dim]`` and ``z_w [latent_dim, out_dim]``; no size limit.

    ``noise_dim`` defaults to ``out_dim``; ``num_points`` is accepted and unused.
    """
    rng, dtype = nn.as_rng(rng), nn.check_dtype("init_iid_creation", dtype)
    params = {}
    nn.init_linear(rng, params, "noise", noise_dim or out_dim, out_dim, dtype, bias=False)
    nn.init_linear(rng, params, "z", latent_dim, out_dim, dtype, bias=False)
    return params


def check_iid_args(op, params, rng, rng_kinds="a numpy.random.Generator or int seed", z=None):
    """i.i.d. creation's ``noise_w [k, c]`` and ``z_w [latent_dim, c]`` (for ``z``), and an
    ``rng`` (``rng_kinds``: what the backend accepts). Shared by every backend."""
    V.check_params(op, params, {"noise_w": (None, None), "z_w": (None, None)})
    if z is not None:
        _check_latent(op, params, z, "z_w")
    out = V._shape_dtype(params["z_w"])[0][1]
    V.check_params(op, params, {"noise_w": (None, out), "z_w": (None, out)})
    if rng is None:
        V.fail(op, "rng", "is None", f"{rng_kinds} (i.i.d. creation samples noise)")


def iid_creation(params, z, n, *, max_n=None, rng=None):
    """i.i.d. sampling: ``X0 = E W_e + 1_n z^T W_z`` with ``E_ij ~ N(0, 1)`` drawn from ``rng``.

    ``rng``: ``numpy.random.Generator`` or int seed (required).
    """
    op = "iid_creation"
    z = np.asarray(z)
    check_iid_args(op, params, rng, z=z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, None, "")
    noise = nn.as_rng(rng).standard_normal((z.shape[0], max_n, params["noise_w"].shape[0]))
    x = noise.astype(z.dtype) @ params["noise_w"] + (z @ params["z_w"])[:, None]
    return np.where(mask[..., None], x, 0).astype(z.dtype), mask


def init_mlp_creation(rng, latent_dim, out_dim, num_points, *, hidden=(128,), dtype="float32"):
    """ReLU layers ``mlp_{i}_w/b`` (``latent_dim -> hidden``), then the output layer
    ``mlp_out_w [hidden[-1], num_points, out_dim]``, ``mlp_out_b [num_points, out_dim]``."""
    rng, dtype = nn.as_rng(rng), nn.check_dtype("init_mlp_creation", dtype)
    params = {}
    sizes = [latent_dim, *hidden]
    nn.init_mlp(rng, params, "mlp", sizes, dtype)
    params["mlp_out_w"] = nn.truncated_normal(rng, (sizes[-1], num_points, out_dim),
                                              1 / np.sqrt(sizes[-1]), dtype)
    params["mlp_out_b"] = np.zeros((num_points, out_dim), dtype)
    return params


def mlp_creation(params, z, n, *, max_n=None, rng=None):
    """MLP creation: ``reshape(MLP(z), [n_max, out_dim])[:n]`` (no extrapolation past n_max)."""
    op = "mlp_creation"
    z = np.asarray(z)
    num_points = check_mlp_params(op, params, z)
    _, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n_max")
    h = z
    for i in range(nn.mlp_depth(params, "mlp")):
        h = np.maximum(h @ params[f"mlp_{i}_w"] + params[f"mlp_{i}_b"], 0)
    x = np.einsum("bh,hnc->bnc", h, params["mlp_out_w"]) + params["mlp_out_b"]
    x = np.pad(x, ((0, 0), (0, max(max_n - num_points, 0)), (0, 0)))[:, :max_n]
    return np.where(mask[..., None], x, 0).astype(z.dtype), mask


def creation_dispatchers(creators):
    """``(init_creation, create_set)`` dispatching by name over ``creators``, a mapping
    ``name -> (init_<name>_creation, <name>_creation)``: the one definition of the dispatch,
    which every backend fills with its own functions."""

    def init_creation(name, rng, latent_dim, out_dim, num_points, **kwargs):
        """``init_<name>_creation(rng, latent_dim, out_dim, num_points, **kwargs)``."""
        V.check_choice("init_creation", "name", name, CREATORS)
        return creators[name][0](rng, latent_dim, out_dim, num_points, **kwargs)

    def create_set(name, params, z, n, *, max_n=None, rng=None):
        """``<name>_creation(params, z, n, max_n=max_n, rng=rng)``: one of :data:`CREATORS`."""
        V.check_choice("create_set", "name", name, CREATORS)
        return creators[name][1](params, z, n, max_n=max_n, rng=rng)

    return init_creation, create_set


init_creation, create_set = creation_dispatchers({
    "top_n": (init_top_n_creation, top_n_creation),
    "first_n": (init_first_n_creation, first_n_creation),
    "iid": (init_iid_creation, iid_creation),
    "mlp": (init_mlp_creation, mlp_creation),
})
