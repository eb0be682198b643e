"""Top-n creation (paper 2, section 4, eqs. 5-10): a set from a latent vector.

A learned reference set holds ``n0`` points, each an angle ``phi_i [angle_dim]`` and a
representation ``r_i [out_dim]``. For a latent ``z [latent_dim]`` and a size ``n <= n0``:

.. math::

    a = \\mathrm{MLP}(z), \\quad c_i = \\cos(\\phi_i, a), \\quad
    s = \\text{the } n \\text{ largest } c_i, \\quad
    \\tilde c = \\mathrm{softmax}(c_s),\\\\
    X^0 = R_s \\odot \\tilde c W_1 + \\tilde c W_2, \\qquad
    X^0 \\leftarrow X^0 \\odot (z^\\top W_3) + z^\\top W_4 .

The selection has zero gradient; the angles and the MLP learn through ``c~`` (eq. 8).
"""

from __future__ import annotations

import numpy as np

from setwise.reference import nn
from setwise.reference import validation as V

COS_EPS = 1e-12


def creation_sizes(op, z, n, max_n, limit, limit_name):
    """Validate ``z [num_sets, latent_dim]`` and sizes ``n`` (int or ``[num_sets]``).

    Returns ``(n [num_sets] int64, max_n, mask [num_sets, max_n] bool)``.
    """
    V.check_rank(op, "z", z.shape, (2,), "z [num_sets, latent_dim]")
    V.check_float(op, "z", z.dtype)
    V.check_finite(op, "z", bool(np.isfinite(z).all()))
    sizes = np.broadcast_to(np.asarray(n), (z.shape[0],)) if np.ndim(n) == 0 else np.asarray(n)
    if sizes.ndim != 1 or (sizes.size and not np.issubdtype(sizes.dtype, np.integer)):
        V.fail(op, "n", f"is {n!r}", "an int or an int array [num_sets]", TypeError)
    if max_n is not None:
        max_n = V.check_positive_int(op, "max_n", max_n, minimum=0)
    V.check_set_sizes(op, sizes.tolist(), z.shape[0], limit, limit_name, max_n)
    max_n = int(sizes.max(initial=0)) if max_n is None else max_n
    mask = np.arange(max_n)[None, :] < sizes[:, None]
    return sizes.astype(np.int64), max_n, mask


def init_top_n_creation(rng, latent_dim, out_dim, num_points, *, angle_dim=None,
                        hidden=(64,), dtype="float32"):
    """Parameters of Top-n creation.

    Args:
        rng: ``numpy.random.Generator`` or int seed.
        latent_dim: ``l``, the size of ``z``.
        out_dim: ``c``, the size of each created point.
        num_points: ``n0``, the size of the reference set (paper: 2n, 35 or 12).
        angle_dim: ``a`` (default: ``latent_dim``).
        hidden: hidden sizes of the angle MLP ``z -> a`` (ReLU).

    Returns:
        ``angle_mlp_{i}_w/b``, ``angles [n0, a]``, ``points [n0, c]``, ``w1 [1, c]``,
        ``w2 [1, c]``, ``w3 [l, c]``, ``w4 [l, c]``.

    Notes:
        The paper lists W3 and W4 as ``1 x c``; eq. 10 multiplies them by ``z^T [1, l]``, so
        they are ``l x c`` here.
    """
    op = "init_top_n_creation"
    for name, value in (("latent_dim", latent_dim), ("out_dim", out_dim),
                        ("num_points", num_points)):
        V.check_positive_int(op, name, value)
    angle_dim = latent_dim if angle_dim is None else angle_dim
    rng, dtype = nn.as_rng(rng), nn.check_dtype(op, dtype)
    params = {}
    nn.init_mlp(rng, params, "angle_mlp", [latent_dim, *hidden, angle_dim], dtype)
    params["angles"] = rng.standard_normal((num_points, angle_dim)).astype(dtype)
    params["points"] = rng.standard_normal((num_points, out_dim)).astype(dtype)
    params["w1"] = np.ones((1, out_dim), dtype)
    params["w2"] = nn.truncated_normal(rng, (1, out_dim), 1.0, dtype)
    params["w3"] = nn.truncated_normal(rng, (latent_dim, out_dim), 1 / np.sqrt(latent_dim), dtype)
    params["w4"] = nn.truncated_normal(rng, (latent_dim, out_dim), 1 / np.sqrt(latent_dim), dtype)
    return params


def check_top_n_params(op, params, z):
    """The whole Top-n mapping for latents ``z [num_sets, latent_dim]`` (names, shapes, float
    dtypes): the angle MLP from ``latent_dim`` to ``angle_dim``, ``angles [n0, angle_dim]``,
    ``points [n0, c]``, ``w1``/``w2 [1, c]``, ``w3``/``w4 [latent_dim, c]``. Returns ``n0``.
    Shared by every backend."""
    V.check_rank(op, "z", z.shape, (2,), "z [num_sets, latent_dim]")
    V.check_params(op, params, {"angles": (None, None), "points": (None, None),
                                "angle_mlp_0_w": (None, None)})
    latent = z.shape[1]
    rows = V._shape_dtype(params["angle_mlp_0_w"])[0][0]
    if rows != latent:
        V.fail(op, "z", f"has latent_dim {latent}", f"{rows}, the rows of params['angle_mlp_0_w']")
    mlp, angle_dim = V.mlp_spec(params, "angle_mlp", latent, op)
    n0, out = V._shape_dtype(params["points"])[0]
    V.check_params(op, params, {**mlp, "angles": (n0, angle_dim), "points": (n0, out),
                                "w1": (1, out), "w2": (1, out), "w3": (latent, out),
                                "w4": (latent, out)})
    return n0


def top_n_scores(params, z):
    """``c [num_sets, n0]``: cosine between every reference angle and ``a = MLP(z)``."""
    a = nn.mlp(params, "angle_mlp", z)
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), COS_EPS)
    phi = params["angles"]
    phi = phi / np.maximum(np.linalg.norm(phi, axis=-1, keepdims=True), COS_EPS)
    return a @ phi.T


def pad_columns(a, width):
    """``a [num_sets, k]`` padded with zeros (index 0, masked out later) to ``width`` columns."""
    return np.pad(a, ((0, 0), (0, max(width - a.shape[1], 0))))


def top_n_select(scores, max_n):
    """Indices ``[num_sets, max_n]`` of the largest scores, descending, ties to lower index."""
    return np.argsort(-scores, axis=-1, kind="stable")[:, :max_n]


def top_n_creation(params, z, n, *, max_n=None, rng=None):
    """Create one set per latent vector by Top-n selection.

    Args:
        params: mapping from :func:`init_top_n_creation`.
        z: ``[num_sets, latent_dim]`` latent vectors.
        n: int, or ``[num_sets]`` ints: the size of each set (``<= n0``).
        max_n: padded size of the output (default ``max(n)``; give it for static shapes).
        rng: unused (Top-n is deterministic); there so every creator has one signature.

    Returns:
        ``(x [num_sets, max_n, out_dim], mask [num_sets, max_n])``; rows are in order of
        decreasing cosine, padding rows are 0.

    Created sets are unchanged, as sets, when the rows of the reference set (angles and
    points together) are permuted.

    Notes:
        A true cosine (both sides normalised; eq. 6 divides by ``||phi_i||`` only, the
        released code normalises ``a`` only). The softmax of eq. 8 runs over the selected
        points only (the released code takes it over all points and multiplies by n).
        Eq. 10 is a linear FiLM (the released code gates with a sigmoid).
        Ties at the cut-off go to the lower reference index in every backend. Cosines that
        are bitwise equal (duplicated angles) tie identically everywhere, eager or jitted;
        cosines equal only in exact arithmetic can differ by an ulp between backends and
        between JAX eager and ``jit`` (XLA fuses the normalisation differently), and such a tie
        is then broken by that rounding.
    """
    op = "top_n_creation"
    z = np.asarray(z)
    num_points = check_top_n_params(op, params, z)
    sizes, max_n, mask = creation_sizes(op, z, n, max_n, num_points, "n0 (reference points)")
    scores = top_n_scores(params, z)
    sel = pad_columns(top_n_select(scores, max_n), max_n)
    c = np.take_along_axis(scores, sel, -1)
    top = np.max(np.where(mask, c, -np.inf), -1, keepdims=True, initial=-np.inf)
    e = np.where(mask, np.exp(np.where(mask, c - np.where(np.isfinite(top), top, 0), 0)), 0)
    c_tilde = (e / np.maximum(e.sum(-1, keepdims=True), COS_EPS))[..., None]
    x = params["points"][sel] * (c_tilde * params["w1"]) + c_tilde * params["w2"]
    x = x * (z @ params["w3"])[:, None] + (z @ params["w4"])[:, None]
    return np.where(mask[..., None], x, 0).astype(z.dtype), mask
