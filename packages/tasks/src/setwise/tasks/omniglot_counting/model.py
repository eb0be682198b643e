"""The class-counting model, described and initialised once:
``head(readout(embed(resnet(image))))``.

Paper 1 section 5.2: every 32x32 image of the set is encoded by a convolutional ResNet of
three blocks with ``[16, 32, 64]`` channels, 3x3 filters and stride 2 (``32 -> 16 -> 8 ->
4``), flattened and linearly projected to a ``D = 256`` embedding; Sum, multi-head attention
(4 heads) or Equilibrium Aggregation (residual potential ``[512, 512, 32]``, sum of squares,
10 inner steps) pools the 16 embeddings into a ``D``-dim set embedding; a fully connected
ResNet ``[128, 10]`` gives the logits of the number of classes ``1..10``. Loss: softmax
cross-entropy, plus EA's auxiliary loss (eq. 5) times ``ea_aux_weight`` (1e-4, appendix D.2).

Parameter layout (flat names; see :mod:`setwise.tasks.layers`): ResNet ``encoder``
(:mod:`~setwise.tasks.layers.resnet`: ``encoder_{stage}_0_conv1_w``...), linear ``embed``
(``[4 * 4 * 64, D]``, on the NHWC-flattened feature map), readout ``agg``, MLP ``head``;
drawn in that order from ``default_rng(seed)``. State: the encoder's batch-norm running
statistics (``encoder_..._bn_mean`` / ``_bn_var``).

Notes:
    The paper is silent on the convolutional blocks' normalisation and shortcut: setwise uses
    torchvision's ``BasicBlock`` (two 3x3 convolutions, batch norm after each, ReLU; a 1x1
    stride-2 convolution + batch norm on the shortcut where the size changes; zero padding 1),
    without a stem (the paper's three blocks see the image directly). The head is Listing 1's
    residual MLP with LayerNorm and ReLU (``[128, 10]``, with linear projections on the
    residual path where the width changes); the paper gives only its sizes. The embedding
    projection has no activation ("linearly projected").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace

import numpy as np

from setwise.reference import pna_delta
from setwise.tasks.datasets.omniglot import IMAGE_SIZE, MAX_CLASSES, SET_SIZE
from setwise.tasks.layers.mlp import MLPSpec, init_linear, init_mlp
from setwise.tasks.layers.readout import ReadoutSpec, init_readout
from setwise.tasks.layers.resnet import ResNetSpec, init_resnet

AGGREGATORS = ("ea", "sum", "mha", "pna")


@dataclass(frozen=True)
class CountingSpec:
    """Sizes of the class-counting model.

    Attributes:
        encoder: the image ResNet (paper: channels ``(16, 32, 64)``, strides 2, one block
            each).
        dim: ``D``, the image and set embedding width (paper: 256).
        readout: the aggregator ``[num_sets, 16, D] -> [num_sets, D]``.
        head: the output ResNet ``D -> 10`` (paper: ``[128, 10]``).
        ea_aux_weight: weight of EA's auxiliary loss in the training loss.
        image_size: input images are ``image_size`` squared (32).
    """

    encoder: ResNetSpec
    dim: int
    readout: ReadoutSpec
    head: MLPSpec
    ea_aux_weight: float = 0.0
    image_size: int = IMAGE_SIZE

    @property
    def feature_size(self) -> int:
        """Width of the flattened ResNet output (``4 * 4 * 64`` in the paper)."""
        side = self.encoder.out_size(self.image_size)
        return side * side * self.encoder.channels[-1]


def spec(config: Mapping) -> CountingSpec:
    """The model of a resolved ``omniglot-counting`` configuration."""
    dim, agg = int(config["dim"]), config["aggregator"]
    if agg not in AGGREGATORS:
        raise ValueError(f"omniglot-counting model: aggregator is {agg!r}; expected one of "
                         f"{', '.join(map(repr, AGGREGATORS))}")
    channels = tuple(int(c) for c in config["channels"])
    encoder = ResNetSpec(channels, strides=(2,) * len(channels), blocks=(1,) * len(channels),
                         norm=config["norm"])
    clip = config["ea_clip"]
    readout = ReadoutSpec(
        agg, in_dim=dim, out_dim=dim, num_heads=int(config["num_heads"]),
        pna_delta=float(pna_delta((SET_SIZE,))),
        ea_hidden=tuple(int(h) for h in config["ea_hidden"]), ea_steps=int(config["ea_steps"]),
        ea_step_size=float(config["ea_step_size"]), ea_clip=float(clip) if clip else None,
        ea_grad_mode=config["ea_grad_mode"])
    head = MLPSpec((int(config["head_width"]), MAX_CLASSES), "relu", normalize=True,
                   residual=True)
    return CountingSpec(encoder, dim, readout, head, float(config["ea_aux_weight"]))


def init_params_and_state(model: CountingSpec, seed: int, dtype="float32"):
    """``(params, state)``: ``encoder_*`` (ResNet), ``embed_*``, ``agg_*``, ``head_*``, and
    the encoder's batch-norm statistics. Truncated-normal ``1/sqrt(fan_in)`` weights, zero
    biases."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    state: dict[str, np.ndarray] = {}
    init_resnet(rng, params, state, "encoder", 1, model.encoder, dtype)
    init_linear(rng, params, "embed", model.feature_size, model.dim, dtype)
    init_readout(rng, params, "agg", model.readout, dtype)
    init_mlp(rng, params, "head", model.readout.width, model.head, dtype)
    return params, state


class CountingModel:
    """The class counter on one backend's layer functions
    (:class:`setwise.tasks.protocol.Model`).

    Args:
        model: the sizes.
        layers: the backend's families: ``resnet`` and ``mlp`` modules, ``readout(params,
            prefix, spec, x, mask)``, and ``log_softmax(logits)`` over the last axis,
            ``take_label(logp, label)`` (``logp[b, label[b] - 1]``).
    """

    def __init__(self, model: CountingSpec, layers: SimpleNamespace):
        self.spec = model
        self.layers = layers

    def forward(self, params, state, x, mask, train):
        """``(logits [num_sets, 10], readout logs, new state)`` of images
        ``x [num_sets, 16, 32, 32]``."""
        num_sets, size, height, width = x.shape
        images = x.reshape(num_sets * size, height, width, 1)
        h, new_state = self.layers.resnet.resnet(params, state, "encoder", self.spec.encoder,
                                                 images, train)
        h = self.layers.mlp.linear(params, "embed", h.reshape(num_sets, size, -1))
        y, logs = self.layers.readout(params, "agg", self.spec.readout, h, mask)
        return self.layers.mlp.mlp(params, "head", self.spec.head, y), logs, new_state

    def loss(self, params, state, batch, rng, train):
        """Cross-entropy ``xent`` of the count plus ``ea_aux_weight * ea_aux`` (EA); logs the
        batch's ``accuracy`` and EA's diagnostics. ``new_state`` holds the batch-norm running
        statistics (updated only when ``train``)."""
        logits, logs, new_state = self.forward(params, state, batch["x"], batch["mask"], train)
        logp = self.layers.log_softmax(logits)
        xent = -self.layers.take_label(logp, batch["label"]).mean()
        hit = (logits.argmax(-1) + 1 == batch["label"]) * 1.0
        total = xent
        if "ea_aux" in logs:
            total = total + self.spec.ea_aux_weight * logs["ea_aux"]
        return total, {"xent": xent, "accuracy": hit.mean(), **logs}, \
            (new_state if train else state)

    def predict(self, params, state, batch, rng):
        return {"logits": self.forward(params, state, batch["x"], batch["mask"], False)[0]}


def _np_log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _np_take_label(logp, label):
    return np.take_along_axis(logp, np.asarray(label)[:, None] - 1, -1)[:, 0]


def numpy_model(model: CountingSpec) -> CountingModel:
    """The model in NumPy with :mod:`setwise.reference`'s operators (the ground truth of the
    backends' models)."""
    import setwise.reference as ref
    from setwise.tasks.layers import mlp, resnet
    from setwise.tasks.layers import readout as np_readout

    def readout(params, prefix, spec, x, mask):
        return np_readout.readout(ref, params, prefix, spec, x, mask)

    return CountingModel(model, layers(resnet, mlp, readout, _np_log_softmax,
                                       _np_take_label))


def layers(resnet: ModuleType, mlp: ModuleType, readout: Callable, log_softmax: Callable,
           take_label: Callable) -> SimpleNamespace:
    """The backend's functions :class:`CountingModel` calls."""
    return SimpleNamespace(resnet=resnet, mlp=mlp, readout=readout, log_softmax=log_softmax,
                           take_label=take_label)
