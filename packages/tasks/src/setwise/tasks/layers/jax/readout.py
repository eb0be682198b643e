"""JAX: the readout table of :mod:`setwise.tasks.layers.readout` (JAX operators)."""

from __future__ import annotations

from setwise import jax_backend
from setwise.tasks.layers import readout as _readout


def readout(params, prefix, spec, x, mask=None, *, index=None, num_sets=None, set_mask=None):
    """:func:`setwise.tasks.layers.readout.readout` with the JAX operators."""
    return _readout.readout(jax_backend, params, prefix, spec, x, mask, index=index,
                            num_sets=num_sets, set_mask=set_mask)
