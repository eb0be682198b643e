"""Convolutional ResNets: 2-d convolution, residual (basic) blocks, stages of blocks.

Images are channels-last, ``x [num_images, height, width, channels]`` (NHWC), so a 1x1
convolution is a linear map of the last axis, like every other layer of the flat mapping.

Layout (``prefix`` = the layer's name in the model's flat mapping):

- convolution ``{prefix}``: ``{prefix}_w [kh, kw, in, out]`` (HWIO, JAX/Haiku's order; torch's
  ``[out, in, kh, kw]`` is ``w.permute(3, 2, 0, 1)``) and, for a convolution without a
  normalisation after it, ``{prefix}_b [out]``. Zero padding of ``k // 2`` on each side
  (torchvision's ``conv3x3`` / ``conv1x1``), so a stride-``s`` convolution maps ``H`` to
  ``(H + 2 (k // 2) - k) // s + 1`` (``32 -> 16`` for ``k = 3, s = 2``).
- basic block ``{prefix}`` (torchvision's ``BasicBlock``, He et al. 2016, option B):
  convolutions ``{prefix}_conv1`` (3x3, stride ``s``) and ``{prefix}_conv2`` (3x3, stride 1),
  each followed by its normalisation, ``relu`` after the first; the shortcut is the identity,
  or convolution ``{prefix}_down`` (1x1, stride ``s``) plus its normalisation when the stride
  or the channel count changes; ``y = relu(main + shortcut)``.
- normalisation of convolution ``{name}`` (``norm="batch"``): the batch-norm family's
  ``{name}`` entries (:mod:`setwise.tasks.layers.batch_norm`: ``{name}_bn_scale``,
  ``{name}_bn_offset`` in params, running ``{name}_bn_mean`` / ``{name}_bn_var`` in state),
  over every axis but the channels; ``norm="none"``: the convolution's bias instead.
- ResNet ``{prefix}`` of :class:`ResNetSpec`: block ``{prefix}_{stage}_{block}`` for each
  stage and each block of it; the first block of a stage carries the stage's stride and
  channel change.

Initial values: truncated normal with standard deviation ``1 / sqrt(kh kw in)`` (Haiku's
``Conv2D`` default, the rule :func:`setwise.reference.nn.init_linear` uses for linear
layers), zero biases.

Notes:
    The batch norm of a block's last convolution starts at scale 1 (torchvision's default,
    ``zero_init_residual=False``). There is no stem convolution or max-pool here: a ResNet34
    (CLEVR) adds its stem in front of :func:`resnet`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from setwise.reference import nn as ref_nn

NORMS = ("batch", "none")


@dataclass(frozen=True)
class ResNetSpec:
    """Stages of basic blocks.

    Attributes:
        channels: output channels of each stage (Omniglot: ``(16, 32, 64)``).
        strides: stride of each stage's first block (Omniglot: ``(2, 2, 2)``).
        blocks: basic blocks per stage (Omniglot: ``(1, 1, 1)``; ResNet34: ``(3, 4, 6, 3)``).
        norm: ``"batch"`` (batch norm after every convolution) or ``"none"``.
        kernel_size: of the main convolutions (3).
    """

    channels: tuple[int, ...]
    strides: tuple[int, ...]
    blocks: tuple[int, ...]
    norm: str = "batch"
    kernel_size: int = 3

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"ResNetSpec: norm is {self.norm!r}; expected one of {NORMS}")
        if not len(self.channels) == len(self.strides) == len(self.blocks):
            raise ValueError(f"ResNetSpec: channels {self.channels}, strides {self.strides} and "
                             f"blocks {self.blocks} must have one entry per stage")
        if min((*self.channels, *self.strides, *self.blocks, self.kernel_size), default=0) < 1:
            raise ValueError(f"ResNetSpec: {self}: expected positive channels, strides, blocks "
                             "and kernel size")

    def block_layout(self):
        """``(stage, block, stride)`` of every block, in order (a stage's stride is its first
        block's)."""
        for stage, (stride, count) in enumerate(zip(self.strides, self.blocks)):
            for block in range(count):
                yield stage, block, stride if block == 0 else 1

    def out_size(self, size: int) -> int:
        """Spatial size after the ResNet for an input of ``size`` (``32 -> 4`` for Omniglot)."""
        for stride in self.strides:
            size = conv_out_size(size, self.kernel_size, stride)
        return size


def conv_out_size(size: int, kernel_size: int, stride: int) -> int:
    """``(size + 2 (k // 2) - k) // stride + 1``."""
    return (size + 2 * (kernel_size // 2) - kernel_size) // stride + 1


def init_conv2d(rng, params, prefix, in_channels, out_channels, kernel_size,
                dtype="float32", bias=True):
    """Add convolution ``{prefix}`` (``_w [k, k, in, out]``, ``_b [out]`` if ``bias``)."""
    fan_in = kernel_size * kernel_size * in_channels
    params[f"{prefix}_w"] = ref_nn.truncated_normal(
        rng, (kernel_size, kernel_size, in_channels, out_channels), 1 / np.sqrt(fan_in), dtype)
    if bias:
        params[f"{prefix}_b"] = np.zeros(out_channels, dtype)


def _init_conv_norm(rng, params, state, prefix, in_channels, out_channels, kernel_size, norm,
                    dtype):
    from setwise.tasks.layers import batch_norm

    init_conv2d(rng, params, prefix, in_channels, out_channels, kernel_size, dtype,
                bias=norm == "none")
    if norm == "batch":
        batch_norm.init_batch_norm(params, state, prefix, out_channels, dtype)


def init_basic_block(rng, params, state, prefix, in_channels, out_channels, stride,
                     norm="batch", kernel_size=3, dtype="float32"):
    """Add basic block ``{prefix}`` to ``params`` (and its running statistics to ``state``)."""
    _init_conv_norm(rng, params, state, f"{prefix}_conv1", in_channels, out_channels,
                    kernel_size, norm, dtype)
    _init_conv_norm(rng, params, state, f"{prefix}_conv2", out_channels, out_channels,
                    kernel_size, norm, dtype)
    if stride != 1 or in_channels != out_channels:
        _init_conv_norm(rng, params, state, f"{prefix}_down", in_channels, out_channels, 1,
                        norm, dtype)


def init_resnet(rng, params, state, prefix, in_channels, spec: ResNetSpec, dtype="float32"):
    """Add ResNet ``{prefix}`` of ``spec`` on ``in_channels`` input channels."""
    width = in_channels
    for stage, block, stride in spec.block_layout():
        out = spec.channels[stage]
        init_basic_block(rng, params, state, f"{prefix}_{stage}_{block}", width, out, stride,
                         spec.norm, spec.kernel_size, dtype)
        width = out


def conv_norm(fns, params, state, prefix, x, stride, train, new_state):
    """Convolution ``{prefix}`` then its batch norm when ``params`` hold one (running
    statistics go to ``new_state``). Written once for every backend (``fns``: the backend's
    module of this family)."""
    x = fns.conv2d(params, prefix, x, stride)
    if f"{prefix}_bn_scale" in params:
        x, updated = fns.batch_norm(params, state, prefix, x, train)
        new_state.update(updated)
    return x


def run_basic_block(fns, params, state, prefix, x, stride, train, new_state):
    """Basic block ``{prefix}`` on ``x [N, H, W, C_in] -> [N, H', W', C_out]``, for every
    backend (``fns``: the backend's module of this family)."""
    h = fns.relu(conv_norm(fns, params, state, f"{prefix}_conv1", x, stride, train, new_state))
    h = conv_norm(fns, params, state, f"{prefix}_conv2", h, 1, train, new_state)
    if f"{prefix}_down_w" in params:
        x = conv_norm(fns, params, state, f"{prefix}_down", x, stride, train, new_state)
    return fns.relu(h + x)


def run_resnet(fns, params, state, prefix, spec: ResNetSpec, x, train):
    """ResNet ``{prefix}`` of ``spec`` on ``x [N, H, W, C]``; returns ``(y [N, H', W',
    channels[-1]], new_state)`` (``new_state`` is ``state`` with the running statistics
    updated when ``train``)."""
    new_state = dict(state)
    for stage, block, stride in spec.block_layout():
        x = run_basic_block(fns, params, state, f"{prefix}_{stage}_{block}", x, stride, train,
                            new_state)
    return x, new_state


# NumPy forward ------------------------------------------------------------------------------

def relu(x):
    return np.maximum(x, 0)


def conv2d(params, prefix, x, stride=1):
    """Convolution ``{prefix}`` on ``x [N, H, W, C_in] -> [N, H', W', C_out]``:
    ``y[n, i, j] = sum_{a, b, c} xpad[n, s i + a, s j + b, c] w[a, b, c] + bias`` with
    ``xpad`` zero-padded by ``k // 2``."""
    w = params[f"{prefix}_w"]
    kh, kw = w.shape[:2]
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))
    out = np.einsum("nhwcab,abco->nhwo", windows[:, ::stride, ::stride], w)
    bias = params.get(f"{prefix}_b")
    return out if bias is None else out + bias


def batch_norm(params, state, prefix, x, train):
    from setwise.tasks.layers import batch_norm as bn

    return bn.batch_norm(params, state, prefix, x, train=train)


def resnet(params, state, prefix, spec: ResNetSpec, x, train):
    """ResNet ``{prefix}`` of ``spec`` (NumPy): ``(y, new_state)``, see :func:`run_resnet`."""
    return run_resnet(sys.modules[__name__], params, state, prefix, spec, x, train)
