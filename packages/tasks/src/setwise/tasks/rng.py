"""The randomness of one step (:class:`setwise.tasks.protocol.Rng`), per backend.

A step's draws are a pure function of ``(seed, step)``, so a resumed run draws what an
uninterrupted one would:

- :class:`TorchRng`: a ``torch.Generator`` on the model's device, seeded from
  ``SeedSequence([seed, step])``.
- :class:`JaxRng`: ``fold_in(PRNGKey(seed), step)``, then one ``fold_in`` per draw (the n-th
  draw of a step uses counter n), so it works inside ``jit`` with a traced step key.
- :class:`NumpyRng`: draws in NumPy (float64) and converts them with the backend's array
  constructor; ``setwise check`` gives one to each backend with the same seed, so both see
  identical noise.

The three draw different numbers for the same ``(seed, step)``: only :class:`NumpyRng` is
shared across backends.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def step_seed(seed: int, step: int) -> int:
    """A 63-bit integer seed for ``(seed, step)``."""
    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


class NumpyRng:
    """Draws from ``numpy.random.default_rng(seed)``, returned through ``to_array``.

    Args:
        seed: the seed of the NumPy generator.
        to_array: converts a NumPy array to the backend's (``torch.from_numpy``,
            ``jnp.asarray``); the identity by default.
        dtype: float dtype of ``normal`` / ``uniform`` (NumPy name), float32 by default.
    """

    def __init__(self, seed: int, to_array: Callable = lambda a: a, dtype="float32"):
        self._rng = np.random.default_rng(seed)
        self._to_array = to_array
        self.dtype = np.dtype(dtype)

    def normal(self, shape, dtype=None):
        return self._to_array(self._rng.standard_normal(tuple(shape)).astype(dtype or self.dtype))

    def uniform(self, shape, dtype=None):
        return self._to_array(self._rng.random(tuple(shape)).astype(dtype or self.dtype))

    def bernoulli(self, p, shape):
        return self._to_array(self._rng.random(tuple(shape)) < p)


class TorchRng:
    """Draws from a ``torch.Generator`` on ``device`` seeded by :func:`step_seed`."""

    def __init__(self, seed: int, step: int, device="cpu", dtype=None):
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.dtype = dtype or torch.float32
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed(step_seed(seed, step))

    def normal(self, shape, dtype=None):
        return self._torch.randn(tuple(shape), generator=self._gen, device=self.device,
                                 dtype=dtype or self.dtype)

    def uniform(self, shape, dtype=None):
        return self._torch.rand(tuple(shape), generator=self._gen, device=self.device,
                                dtype=dtype or self.dtype)

    def bernoulli(self, p, shape):
        return self.uniform(shape) < p


class JaxRng:
    """Draws from ``key`` (a step key, see :func:`step_key`), one ``fold_in`` per draw."""

    def __init__(self, key, dtype=None):
        import jax

        self._jax = jax
        self._key = key
        self._count = 0
        self.dtype = dtype or "float32"

    def _next(self):
        self._count += 1
        return self._jax.random.fold_in(self._key, self._count)

    def normal(self, shape, dtype=None):
        return self._jax.random.normal(self._next(), tuple(shape), dtype or self.dtype)

    def uniform(self, shape, dtype=None):
        return self._jax.random.uniform(self._next(), tuple(shape), dtype or self.dtype)

    def bernoulli(self, p, shape):
        return self._jax.random.bernoulli(self._next(), p, tuple(shape))


def step_key(seed: int, step):
    """JAX's key of ``(seed, step)``; ``step`` may be a traced integer."""
    import jax

    return jax.random.fold_in(jax.random.PRNGKey(int(seed)), step)
