"""The JAX trainer: ``optax.adam`` on the task's flat parameters as a dict pytree.

One jitted training step ``(params, state, opt_state, batch, step, lr) -> (params, state,
opt_state, logs)``; ``step`` and the learning rate ``lr`` are traced, so one compilation serves
every step and every rate of the schedule (``optax.adam(1.0)``'s unit step, scaled by ``lr``:
the same floating-point update as ``optax.adam(lr)``). The
step's randomness is :class:`setwise.tasks.rng.JaxRng` of ``step_key(seed, step)``; evaluation
uses ``step_key(seed, EVAL_STEP - i)`` for evaluation batch ``i`` (a fixed draw).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from setwise.tasks.checkpoint import Checkpoint
from setwise.tasks.loops import EVAL_STEP
from setwise.tasks.rng import JaxRng, step_key


def jax_device(device: str):
    """``auto`` -> JAX's default device; ``cpu``; ``cuda`` / ``gpu`` -> the first GPU."""
    if device == "auto":
        return jax.devices()[0]
    return jax.devices("gpu" if device in ("cuda", "gpu") else device)[0]


def to_numpy(arrays: Mapping) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in arrays.items()}


class JaxTrainer:
    """Parameters, state, optimiser state and device of one run (see
    :func:`setwise.tasks.train.fit`). Arguments as :class:`~.torch_loop.TorchTrainer`."""

    def __init__(self, task, config, device="auto", dtype="float32"):
        self.device = jax_device(device)
        self.device_name = str(self.device)
        seed = int(config["seed"])
        self.model = model = task.build_model("jax", config)
        self.optimizer = optimizer = optax.adam(1.0)
        self.set_weights(task.init_params(config, dtype), task.init_state(config, dtype))
        self.set_lr(config["lr"])

        def train_step(params, state, opt_state, batch, step, lr):
            def loss_fn(p):
                loss, logs, new_state = model.loss(p, state, batch,
                                                   JaxRng(step_key(seed, step)), True)
                return loss, (logs, new_state)

            (loss, (logs, state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            updates = jax.tree.map(lambda u: u * lr.astype(u.dtype), updates)
            return optax.apply_updates(params, updates), state, opt_state, {"loss": loss,
                                                                             **logs}

        self._train_step = jax.jit(train_step, donate_argnums=(0, 1, 2))
        self._predict = jax.jit(lambda params, state, batch, index: model.predict(
            params, state, batch, JaxRng(step_key(seed, EVAL_STEP - index))))

    def put(self, arrays: Mapping) -> dict:
        """NumPy arrays on the device (``device_put``: no compilation, unlike ``asarray``)."""
        return {k: jax.device_put(np.array(v, copy=True), self.device) for k, v in arrays.items()}

    def set_weights(self, params: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray]):
        """Replace parameters and state by NumPy values (fresh optimiser state)."""
        self.params, self.state = self.put(params), self.put(state)
        # jitted: one compilation instead of one per parameter shape
        self.opt_state = jax.jit(self.optimizer.init)(self.params)

    def set_lr(self, lr: float) -> None:
        """Adam's learning rate from the next step on (:mod:`setwise.tasks.schedule`), as an
        array of the parameters' float dtype (a traced argument of the step)."""
        self.lr = float(lr)
        dtype = next((v.dtype for v in self.params.values()
                      if jnp.issubdtype(v.dtype, jnp.floating)), jnp.float32)
        self._lr = np.asarray(self.lr, dtype)

    def step(self, batch, step: int):
        """Adam step ``step`` (0-based); returns the logged scalars (device arrays)."""
        self.params, self.state, self.opt_state, logs = self._train_step(
            self.params, self.state, self.opt_state, self.put(batch),
            jnp.asarray(step, jnp.int32), self._lr)
        return logs

    def predict(self, batch, index: int = 0) -> dict[str, np.ndarray]:
        out = self._predict(self.params, self.state, self.put(batch),
                            jnp.asarray(index, jnp.int32))
        return to_numpy(out)

    def checkpoint(self, step: int, elapsed: float) -> Checkpoint:
        adam = self.opt_state[0]
        return Checkpoint(to_numpy(self.params), to_numpy(self.state), to_numpy(adam.mu),
                          to_numpy(adam.nu), int(adam.count), step, elapsed)

    def restore(self, ckpt: Checkpoint) -> tuple[int, float]:
        """Load parameters, state and Adam's moments; return ``(step, elapsed seconds)``."""
        self.set_weights(ckpt.params, ckpt.state)
        if ckpt.adam_count:
            adam, *rest = self.opt_state
            adam = adam._replace(count=jax.device_put(np.asarray(ckpt.adam_count, np.int32),
                                                      self.device),
                                 mu=self.put(ckpt.adam_mu), nu=self.put(ckpt.adam_nu))
            self.opt_state = (adam, *rest)
        return ckpt.step, ckpt.time
