"""PyTorch: the convolutions and residual blocks of :mod:`setwise.tasks.layers.resnet`.

Images stay channels-last (``[N, H, W, C]``) at the interface; ``conv2d`` hands
``F.conv2d`` the permuted view, which is an NCHW tensor in ``channels_last`` memory format,
so no copy is made and oneDNN runs its channels-last kernels.

Notes:
    A 1x1 convolution (the stride-2 shortcut) is computed as what it is, a matmul of the
    subsampled image, ``x[:, ::s, ::s] @ w[0, 0] + b``: torch 2.13's CPU backward of a strided
    1x1 ``F.conv2d`` on a channels-last (or one-channel) input corrupts the heap (glibc aborts
    with "corrupted size vs. prev_size").
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from setwise.tasks.layers.resnet import ImageResNetSpec, ResNetSpec, run_image_resnet, run_resnet


def relu(x):
    return torch.relu(x)


def conv2d(params, prefix, x, stride=1):
    """Convolution ``{prefix}`` on ``x [N, H, W, C_in] -> [N, H', W', C_out]``."""
    w = params[f"{prefix}_w"]
    kh, kw = w.shape[:2]
    bias = params.get(f"{prefix}_b")
    if kh == kw == 1:
        out = x[:, ::stride, ::stride] @ w[0, 0]
        return out if bias is None else out + bias
    out = F.conv2d(x.permute(0, 3, 1, 2), w.permute(3, 2, 0, 1), bias,
                   stride, (kh // 2, kw // 2))
    return out.permute(0, 2, 3, 1)


def batch_norm(params, state, prefix, x, train):
    from setwise.tasks.layers.torch import batch_norm as bn

    return bn.batch_norm(params, state, prefix, x, train=train)


def resnet(params, state, prefix, spec: ResNetSpec, x, train):
    """ResNet ``{prefix}`` of ``spec``: ``(y, new_state)``, see
    :func:`setwise.tasks.layers.resnet.run_resnet`."""
    return run_resnet(sys.modules[__name__], params, state, prefix, spec, x, train)


def max_pool(x):
    """``3x3`` stride-2 max-pool of ``x [N, H, W, C]``, padding 1 (``nn.MaxPool2d``'s
    ``-inf`` padding)."""
    return F.max_pool2d(x.permute(0, 3, 1, 2), 3, 2, 1).permute(0, 2, 3, 1)


def image_resnet(params, state, prefix, spec: ImageResNetSpec, x, train):
    """Image ResNet ``{prefix}`` (stem + stages): ``(y, new_state)``, see
    :func:`setwise.tasks.layers.resnet.run_image_resnet`."""
    return run_image_resnet(sys.modules[__name__], params, state, prefix, spec, x, train)
