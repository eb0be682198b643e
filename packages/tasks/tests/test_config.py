"""Typed configuration: every value converted to its option's type, None only where allowed."""

import json

import numpy as np
import pytest

from setwise.tasks.config import ConfigError, resolve, training_options
from setwise.tasks.registry import Option, Task, get_task, task_names


class Toy(Task):
    name = "toy"
    options = (
        *training_options(aggregators=("sum",), aggregator="sum", steps=10, batch_size=2,
                          lr=1e-3, eval_every=5, log_every=5),
        Option("width", 8, "an int", int),
        Option("scale", 1, "a float given as an int", float),
        Option("clip", None, "None: no clipping", float, allow_none=True),
        Option("hidden", (4, 4), "a sequence", int, sequence=True),
        Option("norm", True, "a bool", bool),
    )
    presets = {"json": {"width": 16.0, "hidden": [2.0, 3]}, "clipped": {"clip": 2}}


def test_values_take_their_options_types():
    config = resolve(Toy())
    assert type(config["scale"]) is float and config["scale"] == 1.0
    assert config["hidden"] == [4, 4] and config["clip"] is None and config["norm"] is True
    typed = resolve(Toy(), "json", {"lr": 1, "seed": np.int64(3)})
    assert type(typed["width"]) is int and typed["width"] == 16
    assert typed["hidden"] == [2, 3] and all(type(v) is int for v in typed["hidden"])
    assert type(typed["lr"]) is float and type(typed["seed"]) is int
    assert resolve(Toy(), "clipped")["clip"] == 2.0
    assert json.loads(json.dumps(typed)) == typed


@pytest.mark.parametrize("key,value,expected", [
    ("width", 2.5, "an integer"), ("width", "2", "an integer"), ("width", True, "an integer"),
    ("lr", "fast", "a number"), ("lr", False, "a number"), ("norm", 1, "true or false"),
    ("backend", 3, "a string"), ("hidden", 4, "a list"), ("hidden", [1.5], "an integer"),
])
def test_a_value_of_the_wrong_type_names_the_option(key, value, expected):
    with pytest.raises(ConfigError, match=f"option '{key}' is .*; expected {expected}"):
        resolve(Toy(), overrides={key: value})


def test_none_is_a_value_only_where_the_option_allows_it():
    # in overrides None means "not given"; in a preset it is a value
    assert resolve(Toy(), overrides={"width": None})["width"] == 8
    class Bad(Toy):
        presets = {"bad": {"width": None}}

    with pytest.raises(ConfigError, match="option 'width' is None; expected an integer"):
        resolve(Bad(), "bad")


@pytest.mark.parametrize("name", task_names())
def test_every_preset_of_every_task_resolves_to_typed_values(name):
    task = get_task(name)
    kinds = {o.name: o for o in task.options}
    for preset in (None, *task.presets):
        for key, value in resolve(task, preset).items():
            option = kinds[key]
            values = value if option.sequence else [value]
            assert value is None and option.allow_none or all(
                type(v) is option.type for v in values), (preset, key, value)
