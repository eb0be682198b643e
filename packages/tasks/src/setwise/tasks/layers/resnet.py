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
- stem ``{prefix}_stem`` of :class:`StemSpec` (ImageNet ResNets): convolution ``{prefix}_stem``
  (``7x7``, stride 2, padding 3) and its normalisation, ReLU, then a ``3x3`` stride-2 max-pool
  with padding 1 (padded with ``-inf``, as ``nn.MaxPool2d``); no parameters of its own.
- image ResNet ``{prefix}`` of :class:`ImageResNetSpec` (ResNet34 and its narrow CPU
  variants): the stem ``{prefix}_stem`` then the stages ``{prefix}_{stage}_{block}``.
  :func:`resnet34` is torchvision's ``resnet34`` without ``avgpool`` and ``fc``;
  :func:`from_torchvision` converts a torchvision ``state_dict`` to this layout.

Initial values: truncated normal with standard deviation ``1 / sqrt(kh kw in)`` (Haiku's
``Conv2D`` default, the rule :func:`setwise.reference.nn.init_linear` uses for linear
layers), zero biases.

Notes:
    The batch norm of a block's last convolution starts at scale 1 (torchvision's default,
    ``zero_init_residual=False``). :func:`resnet` has no stem; :func:`image_resnet` puts a
    :class:`StemSpec` in front of it (ResNet34, CLEVR). Initial values are this family's
    (truncated normal), not torchvision's Kaiming normal; a torchvision ``state_dict``
    (:func:`from_torchvision`) replaces them.
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


def init_conv_norm(rng, params, state, prefix, in_channels, out_channels, kernel_size,
                   norm="batch", dtype="float32"):
    """Add convolution ``{prefix}`` and its normalisation (batch norm, or a bias with
    ``norm="none"``): the unit :func:`conv_norm` runs."""
    _init_conv_norm(rng, params, state, prefix, in_channels, out_channels, kernel_size, norm,
                    dtype)


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


# ImageNet stem and ResNet34 -----------------------------------------------------------------

#: torchvision's ResNet34: basic blocks per stage.
RESNET34_BLOCKS = (3, 4, 6, 3)


@dataclass(frozen=True)
class StemSpec:
    """The convolution in front of an image ResNet's stages.

    Attributes:
        channels: output channels (ResNet34: 64).
        kernel_size: of the convolution (ImageNet: 7); padding ``k // 2``.
        stride: of the convolution (ImageNet: 2).
        pool: a ``3x3`` stride-2 max-pool (padding 1) after the ReLU (ImageNet: True).
        norm: ``"batch"`` or ``"none"`` (as :class:`ResNetSpec`).
    """

    channels: int = 64
    kernel_size: int = 7
    stride: int = 2
    pool: bool = True
    norm: str = "batch"

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"StemSpec: norm is {self.norm!r}; expected one of {NORMS}")
        if min(self.channels, self.kernel_size, self.stride) < 1:
            raise ValueError(f"StemSpec: {self}: expected positive channels, kernel size and "
                             "stride")

    def out_size(self, size: int) -> int:
        """Spatial size after the stem (``128 -> 32`` for the ImageNet stem)."""
        size = conv_out_size(size, self.kernel_size, self.stride)
        return conv_out_size(size, 3, 2) if self.pool else size


@dataclass(frozen=True)
class ImageResNetSpec:
    """An image ResNet: :class:`StemSpec` then :class:`ResNetSpec`'s stages."""

    stem: StemSpec
    body: ResNetSpec

    @property
    def channels(self) -> int:
        """Output channels."""
        return self.body.channels[-1]

    def out_size(self, size: int) -> int:
        """Spatial size of the output for an input of ``size`` (ResNet34: ``128 -> 4``)."""
        return self.body.out_size(self.stem.out_size(size))


def resnet34(width: int = 64, blocks: tuple[int, ...] = RESNET34_BLOCKS, stem: str = "imagenet",
             norm: str = "batch") -> ImageResNetSpec:
    """torchvision's ``resnet34`` feature extractor (``width=64``, ``blocks=(3, 4, 6, 3)``,
    ``stem="imagenet"``) or a narrower / shorter one for a CPU budget.

    Stage ``i`` has ``width * 2**i`` channels, stride 1 for the first stage and 2 after it.
    ``stem="imagenet"``: ``7x7`` stride-2 convolution and ``3x3`` stride-2 max-pool;
    ``stem="small"``: one ``3x3`` stride-1 convolution, no pool (CIFAR-style, for images of
    16 to 48 pixels).
    """
    if stem not in ("imagenet", "small"):
        raise ValueError(f"resnet34: stem is {stem!r}; expected 'imagenet' or 'small'")
    if not 1 <= len(blocks) <= 4:
        raise ValueError(f"resnet34: blocks is {blocks!r}; expected 1 to 4 stages")
    stem_spec = (StemSpec(width, 7, 2, True, norm) if stem == "imagenet"
                 else StemSpec(width, 3, 1, False, norm))
    body = ResNetSpec(tuple(width * 2 ** i for i in range(len(blocks))),
                      (1, 2, 2, 2)[:len(blocks)], tuple(blocks), norm)
    return ImageResNetSpec(stem_spec, body)


def init_stem(rng, params, state, prefix, in_channels, spec: StemSpec, dtype="float32"):
    """Add stem ``{prefix}`` (convolution ``{prefix}`` and its normalisation)."""
    _init_conv_norm(rng, params, state, prefix, in_channels, spec.channels, spec.kernel_size,
                    spec.norm, dtype)


def init_image_resnet(rng, params, state, prefix, in_channels, spec: ImageResNetSpec,
                      dtype="float32"):
    """Add image ResNet ``{prefix}``: stem ``{prefix}_stem`` then stages
    ``{prefix}_{stage}_{block}``."""
    init_stem(rng, params, state, f"{prefix}_stem", in_channels, spec.stem, dtype)
    init_resnet(rng, params, state, prefix, spec.stem.channels, spec.body, dtype)


def run_image_resnet(fns, params, state, prefix, spec: ImageResNetSpec, x, train):
    """Image ResNet ``{prefix}`` on ``x [N, H, W, C]``: ``(y [N, H', W', channels],
    new_state)``, for every backend (``fns``: the backend's module of this family)."""
    new_state = dict(state)
    x = fns.relu(conv_norm(fns, params, state, f"{prefix}_stem", x, spec.stem.stride, train,
                           new_state))
    if spec.stem.pool:
        x = fns.max_pool(x)
    for stage, block, stride in spec.body.block_layout():
        x = run_basic_block(fns, params, state, f"{prefix}_{stage}_{block}", x, stride, train,
                            new_state)
    return x, new_state


# torchvision state_dict ---------------------------------------------------------------------

_BN_NAMES = {"weight": ("params", "bn_scale"), "bias": ("params", "bn_offset"),
             "running_mean": ("state", "bn_mean"), "running_var": ("state", "bn_var")}


def torchvision_names(prefix, spec: ImageResNetSpec) -> dict[str, tuple[str, str]]:
    """torchvision key -> ``("params" | "state", flat name)`` for every tensor of the
    feature extractor of ``spec`` (``conv1``, ``bn1``, ``layerK.i.{conv1,bn1,conv2,bn2}``,
    ``layerK.0.downsample.{0,1}``); ``num_batches_tracked`` and ``fc.*`` are not used."""
    names = {"conv1.weight": ("params", f"{prefix}_stem_w")}
    names.update({f"bn1.{k}": (where, f"{prefix}_stem_{suffix}")
                  for k, (where, suffix) in _BN_NAMES.items()})
    width = spec.stem.channels
    for stage, block, stride in spec.body.block_layout():
        ours, theirs = f"{prefix}_{stage}_{block}", f"layer{stage + 1}.{block}"
        out = spec.body.channels[stage]
        convs = [("conv1", "conv1", "bn1"), ("conv2", "conv2", "bn2")]
        if stride != 1 or width != out:
            convs.append(("down", "downsample.0", "downsample.1"))
        for name, conv, bn in convs:
            names[f"{theirs}.{conv}.weight"] = ("params", f"{ours}_{name}_w")
            names.update({f"{theirs}.{bn}.{k}": (where, f"{ours}_{name}_{suffix}")
                          for k, (where, suffix) in _BN_NAMES.items()})
        width = out
    return names


def from_torchvision(state_dict, prefix, spec: ImageResNetSpec, params, state):
    """Copy a torchvision ResNet ``state_dict`` (NumPy arrays by torchvision's keys) into
    ``params`` / ``state`` (modified in place) at the layout of ``spec``.

    Convolutions ``[out, in, kh, kw]`` become ``[kh, kw, in, out]`` (HWIO); batch norm's
    ``weight`` / ``bias`` / ``running_mean`` / ``running_var`` become ``_bn_scale`` /
    ``_bn_offset`` / ``_bn_mean`` / ``_bn_var``, each cast to the dtype already there.
    ``*.num_batches_tracked`` and the classifier ``fc.*`` are ignored.

    Raises:
        ValueError: naming the missing keys, the unexpected keys, or a tensor whose shape
            is not the one ``spec`` needs.
    """
    names = torchvision_names(prefix, spec)
    given = {k for k in state_dict if not k.endswith("num_batches_tracked")
             and not k.startswith("fc.")}
    missing, unexpected = sorted(set(names) - given), sorted(given - set(names))
    if missing or unexpected:
        raise ValueError(
            "from_torchvision: the state_dict does not match the ResNet "
            f"(stem {spec.stem.channels} channels, blocks {spec.body.blocks}): missing keys "
            f"{missing[:8]}{' ...' if len(missing) > 8 else ''}, unexpected keys "
            f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    for key, (where, name) in names.items():
        value = np.asarray(state_dict[key])
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        target = params if where == "params" else state
        if target[name].shape != value.shape:
            raise ValueError(f"from_torchvision: {key} has shape {value.shape} in our layout "
                             f"({name}); expected {target[name].shape}")
        target[name] = value.astype(target[name].dtype)
    return params, state


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


def max_pool(x):
    """``3x3`` stride-2 max-pool of ``x [N, H, W, C]``, padding 1 with ``-inf``."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    return windows[:, ::2, ::2].max(axis=(-2, -1))


def image_resnet(params, state, prefix, spec: ImageResNetSpec, x, train):
    """Image ResNet ``{prefix}`` (NumPy): ``(y, new_state)``, see :func:`run_image_resnet`."""
    return run_image_resnet(sys.modules[__name__], params, state, prefix, spec, x, train)


def resnet(params, state, prefix, spec: ResNetSpec, x, train):
    """ResNet ``{prefix}`` of ``spec`` (NumPy): ``(y, new_state)``, see :func:`run_resnet`."""
    return run_resnet(sys.modules[__name__], params, state, prefix, spec, x, train)
