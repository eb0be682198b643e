"""Set models for the paper tasks: one description (:mod:`.spec`), one model per backend
(:mod:`.torch_models`, :mod:`.jax_models`), both calling the setwise operators of
:func:`backend_ops`."""

from __future__ import annotations

import importlib
import warnings

from setwise.reference import get_backend


def backend_ops(name: str):
    """The setwise backend module ``name`` ("torch" or "jax") that the models call.

    While a backend does not import yet, its temporary dense-only stand-in
    (``_interim_<name>``) is returned with a warning.
    """
    try:
        return get_backend(name)
    except ImportError as err:
        warnings.warn(f"setwise backend {name!r} unavailable ({err}); using the temporary "
                      "stand-in ops of setwise.tasks.models", stacklevel=2)
        return importlib.import_module(f"setwise.tasks.models._interim_{name}")
