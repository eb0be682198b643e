"""The contract between a paper task, its two models and the shared trainers.

Every task model is a *pure function of a flat parameter mapping*, written once per backend:

- ``params``: ``{name: array}`` with the same names and shapes in NumPy, PyTorch and JAX
  (weights ``[in, out]`` applied as ``x @ w + b``; each layer family documents its layout in
  :mod:`setwise.tasks.layers`). The task draws them once, in NumPy
  (:meth:`~setwise.tasks.registry.Task.init_params`); the torch trainer holds them as leaf
  tensors, the JAX trainer as a dict pytree. Gradients come back under the same names, so the
  two backends compare by name and a checkpoint (``checkpoint.npz``,
  :mod:`setwise.tasks.checkpoint`) moves between backends.
- ``state``: ``{name: array}`` of non-trained values that training updates (batch-norm running
  statistics), ``{}`` for most models; returned updated by :meth:`Model.loss`.
- ``batch``: ``{name: array}`` made by the task in NumPy, a pure function of ``(seed, step)``,
  converted to the backend by the trainer.
- ``rng``: the step's randomness (dropout, VAE noise, i.i.d. creation), a :class:`Rng`
  derived from ``(seed, step)`` by the trainer, so a resumed run draws the same numbers.
- ``train``: True in a training step (dropout on, batch statistics), False in evaluation.

A backend-specific model never holds parameters; it holds only static configuration, so the
same object serves jit, the torch trainer, ``setwise check`` and the conformance suite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Array = Any  # a numpy.ndarray, torch.Tensor or jax.Array, by backend
Params = Mapping[str, Array]
State = Mapping[str, Array]
Batch = Mapping[str, Array]


class Rng(Protocol):
    """The randomness of one step, in the model's backend.

    Each call draws fresh numbers (the n-th call of a step is the same in a resumed run).
    ``shape`` is a tuple of ints; ``dtype`` defaults to the backend's float32.
    ``setwise check`` passes an Rng whose draws come from NumPy, so both backends see the same
    noise and their losses and gradients can be compared.
    """

    def normal(self, shape: tuple[int, ...], dtype=None) -> Array: ...

    def uniform(self, shape: tuple[int, ...], dtype=None) -> Array: ...

    def bernoulli(self, p: float, shape: tuple[int, ...]) -> Array:
        """A boolean array, True with probability ``p``."""
        ...


class Model(Protocol):
    """A task's model in one backend (built by ``Task.build_model(backend, config)``)."""

    def loss(self, params: Params, state: State, batch: Batch, rng: Rng, train: bool
             ) -> tuple[Array, Mapping[str, Array], State]:
        """``(scalar loss, {name: scalar logged}, new state)``.

        The logged scalars include every term of the loss (``mse``, ``ea_aux``, ``kl``...) and
        diagnostics (EA's ``ea_grad_max_norm``, ``ea_active_steps``). ``new_state`` is
        ``state`` itself when nothing changed (or when ``train`` is False).
        """
        ...

    def predict(self, params: Params, state: State, batch: Batch, rng: Rng
                ) -> Mapping[str, Array]:
        """Evaluation-mode outputs as named arrays (``{"y": ...}``, ``{"points", "mask"}``),
        turned into NumPy by the trainer and handed to ``Task.evaluate``."""
        ...
