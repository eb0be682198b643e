"""Arrays of the JAX backend: conversion, parameter casting, and the concrete/traced split.

The public functions mirror :mod:`setwise.reference.api`. The helpers below are shared by the
ops of this backend: value checks (finite, index range) run only on concrete arrays, never on
tracers, so every op stays usable under ``jax.jit`` and ``jax.vmap``.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np


def check_x64(op: str, dtype):
    """Refuse an explicit float64 request while JAX's 64-bit mode is off (JAX would silently
    give float32)."""
    if dtype is not None and np.dtype(jnp.dtype(dtype) if not isinstance(dtype, str)
                                      else dtype).name == "float64" \
            and not jax.config.jax_enable_x64:
        raise TypeError(f"{op}: argument 'dtype' is float64 but JAX's 64-bit mode is off "
                        "(JAX would silently give float32); expected float32, or "
                        "jax.config.update('jax_enable_x64', True) at startup")


def asarray(x, dtype=None):
    """A JAX array on the default device (``dtype`` as given, else that of ``x``); float64
    needs JAX's 64-bit mode (``TypeError`` otherwise)."""
    check_x64("asarray", dtype)
    return jnp.asarray(x, dtype=dtype)


def to_numpy(x):
    """A NumPy array from any backend's array."""
    return np.asarray(x)


def convert_params(params, dtype=None):
    """A parameter mapping with every value as a JAX array (optionally cast to ``dtype``;
    float64 needs JAX's 64-bit mode)."""
    check_x64("convert_params", dtype)
    return {k: jnp.asarray(v, dtype=dtype) for k, v in params.items()}


_JIT_CHECKS = [False]


@contextlib.contextmanager
def jit_value_checks(enabled: bool = True):
    """While tracing inside this block, ops also check traced values (finite ``x``, ``index``
    in range, ``ptr`` well formed) with ``jax.experimental.checkify``. The function traced must
    then be checkified (:func:`checked` does both); a plain ``jit`` of it fails to trace."""
    previous = _JIT_CHECKS[0]
    _JIT_CHECKS[0] = bool(enabled)
    try:
        yield
    finally:
        _JIT_CHECKS[0] = previous


def jit_checks_on() -> bool:
    return _JIT_CHECKS[0]


def traced_check(ok, message: str):
    """``checkify.check(ok, message)`` when traced value checks are on (else nothing)."""
    if _JIT_CHECKS[0]:
        from jax.experimental import checkify

        checkify.check(ok, message.replace("{", "{{").replace("}", "}}"))


def checked(fn):
    """``fn`` jit-compiled with value checks: the same checks as an eager call (finite inputs,
    index ranges, ptr order), run inside the compiled code with ``jax.experimental.checkify``;
    a failed check raises ``jax.experimental.checkify.JaxRuntimeError`` with setwise's message.

    Costs a few reductions per op inside the compiled program (no host sync of its own), so it
    is opt-in: plain ``jax.jit`` checks shapes and dtypes only.

    >>> import jax.numpy as jnp
    >>> from setwise import jax_backend as B
    >>> f = B.checked(lambda x, i: B.sum_pool(x, index=i, num_sets=2))
    >>> f(jnp.ones((3, 1)), jnp.array([0, 1, 1])).tolist()
    [[1.0], [2.0]]
    """
    from jax.experimental import checkify

    def traced(*args, **kwargs):
        with jit_value_checks(True):
            return fn(*args, **kwargs)

    compiled = jax.jit(checkify.checkify(traced, errors=checkify.user_checks))

    @functools.wraps(fn)
    def run(*args, **kwargs):
        err, out = compiled(*args, **kwargs)
        err.throw()
        return out

    return run


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
        check_x64(init.__name__, kwargs.get("dtype"))
        return convert_params(init(*args, **kwargs))

    wrapper.__doc__ = (f"The parameters of :func:`setwise.reference.{init.__name__}`, as JAX "
                       "arrays (same names, shapes and values; the reference initialises).")
    return wrapper
