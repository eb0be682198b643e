"""Gradients through any backend, for the gradient properties of the suite.

``grad(B, loss, params)`` returns NumPy gradients of a scalar ``loss(params)`` with respect to
every entry of ``params``: autodiff for torch and JAX, central finite differences (float64) for
the NumPy reference, which has no autodiff.
"""

from __future__ import annotations

import numpy as np

FD_STEP = 1e-6


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
    """Central differences of ``loss`` (NumPy, float64) with respect to every parameter entry."""
    out = {}
    for k, v in params.items():
        g = np.zeros_like(v, dtype=np.float64)
        for i in np.ndindex(v.shape):
            up, down = dict(params), dict(params)
            up[k], down[k] = v.copy(), v.copy()
            up[k][i] += step
            down[k][i] -= step
            g[i] = (float(loss(up)) - float(loss(down))) / (2 * step)
        out[k] = g
    return out
