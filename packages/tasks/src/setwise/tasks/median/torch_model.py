"""The median model in PyTorch: :class:`~setwise.tasks.median.model.MedianModel` on the
torch layer families (``layers.torch.mlp``, ``layers.torch.readout``)."""

from __future__ import annotations

from setwise.tasks.layers.torch import mlp
from setwise.tasks.layers.torch.readout import readout
from setwise.tasks.median.model import MedianModel, MedianSpec


def build(model: MedianSpec) -> MedianModel:
    return MedianModel(model, mlp, readout)
