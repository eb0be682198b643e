"""The PyTorch trainer: ``torch.optim.Adam`` on the task's ``nn.Module``."""

from __future__ import annotations

import numpy as np
import torch


def torch_device(device: str) -> torch.device:
    """``auto`` -> CUDA if present, else CPU; ``gpu`` is an alias of ``cuda``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device("cuda" if device == "gpu" else device)


class TorchTrainer:
    """Model, optimiser and device of one run (see :func:`setwise.tasks.train.fit`)."""

    checkpoint_name = "checkpoint.pt"

    def __init__(self, task, config, params, device="auto"):
        torch.manual_seed(int(config["seed"]))
        self.device = torch_device(device)
        self.device_name = str(self.device)
        self.model = task.build_model("torch", params, config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(config["lr"]))

    def to_device(self, batch):
        return {k: torch.from_numpy(np.asarray(v)).to(self.device, non_blocking=True)
                for k, v in batch.items()}

    def step(self, batch):
        """One Adam step; returns the logged scalars (tensors, read later)."""
        self.model.train()
        loss, logs = self.model.loss(self.to_device(batch))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in logs.items()}}

    @torch.no_grad()
    def predict(self, batch):
        self.model.eval()
        return self.model.predict(self.to_device(batch)).cpu().numpy()

    def save(self, path, step: int, elapsed: float):
        torch.save({"step": step, "time": elapsed, "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "torch_rng": torch.get_rng_state()}, path)

    def load(self, path):
        """Restore model, optimiser and RNG; return ``(step, elapsed seconds)``."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["step"]), float(state["time"])
