"""The JAX trainer: ``optax.adam`` on the task's Equinox module, one jitted step."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
import optax


def jax_device(device: str):
    """``auto`` -> JAX's default device; ``cpu``; ``cuda`` / ``gpu`` -> the first GPU."""
    if device == "auto":
        return jax.devices()[0]
    return jax.devices("gpu" if device in ("cuda", "gpu") else device)[0]


class JaxTrainer:
    """Model, optimiser state and device of one run (see :func:`setwise.tasks.train.fit`)."""

    checkpoint_name = "checkpoint.eqx"

    def __init__(self, task, config, params, device="auto"):
        self.device = jax_device(device)
        self.device_name = str(self.device)
        self.key = jax.random.PRNGKey(int(config["seed"]))
        optimizer = optax.adam(float(config["lr"]))
        self.model = jax.device_put(task.build_model("jax", params, config), self.device)
        # jitted: one compilation instead of one per parameter shape; committed to the device
        # like the model, or the training step compiles twice
        self.opt_state = jax.device_put(
            eqx.filter_jit(optimizer.init)(eqx.filter(self.model, eqx.is_inexact_array)),
            self.device)

        @eqx.filter_jit
        def train_step(model, opt_state, batch):
            grad_fn = eqx.filter_value_and_grad(lambda m: m.loss(batch), has_aux=True)
            (loss, logs), grads = grad_fn(model)
            updates, opt_state = optimizer.update(grads, opt_state,
                                                  eqx.filter(model, eqx.is_inexact_array))
            return eqx.apply_updates(model, updates), opt_state, {"loss": loss, **logs}

        self._train_step = train_step
        self._predict = eqx.filter_jit(lambda model, batch: model.predict(batch))

    def to_device(self, batch):
        return {k: jax.device_put(np.asarray(v), self.device) for k, v in batch.items()}

    def step(self, batch):
        """One Adam step; returns the logged scalars (device arrays, read later)."""
        self.model, self.opt_state, logs = self._train_step(self.model, self.opt_state,
                                                            self.to_device(batch))
        return logs

    def predict(self, batch):
        return np.asarray(self._predict(self.model, self.to_device(batch)))

    def _state(self, step, elapsed):
        return (self.model, self.opt_state, self.key, np.asarray(step, np.int64),
                np.asarray(elapsed, np.float64))

    def save(self, path, step: int, elapsed: float):
        eqx.tree_serialise_leaves(path, self._state(step, elapsed))

    def load(self, path):
        """Restore model, optimiser state and key; return ``(step, elapsed seconds)``."""
        state = eqx.tree_deserialise_leaves(path, self._state(0, 0.0))
        model, opt_state, self.key, step, elapsed = state
        self.model, self.opt_state = jax.device_put((model, opt_state), self.device)
        return int(step), float(elapsed)
