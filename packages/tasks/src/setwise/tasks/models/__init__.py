"""Set models for the paper tasks: one description (:mod:`.spec`), one model per backend
(:mod:`.torch_models`, :mod:`.jax_models`), both calling the setwise operators of
:func:`backend_ops`."""

from __future__ import annotations

from setwise.reference import get_backend


def backend_ops(name: str):
    """The setwise backend module ``name`` ("torch" or "jax") whose operators the models call."""
    return get_backend(name)
