"""Arrays of the JAX backend: conversion, parameter casting, and the concrete/traced split.

The public functions mirror :mod:`setwise.reference.api`. The helpers below are shared by the
ops of this backend: value checks (finite, index range) run only on concrete arrays, never on
tracers, so every op stays usable under ``jax.jit`` and ``jax.vmap``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def asarray(x, dtype=None):
    """A JAX array on the default device (``dtype`` as given, else that of ``x``)."""
    return jnp.asarray(x, dtype=dtype)


def to_numpy(x):
    """A NumPy array from any backend's array."""
    return np.asarray(x)


def convert_params(params, dtype=None):
    """A parameter mapping with every value as a JAX array (optionally cast to ``dtype``)."""
    return {k: jnp.asarray(v, dtype=dtype) for k, v in params.items()}


def is_concrete(*arrays) -> bool:
    """True when no argument is a tracer (so its values can be read for validation)."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def as_jax(x):
    """``None`` stays ``None``; anything else becomes a JAX array (dtype kept)."""
    return None if x is None else jnp.asarray(x)


def compute_dtype(dtype):
    """The dtype an op computes in: float32 for half-precision inputs, else ``dtype``."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


def cast_params(params, dtype):
    """Every array of ``params`` as ``dtype`` (so float32 inputs give float32 outputs)."""
    return {k: jnp.asarray(v, dtype=dtype) for k, v in params.items()}


def converted(init):
    """Wrap a reference ``init_*`` function so it returns JAX arrays (same values)."""

    @functools.wraps(init)
    def wrapper(*args, **kwargs):
        return convert_params(init(*args, **kwargs))

    wrapper.__doc__ = (f"The parameters of :func:`setwise.reference.{init.__name__}`, as JAX "
                       "arrays (same names, shapes and values; the reference initialises).")
    return wrapper
