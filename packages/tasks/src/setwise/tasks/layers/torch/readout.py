"""PyTorch: the readout table of :mod:`setwise.tasks.layers.readout` (torch operators)."""

from __future__ import annotations

from setwise import torch_backend
from setwise.tasks.layers import readout as _readout


def readout(params, prefix, spec, x, mask=None, *, index=None, num_sets=None, set_mask=None):
    """:func:`setwise.tasks.layers.readout.readout` with the PyTorch operators."""
    return _readout.readout(torch_backend, params, prefix, spec, x, mask, index=index,
                            num_sets=num_sets, set_mask=set_mask)
