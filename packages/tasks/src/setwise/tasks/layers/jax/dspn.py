"""JAX: DSPN's FSPool encoder and inner loop (:mod:`setwise.tasks.layers.dspn`).

:func:`dspn_refine` takes the inner gradient with ``jax.grad`` inside the traced function, so
an outer ``jax.grad`` differentiates through every inner step (second order). The loop is
unrolled (``num_steps`` is static); jit-able with fixed shapes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from setwise.tasks.layers.dspn import FSPOOL_FILL, FSEncoderSpec
from setwise.tasks.layers.jax import mlp as mlp_layers


def fspool_ratios(sizes, max_size, dtype):
    """See :func:`setwise.tasks.layers.dspn.fspool_ratios`."""
    r = jnp.arange(max_size, dtype=dtype)[None, :] \
        / jnp.maximum(sizes - 1, 1).astype(dtype)[:, None]
    return jnp.minimum(r, 1), r <= 1


def fspool_weights(pool_w, ratios):
    """See :func:`setwise.tasks.layers.dspn.fspool_weights`: ``[num_sets, N, C]``."""
    pieces = pool_w.shape[1] - 1
    index = pieces * ratios
    left = jnp.floor(index).astype(jnp.int32)
    frac = (index - left.astype(index.dtype))[..., None]
    right = jnp.minimum(left + 1, pieces)
    table = pool_w.T
    return (1 - frac) * table[left] + frac * table[right]


def fspool(params, prefix, h, valid=None):
    """FSPool of ``h [num_sets, N, C]`` over ``valid [num_sets, N]`` (None: all slots).

    The sort is a stable descending ``argsort`` (ties keep their order, as ``torch.sort(...,
    stable=True)``), so both backends route gradients of tied elements the same way.
    """
    num_sets, max_size, _ = h.shape
    if valid is None:
        sizes = jnp.full((num_sets,), max_size, h.dtype)
    else:
        sizes = valid.sum(1).astype(h.dtype)
        h = jnp.where(valid[..., None], h, FSPOOL_FILL)
    ratios, keep = fspool_ratios(sizes, max_size, h.dtype)
    order = jnp.argsort(-jax.lax.stop_gradient(h), axis=1, stable=True)
    ordered = jnp.take_along_axis(h, order, axis=1)
    weight = fspool_weights(params[f"{prefix}_pool_w"], ratios)
    return (ordered * weight * keep[..., None]).sum(1)


def fs_encoder(params, prefix, spec: FSEncoderSpec, x, m, valid=None):
    """DSPN's ``FSEncoder``: ``MLP([x, m]) / N``, FSPool. Returns ``[num_sets, latent]``."""
    h = mlp_layers.mlp(params, f"{prefix}_mlp", spec.mlp, jnp.concatenate([x, m[..., None]], -1))
    return fspool(params, prefix, h / x.shape[1], valid)


def smooth_l1(a, b):
    """Elementwise Huber loss with threshold 1 (PyTorch's ``smooth_l1_loss``)."""
    d = a - b
    ad = jnp.abs(d)
    return jnp.where(ad < 1, 0.5 * d * d, ad - 0.5)


def repr_loss(pred, target):
    """``sum_b mean_k smooth_l1(pred - target)`` (see the NumPy module's Notes)."""
    return smooth_l1(pred, target).mean(-1).sum()


def clip01(m):
    """``clip(m, 0, 1)`` whose gradient is 1 on the closed interval ``[0, 1]`` (as
    ``torch.clamp``; ``jnp.clip`` halves it at the bounds)."""
    return jnp.where((m >= 0) & (m <= 1), m, jnp.clip(m, 0, 1))


def dspn_refine(encode, z, x0, m0, *, num_steps, step_size, differentiable=True):
    """DSPN's inner loop; arguments and returns as :func:`setwise.tasks.layers.torch.dspn.
    dspn_refine`. ``differentiable=False`` stops gradients at every step (evaluation)."""
    def inner(x, m):
        return repr_loss(encode(x, m), z)

    grad = jax.value_and_grad(inner, argnums=(0, 1))
    x, m = x0, clip01(m0)
    sets, masks, losses, norms = [x], [m], [], []
    for _ in range(num_steps):
        if not differentiable:
            x, m = jax.lax.stop_gradient(x), jax.lax.stop_gradient(m)
        loss, (gx, gm) = grad(x, m)
        x = x - step_size * gx
        m = clip01(m - step_size * gm)
        sets.append(x)
        masks.append(m)
        losses.append(loss / z.shape[0])
        norms.append(jnp.sqrt(jnp.sum(gx * gx)))
    info = {"repr_loss": jnp.stack(losses) if losses else jnp.zeros(0, x.dtype),
            "grad_norm": jnp.stack(norms) if norms else jnp.zeros(0, x.dtype)}
    return sets, masks, info
