"""Gradients through any backend, for the gradient properties of the suite.

``grad(B, loss, params)`` returns NumPy gradients of a scalar ``loss(params)`` with respect to
every entry of ``params``: autodiff for torch and JAX, five-point finite differences (float64)
for the NumPy reference, which has no autodiff.
"""

from __future__ import annotations

import numpy as np

FD_STEP = 1e-5


def backend_name(B) -> str:
    return {"setwise.reference": "numpy", "setwise.torch_backend": "torch",
            "setwise.jax_backend": "jax"}[B.__name__]


def grad(B, loss, params):
    """``{name: d loss / d params[name]}`` as NumPy arrays; ``params`` holds NumPy arrays."""
    name = backend_name(B)
    if name == "torch":
        import torch

        p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        loss(p).backward()
        return {k: (np.zeros_like(params[k]) if t.grad is None else t.grad.numpy())
                for k, t in p.items()}
    if name == "jax":
        import jax
        import jax.numpy as jnp

        g = jax.grad(lambda q: loss(q))({k: jnp.asarray(v) for k, v in params.items()})
        return {k: np.asarray(v) for k, v in g.items()}
    return finite_difference_grad(loss, params)


def finite_difference_grad(loss, params, step=FD_STEP):
    """Five-point central differences (error O(h^4)) of ``loss`` w.r.t. every parameter entry.

    .. math:: f'(p) \\approx \\frac{-f(p + 2h) + 8 f(p + h) - 8 f(p - h) + f(p - 2h)}{12 h}
    """
    out = {}
    for k, v in params.items():
        g = np.zeros_like(v, dtype=np.float64)
        for i in np.ndindex(v.shape):
            f = {}
            for m in (-2, -1, 1, 2):
                moved = v.copy()
                moved[i] += m * step
                f[m] = float(loss({**params, k: moved}))
            g[i] = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * step)
        out[k] = g
    return out
