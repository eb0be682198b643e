"""Training-step speed of every SetMNIST model x creator x backend (the results page's table).

``python -m setwise.tasks.setmnist.speed --out docs/results/setmnist-speed.json`` times
``--steps`` Adam steps (after ``--warmup`` untimed ones) of each combination at the sweep's
budget, one CPU thread, and adds ``{"<model>/<creator>/<backend>": steps per second}`` to
``--out`` (kept entries of earlier invocations), with each invocation's date and the
machine's load average (:func:`setwise.tasks.speed.grid_main`). The step is the trainers' own
(:class:`setwise.tasks.loops.torch_loop.TorchTrainer`, the JAX trainer), so the time is what a
run spends per step, batches included.
"""

from __future__ import annotations

from setwise.tasks import speed
from setwise.tasks.setmnist.model import CREATORS, MODELS
from setwise.tasks.setmnist.task import SWEEP_BUDGET, SetMNISTTask


def main(argv=None) -> int:
    return speed.grid_main(SetMNISTTask(), SWEEP_BUDGET, {"model": MODELS, "creator": CREATORS},
                           argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
