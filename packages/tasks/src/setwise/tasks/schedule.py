"""The learning-rate schedule: constant, or halved on a plateau of the training loss.

Paper 2 trains its set VAEs with Adam "and a plateau scheduler that halves the learning rate"
(appendices D.2 and D.3). :class:`Plateau` is that scheduler, written once for both
backends (the trainers only apply the rate it returns, ``trainer.set_lr(lr)``), following
``torch.optim.lr_scheduler.ReduceLROnPlateau`` with ``mode="min"``, ``threshold=1e-4``
relative, ``cooldown=0``:

- the quantity watched is the **mean training loss** over the steps since the previous
  evaluation (one "epoch" of the schedule is one ``eval_every`` interval), never a held-out
  metric, so nothing is tuned on validation or test data;
- an interval *improves* if its mean loss is below ``best * (1 - 1e-4)``; after more than
  ``patience`` intervals in a row without improvement the rate is multiplied by ``factor`` and
  the count restarts.

Its state (rate, best, bad intervals, the running sum and count of the current interval) goes
into the run's checkpoint (group ``schedule/``), so a resumed run follows the same rates as an
uninterrupted one. ``patience=None`` is a constant rate (the state is still kept).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

#: Relative improvement an interval needs (ReduceLROnPlateau's ``threshold`` in "rel" mode).
THRESHOLD = 1e-4


class Plateau:
    """The learning rate of a run (see the module docstring).

    Args:
        lr: the initial rate (``--lr``).
        patience: intervals without improvement tolerated before the rate is cut; ``None``:
            never cut (a constant rate).
        factor: the cut, ``0 < factor < 1`` (0.5 halves the rate).
    """

    def __init__(self, lr: float, patience: int | None = None, factor: float = 0.5):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"Plateau: factor is {factor!r}; expected a number in (0, 1)")
        if patience is not None and patience < 0:
            raise ValueError(f"Plateau: patience is {patience!r}; expected an int >= 0 or None")
        self.lr, self.patience, self.factor = float(lr), patience, float(factor)
        self.best, self.bad, self.total, self.count = math.inf, 0, 0.0, 0

    @classmethod
    def from_config(cls, config: Mapping) -> Plateau:
        """The schedule of a resolved configuration (``lr``, ``lr_patience``,
        ``lr_factor``; the last two default to a constant rate)."""
        return cls(config["lr"], config.get("lr_patience"), config.get("lr_factor", 0.5))

    @property
    def active(self) -> bool:
        return self.patience is not None

    def add(self, mean_loss: float, steps: int) -> None:
        """Count ``steps`` training steps whose mean loss was ``mean_loss``."""
        self.total += float(mean_loss) * steps
        self.count += int(steps)

    def end_interval(self) -> float | None:
        """Close the interval since the previous evaluation; return the new rate if it was
        cut, else ``None``."""
        if not self.count:
            return None
        loss, self.total, self.count = self.total / self.count, 0.0, 0
        if not self.active:
            return None
        if loss < self.best * (1.0 - THRESHOLD):  # ReduceLROnPlateau's rule, any sign
            self.best, self.bad = loss, 0
            return None
        self.bad += 1
        if self.bad <= self.patience:
            return None
        self.lr *= self.factor
        self.bad = 0
        return self.lr

    def state(self) -> dict[str, np.ndarray]:
        """The checkpoint's ``schedule/`` arrays."""
        return {"lr": np.asarray(self.lr, np.float64), "best": np.asarray(self.best, np.float64),
                "bad": np.asarray(self.bad, np.int64),
                "total": np.asarray(self.total, np.float64),
                "count": np.asarray(self.count, np.int64)}

    def load(self, state: Mapping[str, np.ndarray]) -> None:
        """Continue from :meth:`state` (an empty mapping, from a checkpoint written before
        schedules existed, keeps the initial state)."""
        if not state:
            return
        self.lr, self.best = float(state["lr"]), float(state["best"])
        self.bad, self.total, self.count = int(state["bad"]), float(state["total"]), \
            int(state["count"])
