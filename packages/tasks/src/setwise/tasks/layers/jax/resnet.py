"""JAX: the convolutions and residual blocks of :mod:`setwise.tasks.layers.resnet`
(``lax.conv_general_dilated`` on NHWC images and HWIO weights)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp

from setwise.tasks.layers.resnet import ImageResNetSpec, ResNetSpec, run_image_resnet, run_resnet


def relu(x):
    return jax.nn.relu(x)


def conv2d(params, prefix, x, stride=1):
    """Convolution ``{prefix}`` on ``x [N, H, W, C_in] -> [N, H', W', C_out]``."""
    w = params[f"{prefix}_w"]
    kh, kw = w.shape[:2]
    out = jax.lax.conv_general_dilated(
        x, w, (stride, stride), ((kh // 2, kh // 2), (kw // 2, kw // 2)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    bias = params.get(f"{prefix}_b")
    return out if bias is None else out + bias


def batch_norm(params, state, prefix, x, train):
    from setwise.tasks.layers.jax import batch_norm as bn

    return bn.batch_norm(params, state, prefix, x, train=train)


def resnet(params, state, prefix, spec: ResNetSpec, x, train):
    """ResNet ``{prefix}`` of ``spec``: ``(y, new_state)``, see
    :func:`setwise.tasks.layers.resnet.run_resnet`."""
    return run_resnet(sys.modules[__name__], params, state, prefix, spec, x, train)


def max_pool(x):
    """``3x3`` stride-2 max-pool of ``x [N, H, W, C]``, padding 1 with ``-inf``."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                 ((0, 0), (1, 1), (1, 1), (0, 0)))


def image_resnet(params, state, prefix, spec: ImageResNetSpec, x, train):
    """Image ResNet ``{prefix}`` (stem + stages): ``(y, new_state)``, see
    :func:`setwise.tasks.layers.resnet.run_image_resnet`."""
    return run_image_resnet(sys.modules[__name__], params, state, prefix, spec, x, train)
