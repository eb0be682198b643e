"""The PyTorch trainer: ``torch.optim.Adam`` on the task's flat parameters as leaf tensors.

The model (:class:`setwise.tasks.protocol.Model`) holds no parameters: the trainer keeps
``params`` as a ``{name: leaf tensor}`` mapping (requires_grad) and ``state`` as a
``{name: tensor}`` mapping that each training step replaces with the model's new state.
A step's randomness is :class:`setwise.tasks.rng.TorchRng` of ``(seed, step)``; evaluation's
is the same generator at :func:`~setwise.tasks.loops.eval_step` ``(i)`` for evaluation batch
``i`` (a fixed draw).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from setwise.tasks.checkpoint import Checkpoint
from setwise.tasks.loops import eval_step
from setwise.tasks.rng import TorchRng


def torch_device(device: str) -> torch.device:
    """``auto`` -> CUDA if present, else CPU; ``gpu`` is an alias of ``cuda``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device("cuda" if device == "gpu" else device)


def to_numpy(tensors: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in tensors.items()}


class TorchTrainer:
    """Parameters, state, Adam and device of one run (see :func:`setwise.tasks.train.fit`).

    Args:
        task: the registered task.
        config: its resolved configuration.
        device: ``auto``, ``cpu``, ``cuda`` / ``gpu``.
        dtype: float dtype of parameters and state (``float32``; ``float64`` for checks).
    """

    def __init__(self, task, config, device="auto", dtype="float32"):
        self.device = torch_device(device)
        self.device_name = str(self.device)
        self.seed = int(config["seed"])
        self.model = task.build_model("torch", config)
        self.set_weights(task.init_params(config, dtype), task.init_state(config, dtype))
        self.lr = float(config["lr"])
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=self.lr)

    def set_lr(self, lr: float) -> None:
        """Adam's learning rate from the next step on (:mod:`setwise.tasks.schedule`)."""
        self.lr = float(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def tensor(self, value) -> torch.Tensor:
        return torch.from_numpy(np.array(value, copy=True)).to(self.device)

    def set_weights(self, params: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray]):
        """Replace parameters and state by NumPy values (the optimiser is rebuilt)."""
        self.params = {k: self.tensor(v).requires_grad_(True) for k, v in params.items()}
        self.state = {k: self.tensor(v) for k, v in state.items()}
        if hasattr(self, "optimizer"):
            self.optimizer = torch.optim.Adam(list(self.params.values()), lr=self.lr)

    def to_device(self, batch):
        return {k: torch.from_numpy(np.asarray(v)).to(self.device, non_blocking=True)
                for k, v in batch.items()}

    def step(self, batch, step: int):
        """Adam step ``step`` (0-based); returns the logged scalars (tensors, read later)."""
        rng = TorchRng(self.seed, step, self.device)
        loss, logs, state = self.model.loss(self.params, self.state, self.to_device(batch),
                                            rng, True)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.state = {k: v.detach() for k, v in state.items()}
        return {"loss": loss.detach(), **{k: v.detach() for k, v in logs.items()}}

    @torch.no_grad()
    def predict(self, batch, index: int = 0) -> dict[str, np.ndarray]:
        """The model's named predictions on evaluation batch ``index``, as NumPy."""
        rng = TorchRng(self.seed, eval_step(index), self.device)
        return to_numpy(self.model.predict(self.params, self.state, self.to_device(batch), rng))

    def checkpoint(self, step: int, elapsed: float) -> Checkpoint:
        """Parameters, state, Adam's moments and count, as NumPy (see
        :mod:`setwise.tasks.checkpoint`)."""
        mu, nu, count = {}, {}, 0
        for name, p in self.params.items():
            s = self.optimizer.state.get(p)
            if s:
                mu[name], nu[name] = to_numpy({"m": s["exp_avg"], "v": s["exp_avg_sq"]}).values()
                count = int(s["step"])
        return Checkpoint(to_numpy(self.params), to_numpy(self.state), mu, nu, count, step,
                          elapsed)

    def restore(self, ckpt: Checkpoint) -> tuple[int, float]:
        """Load parameters, state and Adam's moments; return ``(step, elapsed seconds)``."""
        self.set_weights(ckpt.params, ckpt.state)
        if ckpt.adam_count:
            names = list(self.params)
            self.optimizer.load_state_dict({
                "state": {i: {"step": torch.tensor(float(ckpt.adam_count)),
                              "exp_avg": self.tensor(ckpt.adam_mu[n]),
                              "exp_avg_sq": self.tensor(ckpt.adam_nu[n])}
                          for i, n in enumerate(names)},
                "param_groups": [{**self.optimizer.param_groups[0],
                                  "params": list(range(len(names)))}]})
        return ckpt.step, ckpt.time
