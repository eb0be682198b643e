"""The speed tables' measurement (:mod:`setwise.tasks.speed`): a rate per configuration, and
the grid command's JSON file, which keeps earlier invocations."""

import json

from setwise.tasks import speed
from setwise.tasks.config import resolve
from setwise.tasks.registry import get_task

TASK = get_task("median")
TINY = dict(TASK.presets["tiny"])


def test_steps_per_second_is_a_positive_rate_per_configuration():
    config = resolve(TASK, "tiny", {"backend": "torch", "aggregator": "sum"})
    rate = speed.steps_per_second(TASK, config, steps=3, warmup=1, repeats=2)
    assert rate > 0


def test_the_grid_command_writes_every_point_and_keeps_earlier_invocations(tmp_path):
    out = tmp_path / "speed.json"
    argv = ["--out", str(out), "--backends", "torch", "--steps", "2", "--warmup", "1"]
    assert speed.grid_main(TASK, TINY, {"aggregator": ("sum", "ea")}, argv) == 0
    assert speed.grid_main(TASK, TINY, {"aggregator": ("sum", "ea")},
                           [*argv, "--aggregators", "sum"]) == 0
    result = json.loads(out.read_text())
    assert set(result["steps_per_second"]) == {"sum/torch", "ea/torch"}
    assert all(r > 0 for r in result["steps_per_second"].values())
    assert [i["aggregators"] for i in result["invocations"]] == [["sum", "ea"], ["sum"]]
    assert result["budget"] == TINY
