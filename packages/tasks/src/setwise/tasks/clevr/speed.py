"""Training-step speed of CLEVR targets x creators x backends (the results page's table).

``python -m setwise.tasks.clevr.speed --out docs/results/clevr-speed.json`` times ``--steps``
Adam steps (after ``--warmup`` untimed ones) of each combination at the sweep's budget, one
CPU thread, with the trainers' own step (batches included), and adds
``{"<target>/<creator>/<backend>": steps per second}`` to ``--out`` (entries of earlier
invocations kept), with each invocation's date and load average
(:func:`setwise.tasks.speed.grid_main`).
"""

from __future__ import annotations

from setwise.tasks import speed
from setwise.tasks.clevr.data import TARGETS
from setwise.tasks.clevr.model import CREATORS
from setwise.tasks.clevr.task import SWEEP_BUDGET, ClevrTask


def main(argv=None) -> int:
    return speed.grid_main(ClevrTask(), SWEEP_BUDGET, {"target": TARGETS, "creator": CREATORS},
                           argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
