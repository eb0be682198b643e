"""The class-counting model in PyTorch: :class:`~.model.CountingModel` on the torch layer
families (``layers.torch.resnet``, ``layers.torch.mlp``, ``layers.torch.readout``)."""

from __future__ import annotations

import torch

from setwise.tasks.layers.torch import mlp, resnet
from setwise.tasks.layers.torch.readout import readout
from setwise.tasks.omniglot_counting.model import CountingModel, CountingSpec, layers


def take_label(logp, label):
    """``logp[b, label[b] - 1]``."""
    return logp.gather(-1, (label.long() - 1)[:, None])[:, 0]


def build(model: CountingSpec) -> CountingModel:
    return CountingModel(model, layers(resnet, mlp, readout,
                                       lambda z: torch.log_softmax(z, -1), take_label))
